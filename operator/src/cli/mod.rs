//! Subcommands of the `x402-escrow` binary.

pub mod admin;
pub mod demo;
pub mod serve;
#[cfg(feature = "wip-cli4")]
pub mod x402;
