//! x402 v2 objects: `PaymentRequired`, `PaymentRequirements`, `PaymentPayload`, `ResourceInfo`.

use alloy_primitives::Address;
use serde::Serialize;
use serde_json::{Map, Value};

use super::extensions::{self, PaymentIdentifierInfo};
use super::{Extra, SchemePayload, X402_VERSION_2};
use crate::DecodeError;
use crate::amount::{Amount, UINT48_MAX};
use crate::json::{self, FromJson, Obj};
use crate::network::Network;
use crate::schemes::{AUTH_CAPTURE, EXACT};

/// The resource a payment is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// URL of the protected resource.
    pub url: String,
    /// Human-readable description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

impl ResourceInfo {
    /// A resource with only its URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            description: None,
            mime_type: None,
        }
    }
}

impl FromJson for ResourceInfo {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        Ok(Self {
            url: o.req_str("url")?,
            description: o.opt_str("description")?,
            mime_type: o.opt_str("mimeType")?,
        })
    }
}

json::deserialize_via_from_json!(ResourceInfo);

/// One acceptable way to pay (v2), for an EVM network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// Scheme (`auth-capture`, `exact`, …).
    pub scheme: String,
    /// CAIP-2 network (`eip155:<chainId>`).
    pub network: Network,
    /// Amount in atomic units (auth-capture: at most 2^120 - 1).
    pub amount: Amount,
    /// Token address.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub asset: Address,
    /// Recipient.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub pay_to: Address,
    /// Longest time the client may take (its signature's validity window), in seconds.
    pub max_timeout_seconds: u64,
    /// Scheme-specific data (required for auth-capture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Extra>,
}

/// The first field in which a payload's `accepted` differs from the server's requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("accepted.{0} does not match the payment requirements")]
pub struct RequirementsMismatch(pub &'static str);

impl PaymentRequirements {
    /// Compares field by field (as a server matches `accepted` against what it offered).
    pub fn check_matches(&self, other: &Self) -> Result<(), RequirementsMismatch> {
        let fields: [(&'static str, bool); 7] = [
            ("scheme", self.scheme == other.scheme),
            ("network", self.network == other.network),
            ("amount", self.amount == other.amount),
            ("asset", self.asset == other.asset),
            ("payTo", self.pay_to == other.pay_to),
            (
                "maxTimeoutSeconds",
                self.max_timeout_seconds == other.max_timeout_seconds,
            ),
            ("extra", self.extra == other.extra),
        ];
        match fields.iter().find(|(_, equal)| !equal) {
            Some((field, _)) => Err(RequirementsMismatch(field)),
            None => Ok(()),
        }
    }

    /// The typed auth-capture extra, when the scheme is auth-capture.
    pub fn auth_capture_extra(&self) -> Option<&crate::schemes::auth_capture::AuthCaptureExtra> {
        self.extra.as_ref().and_then(Extra::as_auth_capture)
    }

    /// Whether this crate can pay these requirements (auth-capture or exact).
    pub fn is_supported_scheme(&self) -> bool {
        self.scheme == AUTH_CAPTURE || self.scheme == EXACT
    }
}

/// Decodes the fields v1 and v2 requirements share, as v2 requirements: the network (with
/// `network`: the v1 or the v2 spelling), scheme, amount under `amount_key`, asset, payTo,
/// maxTimeoutSeconds and extra.
pub(crate) fn decode_requirements(
    o: &Obj<'_>,
    amount_key: &str,
    network: fn(&Value, &str) -> Result<Network, DecodeError>,
) -> Result<PaymentRequirements, DecodeError> {
    let network = o.req("network", network)?;
    let scheme = o.req("scheme", json::non_empty_string)?;
    let mut amount = o.req(amount_key, json::amount)?;
    if scheme == AUTH_CAPTURE {
        amount = amount
            .check_uint120()
            .map_err(|reason| DecodeError::InvalidAmount {
                field: o.field(amount_key),
                reason,
            })?;
    }
    let extra = match o.opt_value("extra") {
        Some(value) => Some(Extra::from_json_for(&scheme, value, &o.field("extra"))?),
        None if scheme == AUTH_CAPTURE => {
            return Err(DecodeError::MissingField {
                field: o.field("extra"),
            });
        }
        None => None,
    };
    Ok(PaymentRequirements {
        network,
        amount,
        asset: o.req("asset", json::address)?,
        pay_to: o.req("payTo", json::address)?,
        max_timeout_seconds: o.req("maxTimeoutSeconds", |v, p| {
            json::integer(v, p, 1, UINT48_MAX)
        })?,
        extra,
        scheme,
    })
}

impl FromJson for PaymentRequirements {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        decode_requirements(&Obj::new(value, path)?, "amount", Network::from_json_v2)
    }
}

json::deserialize_via_from_json!(PaymentRequirements);

/// Decodes an `accepts` array: entries on networks or schemes this crate cannot pay are skipped
/// when they do not decode (a solana or fiat option next to ours must not break the challenge);
/// an entry we could pay that is malformed is an error. At least one entry must remain.
pub(crate) fn decode_accepts<T>(
    o: &Obj<'_>,
    v1: bool,
    decode: impl Fn(&Value, &str) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let path = o.field("accepts");
    let items = o.req("accepts", json::array)?;
    if items.is_empty() {
        return Err(DecodeError::InvalidValue {
            field: path,
            value: "[]".to_owned(),
            expected: "expected at least one payment option",
        });
    }
    let mut accepts = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = json::index(&path, i);
        match decode(item, &item_path) {
            Ok(decoded) => accepts.push(decoded),
            Err(error) => {
                let foreign_network = item
                    .get("network")
                    .is_some_and(|n| Network::is_foreign(n, v1));
                let foreign_scheme = item
                    .get("scheme")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s != AUTH_CAPTURE && s != EXACT);
                if !(foreign_network || foreign_scheme) {
                    return Err(error);
                }
            }
        }
    }
    if accepts.is_empty() {
        return Err(DecodeError::NoSupportedAccepts { field: path });
    }
    Ok(accepts)
}

