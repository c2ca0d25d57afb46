//! Header codecs: base64 (standard alphabet) of the JSON object, for both protocol versions.
//!
//! | | v1 | v2 |
//! |---|---|---|
//! | challenge | 402 JSON body | [`PAYMENT_REQUIRED`] |
//! | payment | [`X_PAYMENT`] | [`PAYMENT_SIGNATURE`] |
//! | receipt | [`X_PAYMENT_RESPONSE`] | [`PAYMENT_RESPONSE`] |
//!
//! Decoding is strict and checks, in order: emptiness and size ([`MAX_HEADER_LEN`]), base64
//! (standard alphabet, padding optional), UTF-8, JSON syntax (no duplicate keys, no trailing
//! data), then the object's shape, version and every field. It never panics.

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde_json::Value;

use super::{PaymentPayload, PaymentPayloadV1, PaymentRequired, PaymentRequiredV1};
use crate::DecodeError;
use crate::facilitator::SettleResponse;
use crate::json::{self, FromJson};

/// v2 challenge header (base64 JSON `PaymentRequired`).
pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// v2 payment header (base64 JSON `PaymentPayload`).
pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// v2 receipt header (base64 JSON `SettleResponse`).
pub const PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
/// v1 payment header (base64 JSON v1 `PaymentPayload`).
pub const X_PAYMENT: &str = "X-PAYMENT";
/// v1 receipt header (base64 JSON `SettleResponse`, v1 network names).
pub const X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";
/// Our idempotency header (beside the `payment-identifier` extension).
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// `Cache-Control` value every 402 response carries.
pub const CACHE_CONTROL_402: &str = "no-store";

/// Largest encoded header accepted, in bytes (8 KiB).
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// Largest JSON body accepted (v1 402 bodies, facilitator requests), in bytes (64 KiB).
pub const MAX_BODY_LEN: usize = 64 * 1024;

/// Standard alphabet; padding optional on input, written on output.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encoding a header failed (a value that cannot be JSON; not expected for this crate's types).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode header as JSON: {0}")]
pub struct EncodeError(#[from] serde_json::Error);

/// Base64 of the compact JSON of `value`.
pub fn encode_header<T: Serialize + ?Sized>(value: &T) -> Result<String, EncodeError> {
    Ok(BASE64.encode(serde_json::to_vec(value)?))
}

/// Decodes a header's bytes into a JSON value (size, base64, UTF-8, JSON checks). `what` names
/// the header in errors.
pub fn decode_header_json(header: &[u8], what: &'static str) -> Result<Value, DecodeError> {
    DecodeError::check_len(what, header.len(), MAX_HEADER_LEN)?;
    let trimmed = header.trim_ascii();
    if trimmed.is_empty() {
        return Err(DecodeError::Empty { what });
    }
    let bytes = BASE64.decode(trimmed).map_err(|e| DecodeError::Base64 {
        what,
        reason: e.to_string(),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DecodeError::Utf8 {
        what,
        offset: e.valid_up_to(),
    })?;
    json::parse_strict(text, what)
}

/// Decodes a JSON body (no base64) with the same strictness: size ([`MAX_BODY_LEN`]), UTF-8,
/// JSON.
pub fn decode_body_json(body: &[u8], what: &'static str) -> Result<Value, DecodeError> {
    DecodeError::check_len(what, body.len(), MAX_BODY_LEN)?;
    if body.trim_ascii().is_empty() {
        return Err(DecodeError::Empty { what });
    }
    let text = std::str::from_utf8(body).map_err(|e| DecodeError::Utf8 {
        what,
        offset: e.valid_up_to(),
    })?;
    json::parse_strict(text, what)
}

/// Strictly decodes any [`FromJson`] type from a JSON body (e.g. a facilitator request).
pub fn decode_body<T: FromJson>(body: &[u8], what: &'static str) -> Result<T, DecodeError> {
    T::from_json(&decode_body_json(body, what)?, "")
}

/// Encodes a v2 `PAYMENT-REQUIRED` header.
pub fn encode_payment_required(value: &PaymentRequired) -> Result<String, EncodeError> {
    encode_header(value)
}

/// Decodes a v2 `PAYMENT-REQUIRED` header.
pub fn decode_payment_required(header: impl AsRef<[u8]>) -> Result<PaymentRequired, DecodeError> {
    PaymentRequired::from_json(
        &decode_header_json(header.as_ref(), "PAYMENT-REQUIRED header")?,
        "",
    )
}

/// Encodes a v2 `PAYMENT-SIGNATURE` header.
pub fn encode_payment_signature(value: &PaymentPayload) -> Result<String, EncodeError> {
    encode_header(value)
}

/// Decodes a v2 `PAYMENT-SIGNATURE` header.
pub fn decode_payment_signature(header: impl AsRef<[u8]>) -> Result<PaymentPayload, DecodeError> {
    PaymentPayload::from_json(
        &decode_header_json(header.as_ref(), "PAYMENT-SIGNATURE header")?,
        "",
    )
}

/// Encodes a v2 `PAYMENT-RESPONSE` header.
pub fn encode_payment_response(value: &SettleResponse) -> Result<String, EncodeError> {
    encode_header(value)
}

/// Decodes a v2 `PAYMENT-RESPONSE` header.
pub fn decode_payment_response(header: impl AsRef<[u8]>) -> Result<SettleResponse, DecodeError> {
    SettleResponse::from_json_versioned(
        &decode_header_json(header.as_ref(), "PAYMENT-RESPONSE header")?,
        "",
        false,
    )
}

/// Encodes a v1 `X-PAYMENT` header.
pub fn encode_x_payment(value: &PaymentPayloadV1) -> Result<String, EncodeError> {
    encode_header(value)
}

/// Decodes a v1 `X-PAYMENT` header.
pub fn decode_x_payment(header: impl AsRef<[u8]>) -> Result<PaymentPayloadV1, DecodeError> {
    PaymentPayloadV1::from_json(
        &decode_header_json(header.as_ref(), "X-PAYMENT header")?,
        "",
    )
}

/// Encodes a v1 `X-PAYMENT-RESPONSE` header (network by v1 name).
pub fn encode_x_payment_response(value: &SettleResponse) -> Result<String, EncodeError> {
    encode_header(&value.to_v1_json())
}

/// Decodes a v1 `X-PAYMENT-RESPONSE` header.
pub fn decode_x_payment_response(header: impl AsRef<[u8]>) -> Result<SettleResponse, DecodeError> {
    SettleResponse::from_json_versioned(
        &decode_header_json(header.as_ref(), "X-PAYMENT-RESPONSE header")?,
        "",
        true,
    )
}

/// Decodes a v1 402 response body `{x402Version: 1, error?, accepts}`.
pub fn decode_payment_required_v1_body(body: &[u8]) -> Result<PaymentRequiredV1, DecodeError> {
    PaymentRequiredV1::from_json(&decode_body_json(body, "402 response body")?, "")
}

/// A 402 challenge of either version, as a client finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyPaymentRequired {
    /// From the v1 JSON body.
    V1(PaymentRequiredV1),
    /// From the v2 `PAYMENT-REQUIRED` header.
    V2(PaymentRequired),
}

/// Reads a 402 response: the v2 header when present (it wins), otherwise the v1 body.
pub fn decode_402(
    payment_required_header: Option<&[u8]>,
    body: &[u8],
) -> Result<AnyPaymentRequired, DecodeError> {
    match payment_required_header {
        Some(header) => decode_payment_required(header).map(AnyPaymentRequired::V2),
        None => decode_payment_required_v1_body(body).map(AnyPaymentRequired::V1),
    }
}
