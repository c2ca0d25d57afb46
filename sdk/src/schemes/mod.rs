//! Payment schemes: `auth-capture` (refundable, through the AuthCaptureEscrow) and `exact`
//! (a plain ERC-3009 transfer), both on EVM with ERC-3009 signatures.

pub mod auth_capture;
pub mod exact;

pub use x402_escrow_types::schemes::{AUTH_CAPTURE, EXACT, Eip3009Authorization};
