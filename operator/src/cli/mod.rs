//! Subcommands of the `x402-escrow` binary.

pub mod demo;
