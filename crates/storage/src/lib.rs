//! chorus storage (in progress).
