//! The decoding error shared by every strict decoder in this crate.

use crate::amount::AmountError;
use crate::primitives::{AddressError, HexError};

/// Why a header, a request body or a JSON value was rejected.
///
/// Every variant that concerns a field names it by its JSON path (`accepted.extra.minFeeBps`,
/// `accepts[1].payTo`); the `Display` text states the problem and that path, and is meant to be
/// returned to the client as is (a 400). [`DecodeError::code`] gives a stable machine-readable
/// code for the same problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The header (or body) is empty.
    #[error("{what} is empty")]
    Empty {
        /// What was empty (`PAYMENT-SIGNATURE header`, `request body`, …).
        what: &'static str,
    },
    /// The header (or body) is larger than the limit.
    #[error("{what} is {len} bytes long, more than the {max}-byte limit")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The header is not standard base64 (with or without padding).
    #[error("{what} is not valid base64: {reason}")]
    Base64 {
        /// The header.
        what: &'static str,
        /// What the base64 decoder found.
        reason: String,
    },
    /// The decoded bytes are not UTF-8.
    #[error("{what} does not decode to UTF-8 text (invalid byte at offset {offset})")]
    Utf8 {
        /// The header or body.
        what: &'static str,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The text is not a JSON document (syntax error, trailing data, duplicate key, nesting).
    #[error("{what} is not valid JSON: {reason}")]
    Json {
        /// The header or body.
        what: &'static str,
        /// The JSON parser's message, with line and column.
        reason: String,
    },
    /// A required field is absent (or `null`).
    #[error("`{field}` is missing")]
    MissingField {
        /// JSON path of the field.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        /// JSON path of the field.
        field: String,
        /// What was expected (`a string`, `a non-negative integer`, …).
        expected: &'static str,
        /// The JSON type found (`null`, `boolean`, `number`, `string`, `array`, `object`).
        found: &'static str,
    },
    /// `x402Version` is not the version this decoder speaks.
    #[error("`{field}` is {found}, expected {expected}")]
    VersionMismatch {
        /// JSON path of the field (usually `x402Version`).
        field: String,
        /// The version this decoder speaks.
        expected: u8,
        /// The value found, as text.
        found: String,
    },
    /// A decimal-string amount is malformed or out of range.
    #[error("`{field}`: {reason}")]
    InvalidAmount {
        /// JSON path of the field.
        field: String,
        /// What is wrong with it.
        reason: AmountError,
    },
    /// An address is malformed or fails its EIP-55 checksum.
    #[error("`{field}`: {reason}")]
    InvalidAddress {
        /// JSON path of the field.
        field: String,
        /// What is wrong with it.
        reason: AddressError,
    },
    /// A hex string (nonce, salt, signature, transaction hash) is malformed.
    #[error("`{field}`: {reason}")]
    InvalidHex {
        /// JSON path of the field.
        field: String,
        /// What is wrong with it.
        reason: HexError,
    },
    /// A network identifier is neither a valid CAIP-2 `eip155:<chainId>` nor a known v1 name.
    #[error("`{field}`: unsupported network {value:?} ({reason})")]
    InvalidNetwork {
        /// JSON path of the field.
        field: String,
        /// The value found.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An integer is outside the range its field allows.
    #[error("`{field}` is {value}, outside the allowed range {min}..={max}")]
    OutOfRange {
        /// JSON path of the field.
        field: String,
        /// The value found, as text.
        value: String,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
    /// A string field holds a value outside its allowed set or format.
    #[error("`{field}` is {value:?}; {expected}")]
    InvalidValue {
        /// JSON path of the field.
        field: String,
        /// The value found (truncated to 64 characters).
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// Fields that are each valid contradict each other.
    #[error("`{field}`: {reason}")]
    Inconsistent {
        /// JSON path of the field found at fault.
        field: String,
        /// The contradiction.
        reason: String,
    },
    /// The challenge lists no payment option on an EVM (`eip155`) network.
    #[error("`{field}` lists no payment option on an eip155 network this client can pay")]
    NoSupportedAccepts {
        /// JSON path of the `accepts` array.
        field: String,
    },
}

impl DecodeError {
    /// Fails with [`DecodeError::TooLarge`] when `len` bytes of `what` are more than the
    /// `max`-byte limit.
    pub fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), Self> {
        if len > max {
            return Err(Self::TooLarge { what, len, max });
        }
        Ok(())
    }

    /// A stable snake_case code for the problem (for JSON error bodies and metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty { .. } => "empty",
            Self::TooLarge { .. } => "too_large",
            Self::Base64 { .. } => "invalid_base64",
            Self::Utf8 { .. } => "invalid_utf8",
            Self::Json { .. } => "invalid_json",
            Self::MissingField { .. } => "missing_field",
            Self::WrongType { .. } => "wrong_type",
            Self::VersionMismatch { .. } => "unsupported_x402_version",
            Self::InvalidAmount { .. } => "invalid_amount",
            Self::InvalidAddress { .. } => "invalid_address",
            Self::InvalidHex { .. } => "invalid_hex",
            Self::InvalidNetwork { .. } => "invalid_network",
            Self::OutOfRange { .. } => "out_of_range",
            Self::InvalidValue { .. } => "invalid_value",
            Self::Inconsistent { .. } => "inconsistent",
            Self::NoSupportedAccepts { .. } => "no_supported_accepts",
        }
    }

    /// The JSON path of the field at fault, when the problem concerns one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::MissingField { field }
            | Self::WrongType { field, .. }
            | Self::VersionMismatch { field, .. }
            | Self::InvalidAmount { field, .. }
            | Self::InvalidAddress { field, .. }
            | Self::InvalidHex { field, .. }
            | Self::InvalidNetwork { field, .. }
            | Self::OutOfRange { field, .. }
            | Self::InvalidValue { field, .. }
            | Self::Inconsistent { field, .. }
            | Self::NoSupportedAccepts { field } => Some(field),
            Self::Empty { .. }
            | Self::TooLarge { .. }
            | Self::Base64 { .. }
            | Self::Utf8 { .. }
            | Self::Json { .. } => None,
        }
    }
}
