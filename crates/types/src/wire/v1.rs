//! x402 v1 objects: the 402 body `{x402Version: 1, error?, accepts}`, v1 requirements
//! (`maxAmountRequired`, `resource` URL, network names) and the `X-PAYMENT` payload.

use alloy_primitives::Address;
use serde::Serialize;
use serde_json::Value;

use super::v2::{decode_accepts, decode_requirements};
use super::{
    Extra, PaymentPayload, PaymentRequirements, ResourceInfo, SchemePayload, X402_VERSION_1,
    X402_VERSION_2,
};
use crate::DecodeError;
use crate::amount::Amount;
use crate::json::{self, FromJson, Obj};
use crate::network::{self, Network};

/// One acceptable way to pay (v1). The network serialises by v1 name (`base-sepolia`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirementsV1 {
    /// Scheme.
    pub scheme: String,
    /// Network (written as its v1 name; CAIP-2 for chains without one).
    #[serde(serialize_with = "network::serialize_v1")]
    pub network: Network,
    /// Amount in atomic units.
    pub max_amount_required: Amount,
    /// URL of the resource.
    pub resource: String,
    /// Description of the resource.
    pub description: String,
    /// MIME type of the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// JSON schema of the resource's input/output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Recipient.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub pay_to: Address,
    /// Longest time the client may take, in seconds.
    pub max_timeout_seconds: u64,
    /// Token address.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub asset: Address,
    /// Scheme-specific data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Extra>,
}

impl PaymentRequirementsV1 {
    /// The v1 spelling of v2 requirements for `resource`.
    pub fn from_v2(requirements: &PaymentRequirements, resource: &ResourceInfo) -> Self {
        Self {
            scheme: requirements.scheme.clone(),
            network: requirements.network,
            max_amount_required: requirements.amount,
            resource: resource.url.clone(),
            description: resource.description.clone().unwrap_or_default(),
            mime_type: resource.mime_type.clone(),
            output_schema: None,
            pay_to: requirements.pay_to,
            max_timeout_seconds: requirements.max_timeout_seconds,
            asset: requirements.asset,
            extra: requirements.extra.clone(),
        }
    }

    /// The v2 requirements and resource these v1 requirements describe.
    pub fn to_v2(&self) -> (PaymentRequirements, ResourceInfo) {
        let requirements = PaymentRequirements {
            scheme: self.scheme.clone(),
            network: self.network,
            amount: self.max_amount_required,
            asset: self.asset,
            pay_to: self.pay_to,
            max_timeout_seconds: self.max_timeout_seconds,
            extra: self.extra.clone(),
        };
        let resource = ResourceInfo {
            url: self.resource.clone(),
            description: Some(self.description.clone()).filter(|d| !d.is_empty()),
            mime_type: self.mime_type.clone(),
        };
        (requirements, resource)
    }
}

impl FromJson for PaymentRequirementsV1 {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let c = decode_requirements(&o, "maxAmountRequired", Network::from_json_v1)?;
        Ok(Self {
            scheme: c.scheme,
            network: c.network,
            max_amount_required: c.amount,
            resource: o.req_str("resource")?,
            description: o.req_str("description")?,
            mime_type: o.opt_str("mimeType")?,
            output_schema: o.opt_value("outputSchema").cloned(),
            pay_to: c.pay_to,
            max_timeout_seconds: c.max_timeout_seconds,
            asset: c.asset,
            extra: c.extra,
        })
    }
}

json::deserialize_via_from_json!(PaymentRequirementsV1);

/// The v1 402 response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV1 {
    /// Always 1.
    pub x402_version: u8,
    /// Why payment is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Acceptable payment options (at least one).
    pub accepts: Vec<PaymentRequirementsV1>,
}

impl PaymentRequiredV1 {
    /// A v1 challenge with the given options.
    pub fn new(accepts: Vec<PaymentRequirementsV1>) -> Self {
        Self {
            x402_version: X402_VERSION_1,
            error: None,
            accepts,
        }
    }
}

impl FromJson for PaymentRequiredV1 {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let x402_version = json::expect_version(&o, X402_VERSION_1)?;
        Ok(Self {
            x402_version,
            error: o.opt_str("error")?,
            accepts: decode_accepts(&o, true, PaymentRequirementsV1::from_json)?,
        })
    }
}

json::deserialize_via_from_json!(PaymentRequiredV1);

/// A signed payment (v1; header `X-PAYMENT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV1 {
    /// Always 1.
    pub x402_version: u8,
    /// Scheme.
    pub scheme: String,
    /// Network (v1 name).
    #[serde(serialize_with = "network::serialize_v1")]
    pub network: Network,
    /// Scheme-specific payment data.
    pub payload: SchemePayload,
}

impl PaymentPayloadV1 {
    /// The v1 payload for `requirements`.
    pub fn new(requirements: &PaymentRequirementsV1, payload: impl Into<SchemePayload>) -> Self {
        Self {
            x402_version: X402_VERSION_1,
            scheme: requirements.scheme.clone(),
            network: requirements.network,
            payload: payload.into(),
        }
    }

    /// The v2 form of this payment, given the v1 requirements it pays (v1 payloads do not echo
    /// them). Fails with the mismatching field when scheme or network differ.
    pub fn into_v2(
        self,
        requirements: &PaymentRequirementsV1,
    ) -> Result<PaymentPayload, DecodeError> {
        ensure_same("scheme", &self.scheme, &requirements.scheme, |p, r| {
            format!("payment is for scheme {p:?}, requirement is {r:?}")
        })?;
        ensure_same("network", &self.network, &requirements.network, |p, r| {
            format!("payment is for {p}, requirement is {r}")
        })?;
        let (accepted, resource) = requirements.to_v2();
        Ok(PaymentPayload {
            x402_version: X402_VERSION_2,
            resource: Some(resource),
            accepted,
            payload: self.payload,
            extensions: None,
        })
    }
}

/// Fails with [`DecodeError::Inconsistent`] on `field` (described by `describe`) when the
/// payment's value (`paid`) is not the requirement's (`required`).
fn ensure_same<T: PartialEq>(
    field: &str,
    paid: &T,
    required: &T,
    describe: impl FnOnce(&T, &T) -> String,
) -> Result<(), DecodeError> {
    if paid != required {
        return Err(DecodeError::Inconsistent {
            field: field.to_owned(),
            reason: describe(paid, required),
        });
    }
    Ok(())
}

impl FromJson for PaymentPayloadV1 {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let x402_version = json::expect_version(&o, X402_VERSION_1)?;
        let scheme = o.req("scheme", json::non_empty_string)?;
        let network = o.req("network", Network::from_json_v1)?;
        let payload = o.req("payload", |v, p| {
            SchemePayload::from_json_for(&scheme, v, p)
        })?;
        Ok(Self {
            x402_version,
            scheme,
            network,
            payload,
        })
    }
}

json::deserialize_via_from_json!(PaymentPayloadV1);
