//! chorus client (in progress).
