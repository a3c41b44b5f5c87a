//! chorus server (in progress).
