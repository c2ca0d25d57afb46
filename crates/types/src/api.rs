//! The JSON of the operator's merchant API (`/v1/payments/…`): request bodies, the payment and
//! its parts, list responses, and the error envelope with its stable codes.
//!
//! The operator serializes these and the merchant client deserializes the same types, so the
//! two cannot drift. Deserialization is lenient where a client must tolerate an older operator
//! (fields added since, such as `flow`, fall back to their defaults; unknown fields are ignored);
//! serialization writes every field, as `openapi.yaml` documents.

use std::time::Duration;

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::lifecycle::{Amount, Flow, PaymentStatus};
use crate::wire::{PaymentPayload, PaymentRequirements};

/// `POST /v1/payments/authorize`: an x402 payment and the requirements it answers.
///
/// The payload and requirements are the x402 types ([`PaymentPayload`], [`PaymentRequirements`])
/// by default; the merchant client sends references to them (`AuthorizeRequest<&_, &_>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeRequest<P = PaymentPayload, R = PaymentRequirements> {
    /// The buyer's x402 payment (v2 shape; v1 is converted before it gets here).
    pub payment_payload: P,
    /// The requirements the merchant issued and the payment answers.
    pub payment_requirements: R,
    /// The merchant's id for the HTTP request being paid for (propagated to events and logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// How long to wait for the hold to be on chain before answering `authorizing`.
    /// `None`: the operator's configured default. Not part of the JSON body (a query/header knob).
    #[serde(skip)]
    pub wait: Option<Duration>,
}

/// Longest `wait` the operator accepts, in seconds: on authorize (the hold) and on
/// `GET /v1/payments/{id}` (the long poll). One definition for the operator and its clients.
pub const MAX_WAIT_SECS: u64 = 50;

/// `POST /v1/payments/{id}/capture`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureRequest {
    /// Token units to capture; `None` captures everything still capturable.
    #[serde(default, with = "opt_decimal", skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
}

/// Body of `POST /v1/payments/{id}/void`: empty or `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {}

/// `POST /v1/payments/{id}/refund`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundRequest {
    /// Token units to return to the payer (at most what was captured and not yet refunded).
    #[serde(with = "decimal")]
    pub amount: Amount,
}

/// Amounts of a payment, in token units, as decimal strings on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmountsView {
    /// Held by the escrow at authorization (or charged).
    #[serde(with = "decimal")]
    pub authorized: Amount,
    /// Sent to the merchant (fee included).
    #[serde(with = "decimal")]
    pub captured: Amount,
    /// Returned after capture.
    #[serde(with = "decimal")]
    pub refunded: Amount,
    /// Still capturable.
    #[serde(with = "decimal")]
    pub capturable: Amount,
    /// Still refundable.
    #[serde(with = "decimal")]
    pub refundable: Amount,
}

/// One chain transaction of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionView {
    /// `authorize`, `charge`, `capture`, `void`, `refund`, ….
    pub kind: String,
    /// The mined (or latest broadcast) hash, once there is one.
    #[serde(default)]
    pub hash: Option<B256>,
    /// Outbox status: `queued` … `final`, `reverted`, `abandoned`.
    pub status: String,
    /// The block it was mined in.
    #[serde(default)]
    pub block_number: Option<u64>,
    /// For a transaction that carried several payments (`execute`, `capture_batch`,
    /// `void_batch`): the escrow call it made for this one (`authorize`, `capture`, …). Absent
    /// for a transaction of its own, whose `kind` is the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

/// A failure recorded on a payment (`lastError`). Its code is the failure's own (an
/// [`ErrorCode`] or the name of the reverting contract error), so it stays a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorView {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
}

