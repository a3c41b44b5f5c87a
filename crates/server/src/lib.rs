//! chorus server (in progress).

pub mod config;
