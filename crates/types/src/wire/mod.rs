//! x402 wire types (v1 and v2) and their base64-JSON header codecs.
//!
//! Field names are spelled exactly as the x402 specification does; optional fields that are
//! absent are omitted on output, so decoding then encoding is faithful. Scheme-specific parts
//! (`extra`, `payload`) are typed for the schemes this crate speaks and kept verbatim otherwise.

pub mod codec;
pub mod extensions;
mod v1;
mod v2;

use serde::Serialize;
use serde_json::{Map, Value};

pub use v1::{PaymentPayloadV1, PaymentRequiredV1, PaymentRequirementsV1};
pub use v2::{
    PaymentPayload, PaymentRequired, PaymentRequirements, RequirementsMismatch, ResourceInfo,
};

use crate::DecodeError;
use crate::json::{self, FromJson, Obj};
use crate::schemes::auth_capture::{
    AuthCaptureExtra, AuthCapturePayload, AuthCapturePermit2Payload, LifecyclePayload,
};
use crate::schemes::exact::{ExactExtra, ExactPayload};
use crate::schemes::{AUTH_CAPTURE, EXACT};

/// The protocol version of the v1 types.
pub const X402_VERSION_1: u8 = 1;
/// The protocol version of the v2 types.
pub const X402_VERSION_2: u8 = 2;

/// The `extra` object of a payment requirement, typed by scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Extra {
    /// `auth-capture`.
    AuthCapture(AuthCaptureExtra),
    /// `exact`.
    Exact(ExactExtra),
    /// Any other scheme, verbatim.
    Other(Map<String, Value>),
}

impl Extra {
    /// Decodes `extra` for `scheme`.
    pub(crate) fn from_json_for(
        scheme: &str,
        value: &Value,
        path: &str,
    ) -> Result<Self, DecodeError> {
        Ok(match scheme {
            AUTH_CAPTURE => Self::AuthCapture(AuthCaptureExtra::from_json(value, path)?),
            EXACT => Self::Exact(ExactExtra::from_json(value, path)?),
            _ => Self::Other(json::object(value, path)?.clone()),
        })
    }

    /// The auth-capture extra, if that is what this is.
    pub fn as_auth_capture(&self) -> Option<&AuthCaptureExtra> {
        match self {
            Self::AuthCapture(extra) => Some(extra),
            _ => None,
        }
    }

    /// The exact extra, if that is what this is.
    pub fn as_exact(&self) -> Option<&ExactExtra> {
        match self {
            Self::Exact(extra) => Some(extra),
            _ => None,
        }
    }
}

/// The scheme-specific `payload` of a PaymentPayload, typed by scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SchemePayload {
    /// `auth-capture` client payload (ERC-3009).
    AuthCapture(AuthCapturePayload),
    /// `auth-capture` client payload (Permit2: `permit2Authorization`).
    AuthCapturePermit2(AuthCapturePermit2Payload),
    /// `auth-capture` lifecycle payload (`type`: capture, void, refund).
    AuthCaptureLifecycle(LifecyclePayload),
    /// `exact` client payload (ERC-3009).
    Exact(ExactPayload),
    /// Any other scheme or variant (`exact` with Permit2), verbatim.
    Other(Map<String, Value>),
}

impl SchemePayload {
    /// Decodes `payload` for `scheme`.
    pub(crate) fn from_json_for(
        scheme: &str,
        value: &Value,
        path: &str,
    ) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        Ok(match scheme {
            AUTH_CAPTURE if o.has("type") => {
                Self::AuthCaptureLifecycle(LifecyclePayload::from_json(value, path)?)
            }
            AUTH_CAPTURE if o.has("authorization") || !o.has("permit2Authorization") => {
                Self::AuthCapture(AuthCapturePayload::from_json(value, path)?)
            }
            AUTH_CAPTURE => {
                Self::AuthCapturePermit2(AuthCapturePermit2Payload::from_json(value, path)?)
            }
            EXACT if o.has("authorization") || !o.has("permit2Authorization") => {
                Self::Exact(ExactPayload::from_json(value, path)?)
            }
            _ => Self::Other(o.map().clone()),
        })
    }

    /// The auth-capture client payload, if that is what this is.
    pub fn as_auth_capture(&self) -> Option<&AuthCapturePayload> {
        match self {
            Self::AuthCapture(payload) => Some(payload),
            _ => None,
        }
    }

    /// The auth-capture Permit2 client payload, if that is what this is.
    pub fn as_auth_capture_permit2(&self) -> Option<&AuthCapturePermit2Payload> {
        match self {
            Self::AuthCapturePermit2(payload) => Some(payload),
            _ => None,
        }
    }

    /// The payer of a client payload (`authorization.from` or `permit2Authorization.from`);
    /// `None` for lifecycle and unknown payloads.
    pub fn payer(&self) -> Option<alloy_primitives::Address> {
        match self {
            Self::AuthCapture(payload) => Some(payload.authorization.from),
            Self::AuthCapturePermit2(payload) => Some(payload.permit2_authorization.from),
            Self::Exact(payload) => Some(payload.authorization.from),
            Self::AuthCaptureLifecycle(_) | Self::Other(_) => None,
        }
    }

    /// The auth-capture lifecycle payload, if that is what this is.
    pub fn as_lifecycle(&self) -> Option<&LifecyclePayload> {
        match self {
            Self::AuthCaptureLifecycle(payload) => Some(payload),
            _ => None,
        }
    }

    /// The exact payload, if that is what this is.
    pub fn as_exact(&self) -> Option<&ExactPayload> {
        match self {
            Self::Exact(payload) => Some(payload),
            _ => None,
        }
    }
}

impl From<AuthCapturePayload> for SchemePayload {
    fn from(payload: AuthCapturePayload) -> Self {
        Self::AuthCapture(payload)
    }
}

impl From<AuthCapturePermit2Payload> for SchemePayload {
    fn from(payload: AuthCapturePermit2Payload) -> Self {
        Self::AuthCapturePermit2(payload)
    }
}

impl From<LifecyclePayload> for SchemePayload {
    fn from(payload: LifecyclePayload) -> Self {
        Self::AuthCaptureLifecycle(payload)
    }
}

impl From<ExactPayload> for SchemePayload {
    fn from(payload: ExactPayload) -> Self {
        Self::Exact(payload)
    }
}