/// The JSON shape of a payment (see `DESIGN.md`, HTTP API, and `Payment` in `openapi.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    /// Operator id of the payment.
    pub id: Uuid,
    /// Owner.
    #[serde(default)]
    pub merchant_id: Uuid,
    /// The merchant's request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The escrow's `getHash(paymentInfo)`.
    pub payment_hash: B256,
    /// Lifecycle status.
    pub status: PaymentStatus,
    /// `authorize` (x402 flow `escrow`: a hold) or `charge` (flow `authorization`: captured at
    /// once). Absent from older operators (read as `authorize`).
    #[serde(default)]
    pub flow: Flow,
    /// Chain id.
    #[serde(default)]
    pub chain_id: u64,
    /// Escrow contract.
    #[serde(default)]
    pub escrow: Address,
    /// The PaymentInfo, in the x402 JSON form.
    #[serde(default)]
    pub payment_info: serde_json::Value,
    /// Amounts.
    pub amounts: AmountsView,
    /// Chain transactions, oldest first.
    #[serde(default)]
    pub transactions: Vec<TransactionView>,
    /// The last failure, if any.
    #[serde(default)]
    pub last_error: Option<ErrorView>,
    /// Auto-void time (unix ms).
    #[serde(default)]
    pub capture_deadline: Option<i64>,
    /// Creation time (unix ms).
    #[serde(default)]
    pub created_at: i64,
    /// Last change (unix ms).
    #[serde(default)]
    pub updated_at: i64,
}

impl PaymentView {
    /// The hash of the newest transaction that made the escrow call `kind` for this payment and
    /// has one: a transaction of its own (`kind` is the call) or a batch (`execute`,
    /// `capture_batch`, `void_batch`) whose `call` for this payment is `kind`.
    pub fn tx_hash(&self, kind: &str) -> Option<B256> {
        self.transactions
            .iter()
            .rev()
            .filter(|t| t.kind == kind || t.call.as_deref() == Some(kind))
            .find_map(|t| t.hash)
    }

    /// Whether the hold (or the charge) is not confirmed on chain yet.
    pub fn is_authorizing(&self) -> bool {
        matches!(
            self.status,
            PaymentStatus::Authorizing | PaymentStatus::Charging
        )
    }

    /// Whether the payment was charged (x402 flow `authorization`): captured at once, so the
    /// way back is a refund, not a void.
    pub fn is_charge(&self) -> bool {
        self.flow == Flow::Charge
    }
}

/// `GET /v1/payments` → `{payments: [...], next_cursor}` (see [`crate::query::PaymentQuery`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentList {
    /// Newest first (by creation time, then id).
    pub payments: Vec<PaymentView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page. Absent from older
    /// operators (read as `null`).
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// Every error answer: `{"error": {"code": "…", "message": "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

impl ErrorEnvelope {
    /// The envelope of `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorBody {
                code: code.as_str().to_owned(),
                message: message.into(),
                reason: None,
            },
        }
    }
}

/// The body of an error answer. `code` is one of [`ErrorCode`] when the operator wrote it; a
/// client keeps it as a string so that a code published after it was built still reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable code ([`ErrorCode::as_str`]).
    pub code: String,
    /// Detail for humans.
    #[serde(default)]
    pub message: String,
    /// The x402 reason of a refused payment (`invalid_auth_capture_evm_*`), when the operator
    /// names one more precise than `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ErrorBody {
    /// The code as an [`ErrorCode`], when it is one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.code)
    }
}

