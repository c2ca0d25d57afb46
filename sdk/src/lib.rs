//! x402 wire protocol for x402-escrow: refundable payments over HTTP 402.
//!
//! - [`wire`]: x402 v1 and v2 types and their base64-JSON header codecs ([`wire::codec`]),
//!   strict decoding with a typed [`DecodeError`]; the `payment-identifier` extension.
//! - [`network`]: EVM networks by CAIP-2 id and by v1 name.
//! - [`amount`]: decimal-string amounts ([`Amount`]), price parsing.
//! - [`schemes::auth_capture`]: the refundable scheme (buyer: build and sign; operator: derive
//!   the escrow's PaymentInfo and check consistency). [`schemes::exact`]: plain ERC-3009.
//! - [`escrows`]: known AuthCaptureEscrow deployments and their collectors.
//! - [`facilitator`]: `/verify`, `/settle`, `/supported` types.
//! - [`webhooks`]: Standard Webhooks signing (operator) and verification (merchants), and the
//!   event payload.
//! - [`buyer`]: the paying client, its spend policy and persistent spend ledger.
//! - [`merchant`]: the tower/axum payment layer and the operator REST client.
//! - [`types`]: the operator's REST API types (`x402-escrow-types`), shared with the operator.

#![warn(missing_docs)]

pub mod buyer;
pub mod escrows;
pub mod merchant;
pub mod schemes;
pub mod signing;
pub mod webhooks;

pub use x402_escrow_types as types;
pub use x402_escrow_types::{amount, error, facilitator, json, network, primitives, wire};

pub use amount::Amount;
pub use buyer::{BuyerClient, BuyerError, SpendLedger, SpendPolicy};
pub use error::DecodeError;
pub use escrows::{EscrowDeployment, EscrowRegistry};
pub use network::Network;
pub use x402_escrow_bindings::{PaymentInfo, payer_agnostic_hash, payment_info_hash};

use alloy::primitives::B256;

/// 32 bytes from the operating system's CSPRNG (via `rand`), for salts and ERC-3009 nonces.
pub fn random_b256() -> B256 {
    B256::from(rand::random::<[u8; 32]>())
}
