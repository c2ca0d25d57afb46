//! The x402-escrow operator (issue 3): a durable payment lifecycle engine.
//!
//! See `operator/DESIGN.md` for how the modules fit together, and `ARCHITECTURE.md` at the
//! root for the crates around it.

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod console;
pub mod engine;
pub mod indexer;
pub mod lifecycle;
pub mod relayer;
pub mod runtime;
pub mod service;
pub mod store;
pub mod verify;
pub mod webhooks;