/// Stable error codes of the operator API. The string form (`as_str`) never changes once
/// published; the HTTP status is part of the contract too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON or a field out of range (400).
    InvalidRequest,
    /// Missing or unknown API key (401).
    Unauthorized,
    /// No such payment for this merchant (404).
    NotFound,
    /// `Idempotency-Key` missing on a POST (400).
    IdempotencyKeyMissing,
    /// Same key, different request (422).
    IdempotencyKeyReused,
    /// Same key, first request still running (409).
    IdempotencyKeyInFlight,
    /// Another action on this payment is in flight (409).
    PaymentBusy,
    /// The payment's status does not allow this action (409).
    InvalidState,
    /// The x402 payload is inconsistent with its requirements (400).
    InvalidPayload,
    /// The payer's signature does not recover to the payer (400).
    InvalidSignature,
    /// Requirements name another chain than this operator's (400).
    WrongChain,
    /// Requirements name an escrow or collector this operator does not use (400).
    WrongEscrow,
    /// `captureAuthorizer` is not this operator's signer (400).
    WrongOperator,
    /// The asset is not a configured token (400).
    UnsupportedAsset,
    /// `payTo` is not one of the merchant's receivers (403).
    PayeeNotAllowed,
    /// Amount is zero or above the payment's maximum (400).
    InvalidAmount,
    /// An expiry has passed or is too close to act on safely (400).
    Expired,
    /// Fee range or fee receiver unacceptable (400).
    InvalidFee,
    /// The payer's token balance is below the authorization (402).
    InsufficientFunds,
    /// The ERC-3009 authorization was already used or cancelled (409).
    AuthorizationUsed,
    /// A Permit2 payment whose payer has not approved Permit2 for enough of the token (402):
    /// the payer must `approve` Permit2 once, then pay again.
    Permit2AllowanceMissing,
    /// `eth_call` of the transaction reverted (400; the message carries the decoded error).
    SimulationFailed,
    /// More than is capturable (400).
    ExceedsCapturable,
    /// More than is refundable (400).
    ExceedsRefundable,
    /// The operator's refund float cannot fund this refund (409).
    RefundFloatInsufficient,
    /// The merchant's refund reserve cannot cover this refund (409): credit the reserve
    /// (deposit, admin credit, top-up) first.
    RefundReserveInsufficient,
    /// The chain RPC is unreachable; nothing was sent (503).
    ChainUnavailable,
    /// Unexpected failure (500).
    Internal,
    /// Facilitator (`/verify`, `/settle`): the x402 `payment-identifier` was already used with a
    /// different payload (409).
    PaymentIdentifierConflict,
    /// HTTP layer: the request body is over the limit (413).
    PayloadTooLarge,
    /// HTTP layer: a known path asked with another method (405).
    MethodNotAllowed,
    /// List: `cursor` / `after` is not a cursor this API issued (400).
    InvalidCursor,
    /// List: `limit` is not an integer from 1 to 100 (400).
    InvalidLimit,
    /// List: `status` names no payment status (400).
    InvalidStatusFilter,
    /// List: `created_after` / `created_before` is not an RFC 3339 time, or the range is empty (400).
    InvalidTimeFilter,
    /// List: `request_id` is empty or longer than 255 bytes (400).
    InvalidRequestIdFilter,
    /// List: `payer` is not an address (400).
    InvalidPayerFilter,
    /// List: `min_amount` / `max_amount` is not a decimal amount, or min is above max (400).
    InvalidAmountFilter,
    /// Events: `payment_id` is not a UUID (400).
    InvalidPaymentIdFilter,
    /// Events: `type` is not an event type name (400).
    InvalidEventTypeFilter,
    /// Webhook endpoint: the URL is not an absolute `http(s)` URL of at most 2,048 bytes (400).
    InvalidWebhookUrl,
}

impl ErrorCode {
    /// Every code, in declaration order (the published list: openapi, tests and the fuzz
    /// harness read it from here).
    pub const ALL: [ErrorCode; 41] = [
        Self::InvalidRequest,
        Self::Unauthorized,
        Self::NotFound,
        Self::IdempotencyKeyMissing,
        Self::IdempotencyKeyReused,
        Self::IdempotencyKeyInFlight,
        Self::PaymentBusy,
        Self::InvalidState,
        Self::InvalidPayload,
        Self::InvalidSignature,
        Self::WrongChain,
        Self::WrongEscrow,
        Self::WrongOperator,
        Self::UnsupportedAsset,
        Self::PayeeNotAllowed,
        Self::InvalidAmount,
        Self::Expired,
        Self::InvalidFee,
        Self::InsufficientFunds,
        Self::AuthorizationUsed,
        Self::Permit2AllowanceMissing,
        Self::SimulationFailed,
        Self::ExceedsCapturable,
        Self::ExceedsRefundable,
        Self::RefundFloatInsufficient,
        Self::RefundReserveInsufficient,
        Self::ChainUnavailable,
        Self::Internal,
        Self::PaymentIdentifierConflict,
        Self::PayloadTooLarge,
        Self::MethodNotAllowed,
        Self::InvalidCursor,
        Self::InvalidLimit,
        Self::InvalidStatusFilter,
        Self::InvalidTimeFilter,
        Self::InvalidRequestIdFilter,
        Self::InvalidPayerFilter,
        Self::InvalidAmountFilter,
        Self::InvalidPaymentIdFilter,
        Self::InvalidEventTypeFilter,
        Self::InvalidWebhookUrl,
    ];

