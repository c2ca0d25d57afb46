//! Payment schemes' wire types: `auth-capture` (refundable, through the AuthCaptureEscrow) and
//! `exact` (a plain ERC-3009 transfer), both on EVM with ERC-3009 signatures. Building, signing
//! and verifying them is the SDK's (`x402_escrow_sdk::schemes`).

pub mod auth_capture;
pub mod exact;

use alloy_primitives::{Address, B256};
use serde::Serialize;
use serde_json::Value;

use crate::DecodeError;
use crate::amount::Amount;
use crate::json::{self, FromJson, Obj};

/// Scheme name of the refundable escrow scheme.
pub const AUTH_CAPTURE: &str = "auth-capture";
/// Scheme name of the plain transfer scheme.
pub const EXACT: &str = "exact";

/// The ERC-3009 authorization both schemes carry: the parameters of
/// `receiveWithAuthorization` (auth-capture) or `transferWithAuthorization` (exact), all numbers
/// as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eip3009Authorization {
    /// The payer.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub from: Address,
    /// The recipient: the escrow's ERC-3009 collector (auth-capture) or `payTo` (exact).
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub to: Address,
    /// Amount in atomic units.
    pub value: Amount,
    /// Unix seconds after which the authorization is valid.
    pub valid_after: Amount,
    /// Unix seconds before which the authorization is valid.
    pub valid_before: Amount,
    /// The ERC-3009 nonce.
    pub nonce: B256,
}

impl FromJson for Eip3009Authorization {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        Ok(Self {
            from: o.req("from", json::address)?,
            to: o.req("to", json::address)?,
            value: o.req("value", json::amount)?,
            valid_after: o.req("validAfter", json::amount)?,
            valid_before: o.req("validBefore", json::amount)?,
            nonce: o.req("nonce", json::b256)?,
        })
    }
}

json::deserialize_via_from_json!(Eip3009Authorization);
