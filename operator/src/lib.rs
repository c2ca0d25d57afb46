//! The x402-escrow operator (issue 3): a durable payment lifecycle engine.
//!
//! See `operator/DESIGN.md` for how the modules fit together.

pub mod config;
pub mod lifecycle;
pub mod store;
pub mod service;
pub mod relayer;
pub mod indexer;
pub mod webhooks;
pub mod engine;
pub mod verify;
pub mod api;
pub mod runtime;