    /// The stable string code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::IdempotencyKeyMissing => "idempotency_key_missing",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            Self::PaymentBusy => "payment_busy",
            Self::InvalidState => "invalid_state",
            Self::InvalidPayload => "invalid_payload",
            Self::InvalidSignature => "invalid_signature",
            Self::WrongChain => "wrong_chain",
            Self::WrongEscrow => "wrong_escrow",
            Self::WrongOperator => "wrong_operator",
            Self::UnsupportedAsset => "unsupported_asset",
            Self::PayeeNotAllowed => "payee_not_allowed",
            Self::InvalidAmount => "invalid_amount",
            Self::Expired => "expired",
            Self::InvalidFee => "invalid_fee",
            Self::InsufficientFunds => "insufficient_funds",
            Self::AuthorizationUsed => "authorization_used",
            Self::Permit2AllowanceMissing => "permit2_allowance_missing",
            Self::SimulationFailed => "simulation_failed",
            Self::ExceedsCapturable => "exceeds_capturable",
            Self::ExceedsRefundable => "exceeds_refundable",
            Self::RefundFloatInsufficient => "refund_float_insufficient",
            Self::RefundReserveInsufficient => "refund_reserve_insufficient",
            Self::ChainUnavailable => "chain_unavailable",
            Self::Internal => "internal",
            Self::PaymentIdentifierConflict => "payment_identifier_conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::InvalidCursor => "invalid_cursor",
            Self::InvalidLimit => "invalid_limit",
            Self::InvalidStatusFilter => "invalid_status_filter",
            Self::InvalidTimeFilter => "invalid_time_filter",
            Self::InvalidRequestIdFilter => "invalid_request_id_filter",
            Self::InvalidPayerFilter => "invalid_payer_filter",
            Self::InvalidAmountFilter => "invalid_amount_filter",
            Self::InvalidPaymentIdFilter => "invalid_payment_id_filter",
            Self::InvalidEventTypeFilter => "invalid_event_type_filter",
            Self::InvalidWebhookUrl => "invalid_webhook_url",
        }
    }

    /// The code spelled `text`, if any.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// The HTTP status this code is answered with.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest
            | Self::IdempotencyKeyMissing
            | Self::InvalidPayload
            | Self::InvalidSignature
            | Self::WrongChain
            | Self::WrongEscrow
            | Self::WrongOperator
            | Self::UnsupportedAsset
            | Self::InvalidAmount
            | Self::Expired
            | Self::InvalidFee
            | Self::SimulationFailed
            | Self::ExceedsCapturable
            | Self::ExceedsRefundable
            | Self::InvalidCursor
            | Self::InvalidLimit
            | Self::InvalidStatusFilter
            | Self::InvalidTimeFilter
            | Self::InvalidRequestIdFilter
            | Self::InvalidPayerFilter
            | Self::InvalidAmountFilter
            | Self::InvalidPaymentIdFilter
            | Self::InvalidEventTypeFilter
            | Self::InvalidWebhookUrl => 400,
            Self::Unauthorized => 401,
            Self::InsufficientFunds | Self::Permit2AllowanceMissing => 402,
            Self::PayeeNotAllowed => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::IdempotencyKeyInFlight
            | Self::PaymentBusy
            | Self::InvalidState
            | Self::AuthorizationUsed
            | Self::RefundFloatInsufficient
            | Self::RefundReserveInsufficient
            | Self::PaymentIdentifierConflict => 409,
            Self::PayloadTooLarge => 413,
            Self::IdempotencyKeyReused => 422,
            Self::Internal => 500,
            Self::ChainUnavailable => 503,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serde for token amounts as decimal strings (JSON numbers lose precision above 2^53).
pub mod decimal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::lifecycle::Amount;

    /// Writes the amount as a decimal string.
    pub fn serialize<S: Serializer>(amount: &Amount, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(amount)
    }

    /// Reads a decimal string of digits only (no sign, fraction or exponent).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(D::Error::custom)
    }

    /// Parses a decimal token amount.
    pub fn parse(text: &str) -> Result<Amount, String> {
        if text.is_empty() || text.len() > 39 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "amount must be a decimal string of digits, got {text:?}"
            ));
        }
        text.parse::<Amount>()
            .map_err(|e| format!("amount {text:?}: {e}"))
    }
}

/// Serde for optional decimal amounts.
pub mod opt_decimal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::lifecycle::Amount;

    /// Writes `Some` as a decimal string, `None` as null.
    pub fn serialize<S: Serializer>(amount: &Option<Amount>, s: S) -> Result<S::Ok, S::Error> {
        match amount {
            Some(a) => s.collect_str(a),
            None => s.serialize_none(),
        }
    }

    /// Reads null or a decimal string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Amount>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| super::decimal::parse(&t).map_err(D::Error::custom))
            .transpose()
    }
}
