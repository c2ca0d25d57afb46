//! The x402-escrow operator (issue 3): a durable payment lifecycle engine.
//!
//! See `operator/DESIGN.md` for how the modules fit together.

pub mod config;
pub mod lifecycle;
pub mod store;