/// The v2 402 challenge (header `PAYMENT-REQUIRED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// Always 2.
    pub x402_version: u8,
    /// Why payment is required (e.g. which header was missing or invalid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: ResourceInfo,
    /// Acceptable payment options (at least one).
    pub accepts: Vec<PaymentRequirements>,
    /// Extensions (`payment-identifier`, …), keyed by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

impl PaymentRequired {
    /// A challenge for `resource` with the given options.
    pub fn new(resource: ResourceInfo, accepts: Vec<PaymentRequirements>) -> Self {
        Self {
            x402_version: X402_VERSION_2,
            error: None,
            resource,
            accepts,
            extensions: None,
        }
    }

    /// The `payment-identifier` extension's `info`, when advertised.
    pub fn payment_identifier(&self) -> Option<PaymentIdentifierInfo> {
        self.extensions.as_ref().and_then(|e| {
            extensions::payment_identifier_info(e, "extensions")
                .ok()
                .flatten()
        })
    }
}

impl FromJson for PaymentRequired {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let x402_version = json::expect_version(&o, X402_VERSION_2)?;
        Ok(Self {
            x402_version,
            error: o.opt_str("error")?,
            resource: o.req_t("resource")?,
            accepts: decode_accepts(&o, false, PaymentRequirements::from_json)?,
            extensions: o.opt_map("extensions")?,
        })
    }
}

json::deserialize_via_from_json!(PaymentRequired);

/// A signed payment (v2; header `PAYMENT-SIGNATURE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// Always 2.
    pub x402_version: u8,
    /// The resource paid for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The requirements the client chose, echoed.
    pub accepted: PaymentRequirements,
    /// Scheme-specific payment data.
    pub payload: SchemePayload,
    /// Extensions echoed and completed by the client (`payment-identifier`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

impl PaymentPayload {
    /// A payload for `accepted` (no resource, no extensions).
    pub fn new(accepted: PaymentRequirements, payload: impl Into<SchemePayload>) -> Self {
        Self {
            x402_version: X402_VERSION_2,
            resource: None,
            accepted,
            payload: payload.into(),
            extensions: None,
        }
    }

    /// The payment answering `challenge` with its option `accepted`, as a client sends it:
    /// echoes the challenge's resource and extensions, and sets the `payment-identifier` id
    /// when one is given (reuse the same id when retrying the same payment).
    pub fn answering(
        challenge: &PaymentRequired,
        accepted: PaymentRequirements,
        payload: impl Into<SchemePayload>,
        payment_id: Option<&str>,
    ) -> Self {
        let mut extensions = challenge.extensions.clone();
        if let Some(id) = payment_id {
            let map = extensions.get_or_insert_with(Map::new);
            let advertised = map.get(extensions::PAYMENT_IDENTIFIER).cloned();
            extensions::set_payment_id(map, advertised.as_ref(), id);
        }
        Self {
            x402_version: X402_VERSION_2,
            resource: Some(challenge.resource.clone()),
            accepted,
            payload: payload.into(),
            extensions,
        }
    }

    /// The `payment-identifier` id (idempotency key), when the client sent one.
    pub fn payment_id(&self) -> Option<String> {
        self.extensions
            .as_ref()
            .and_then(|e| {
                extensions::payment_identifier_info(e, "extensions")
                    .ok()
                    .flatten()
            })
            .and_then(|info| info.id)
    }
}

impl FromJson for PaymentPayload {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let x402_version = json::expect_version(&o, X402_VERSION_2)?;
        let accepted: PaymentRequirements = o.req_t("accepted")?;
        let payload = o.req("payload", |v, p| {
            SchemePayload::from_json_for(&accepted.scheme, v, p)
        })?;
        let extensions = o.opt_map("extensions")?;
        if let Some(ext) = &extensions {
            // Validates the payment-identifier extension (id length and characters).
            extensions::payment_identifier_info(ext, &o.field("extensions"))?;
        }
        Ok(Self {
            x402_version,
            resource: o.opt_t("resource")?,
            accepted,
            payload,
            extensions,
        })
    }
}

json::deserialize_via_from_json!(PaymentPayload);
