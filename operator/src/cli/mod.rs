//! Subcommands of the `x402-escrow` binary.

pub mod admin;
pub mod bench;
pub mod deploy;
pub mod reserve;
pub mod sample_api;
pub mod serve;
pub mod x402;
