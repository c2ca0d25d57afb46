//! The `payment-identifier` extension: a client-chosen idempotency key for a payment.
//!
//! The server advertises it in `PaymentRequired.extensions`; the client echoes the extension in
//! `PaymentPayload.extensions` with `info.id` (16–128 characters of `[A-Za-z0-9_-]`). Same id
//! and same payload → the cached result; same id and a different payload → 409.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::DecodeError;
use crate::json::{self as strict, Obj};

/// The extension's key in `extensions`.
pub const PAYMENT_IDENTIFIER: &str = "payment-identifier";
/// Shortest allowed id.
pub const PAYMENT_ID_MIN_LEN: usize = 16;
/// Longest allowed id.
pub const PAYMENT_ID_MAX_LEN: usize = 128;

/// The extension's `info` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentIdentifierInfo {
    /// Whether the server requires an id.
    pub required: bool,
    /// The client's id (in payloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Why a payment id is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentIdError {
    /// Fewer than 16 or more than 128 characters.
    #[error("payment id must be 16 to 128 characters long, found {0}")]
    Length(usize),
    /// A character outside `[A-Za-z0-9_-]`.
    #[error("payment id may only contain letters, digits, '-' and '_'")]
    Character,
}

/// Checks a payment id's length and characters.
pub fn validate_payment_id(id: &str) -> Result<(), PaymentIdError> {
    let len = id.chars().count();
    if !(PAYMENT_ID_MIN_LEN..=PAYMENT_ID_MAX_LEN).contains(&len) {
        return Err(PaymentIdError::Length(len));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PaymentIdError::Character);
    }
    Ok(())
}

/// A fresh id: `pay_` and 32 random hex digits.
pub fn new_payment_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut id = String::with_capacity(36);
    id.push_str("pay_");
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The JSON schema the extension publishes for its `info`.
pub fn payment_identifier_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "required": { "type": "boolean" },
            "id": { "type": "string", "minLength": PAYMENT_ID_MIN_LEN, "maxLength": PAYMENT_ID_MAX_LEN }
        },
        "required": ["required"]
    })
}

/// The extension as a server advertises it (`{info: {required}, schema}`).
pub fn advertise_payment_identifier(required: bool) -> Value {
    json!({ "info": { "required": required }, "schema": payment_identifier_schema() })
}

/// Adds the client's id to a payload's extensions: echoes the server's advertised extension
/// (when present) and sets `info.id`.
pub fn set_payment_id(extensions: &mut Map<String, Value>, advertised: Option<&Value>, id: &str) {
    let mut entry = advertised
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| advertise_payment_identifier(false));
    if let Some(object) = entry.as_object_mut() {
        let info = object
            .entry("info")
            .or_insert_with(|| json!({ "required": false }));
        if !info.is_object() {
            *info = json!({ "required": false });
        }
        if let Some(info) = info.as_object_mut() {
            info.insert("id".to_owned(), Value::String(id.to_owned()));
        }
    }
    extensions.insert(PAYMENT_IDENTIFIER.to_owned(), entry);
}

/// Decodes the extension's `info` from an `extensions` map (`path` is the map's JSON path):
/// `None` when absent; an error when malformed or when the id is invalid.
pub fn payment_identifier_info(
    extensions: &Map<String, Value>,
    path: &str,
) -> Result<Option<PaymentIdentifierInfo>, DecodeError> {
    let Some(entry) = extensions.get(PAYMENT_IDENTIFIER).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let o = Obj::new(entry, &strict::join(path, PAYMENT_IDENTIFIER))?;
    let Some(info) = o.opt_value("info") else {
        return Ok(None);
    };
    let info = Obj::new(info, &o.field("info"))?;
    let required = info.opt("required", strict::boolean)?.unwrap_or(false);
    let id = info.opt_str("id")?;
    if let Some(id) = &id {
        validate_payment_id(id).map_err(|e| DecodeError::InvalidValue {
            field: info.field("id"),
            value: strict::truncate(id),
            expected: match e {
                PaymentIdError::Length(_) => "expected 16 to 128 characters",
                PaymentIdError::Character => "expected only letters, digits, '-' and '_'",
            },
        })?;
    }
    Ok(Some(PaymentIdentifierInfo { required, id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_payment_id("pay_7d5d747be160e280504c099d984bcfe0").is_ok());
        assert_eq!(validate_payment_id("short"), Err(PaymentIdError::Length(5)));
        assert_eq!(
            validate_payment_id(&"a".repeat(129)),
            Err(PaymentIdError::Length(129))
        );
        assert_eq!(
            validate_payment_id("pay 7d5d747be160e2805"),
            Err(PaymentIdError::Character)
        );
        let id = new_payment_id();
        assert!(validate_payment_id(&id).is_ok(), "{id}");
    }

    #[test]
    fn echo() {
        let mut ext = Map::new();
        set_payment_id(
            &mut ext,
            Some(&advertise_payment_identifier(true)),
            "pay_0123456789abcdef",
        );
        let info = payment_identifier_info(&ext, "extensions")
            .unwrap()
            .unwrap();
        assert_eq!(
            info,
            PaymentIdentifierInfo {
                required: true,
                id: Some("pay_0123456789abcdef".into())
            }
        );
        assert!(ext[PAYMENT_IDENTIFIER].get("schema").is_some());
    }
}
