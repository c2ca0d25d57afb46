//! The `exact` scheme's wire types: the requirements' `extra` (the token's EIP-712 domain) and the
//! client's ERC-3009 `TransferWithAuthorization` payload.

use alloy_primitives::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::DecodeError;
use crate::json::{self, FromJson, Obj};
use crate::schemes::Eip3009Authorization;

/// The `extra` object of `exact` requirements: the token's EIP-712 domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExactExtra {
    /// EIP-712 domain name of the token (required to sign ERC-3009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// EIP-712 domain version of the token (required to sign ERC-3009).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Keys this crate does not interpret (for example `assetTransferMethod`), kept verbatim.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ExactExtra {
    /// An extra with the token's domain name and version.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            version: Some(version.into()),
            other: Map::new(),
        }
    }
}

impl FromJson for ExactExtra {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        Ok(Self {
            name: o.opt_str("name")?,
            version: o.opt_str("version")?,
            other: o.rest(&["name", "version"]),
        })
    }
}

json::deserialize_via_from_json!(ExactExtra);

/// The client's `exact` payload (ERC-3009 `TransferWithAuthorization`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExactPayload {
    /// The authorization (to = `payTo`).
    pub authorization: Eip3009Authorization,
    /// EIP-712 signature by `authorization.from`.
    pub signature: Bytes,
}

impl FromJson for ExactPayload {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        Ok(Self {
            authorization: o.req_t("authorization")?,
            signature: o.req("signature", json::signature)?,
        })
    }
}

json::deserialize_via_from_json!(ExactPayload);
