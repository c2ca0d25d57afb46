//! The operator service (issue 3).
