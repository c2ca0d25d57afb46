//! The x402-escrow operator (issue 3): a durable payment lifecycle engine.
//!
//! See `operator/DESIGN.md` for how the modules fit together.

pub mod config;
pub mod lifecycle;
pub mod store;
pub mod service;
#[cfg(feature = "wip-relayer")]
pub mod relayer;
#[cfg(feature = "wip-indexer")]
pub mod indexer;
#[cfg(feature = "wip-webhooks")]
pub mod webhooks;
#[cfg(feature = "wip-engine")]
pub mod engine;
#[cfg(feature = "wip-engine")]
pub mod verify;
#[cfg(feature = "wip-api")]
pub mod api;
