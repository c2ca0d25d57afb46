//! The seam between the HTTP layer and the engine: what a merchant can ask of the operator, what
//! it gets back, and the stable error codes. `api` is written against [`PaymentService`];
//! `engine::Engine` implements it. Keeping the seam a trait lets the HTTP layer be tested with a
//! fake and the engine without HTTP.

use std::future::Future;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements};

use alloy::primitives::U256;
use alloy::primitives::aliases::{U48, U120};
use x402_escrow_bindings::PaymentInfo;
use x402_escrow_sdk::schemes::auth_capture::payment_info_to_json;

use crate::lifecycle::{Amount, Flow, PaymentStatus};
use crate::store::{Merchant, Payment, PaymentInfoRecord};

/// `POST /v1/payments/authorize`: an x402 payment and the requirements it answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeRequest {
    /// The buyer's x402 payment (v2 shape; v1 is converted before it gets here).
    pub payment_payload: PaymentPayload,
    /// The requirements the merchant issued and the payment answers.
    pub payment_requirements: PaymentRequirements,
    /// The merchant's id for the HTTP request being paid for (propagated to events and logs).
    #[serde(default)]
    pub request_id: Option<String>,
    /// How long to wait for the hold to be on chain before answering `authorizing`.
    /// `None`: the operator's configured default. Not part of the JSON body (a query/header knob).
    #[serde(skip)]
    pub wait: Option<Duration>,
}

/// `POST /v1/payments/{id}/capture`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureRequest {
    /// Token units to capture; `None` captures everything still capturable.
    #[serde(default, with = "opt_decimal")]
    pub amount: Option<Amount>,
}

/// `POST /v1/payments/{id}/refund`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub hash: Option<B256>,
    /// Outbox status: `queued` … `final`, `reverted`, `abandoned`.
    pub status: String,
    /// The block it was mined in.
    pub block_number: Option<u64>,
}

/// A failure recorded on a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorView {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable detail.
    pub message: String,
}

/// The JSON shape of a payment (see `DESIGN.md`, HTTP API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    /// Operator id of the payment.
    pub id: Uuid,
    /// Owner.
    pub merchant_id: Uuid,
    /// The merchant's request id.
    pub request_id: Option<String>,
    /// The escrow's `getHash(paymentInfo)`.
    pub payment_hash: B256,
    /// Lifecycle status.
    pub status: PaymentStatus,
    /// `authorize` (escrow flow) or `charge`.
    pub flow: Flow,
    /// Chain id.
    pub chain_id: u64,
    /// Escrow contract.
    pub escrow: Address,
    /// The PaymentInfo, in the x402 JSON form.
    pub payment_info: serde_json::Value,
    /// Amounts.
    pub amounts: AmountsView,
    /// Chain transactions, oldest first.
    pub transactions: Vec<TransactionView>,
    /// The last failure, if any.
    pub last_error: Option<ErrorView>,
    /// Auto-void time (unix ms).
    pub capture_deadline: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
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
    /// `eth_call` of the transaction reverted (400; the message carries the decoded error).
    SimulationFailed,
    /// More than is capturable (400).
    ExceedsCapturable,
    /// More than is refundable (400).
    ExceedsRefundable,
    /// The operator's refund float cannot fund this refund (409).
    RefundFloatInsufficient,
    /// The chain RPC is unreachable; nothing was sent (503).
    ChainUnavailable,
    /// Unexpected failure (500).
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order (the published list: openapi, tests and the fuzz
    /// harness read it from here).
    pub const ALL: [ErrorCode; 26] = [
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
        Self::SimulationFailed,
        Self::ExceedsCapturable,
        Self::ExceedsRefundable,
        Self::RefundFloatInsufficient,
        Self::ChainUnavailable,
        Self::Internal,
    ];

    /// The stable string code.
    pub fn as_str(self) -> &'static str {
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
            Self::SimulationFailed => "simulation_failed",
            Self::ExceedsCapturable => "exceeds_capturable",
            Self::ExceedsRefundable => "exceeds_refundable",
            Self::RefundFloatInsufficient => "refund_float_insufficient",
            Self::ChainUnavailable => "chain_unavailable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status this code is answered with.
    pub fn http_status(self) -> u16 {
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
            | Self::ExceedsRefundable => 400,
            Self::Unauthorized => 401,
            Self::InsufficientFunds => 402,
            Self::PayeeNotAllowed => 403,
            Self::NotFound => 404,
            Self::IdempotencyKeyInFlight
            | Self::PaymentBusy
            | Self::InvalidState
            | Self::AuthorizationUsed
            | Self::RefundFloatInsufficient => 409,
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

/// A refused or failed request: a stable code and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ServiceError {
    /// Stable code.
    pub code: ErrorCode,
    /// What exactly went wrong.
    pub message: String,
    /// The x402 reason of a refused payment (`invalid_auth_capture_evm_capture_deadline_expired`,
    /// …), where one names the refusal more precisely than `code`.
    pub reason: Option<&'static str>,
}

impl ServiceError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
        }
    }

    /// The same error naming its x402 reason.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// What the operator offers merchants. Each method is scoped to `merchant`: a merchant sees and
/// moves only its own payments (someone else's payment id is `not_found`).
pub trait PaymentService: Send + Sync + 'static {
    /// Verifies the x402 payment (no gas is spent on anything that fails) and places the hold.
    /// Returns the payment once authorized, or still `authorizing` if the wait ran out.
    fn authorize(
        &self,
        merchant: &Merchant,
        request: AuthorizeRequest,
        idempotency_key: Option<&str>,
    ) -> impl Future<Output = Result<PaymentView, ServiceError>> + Send;

    /// Captures part or all of the hold.
    fn capture(
        &self,
        merchant: &Merchant,
        payment_id: Uuid,
        request: CaptureRequest,
    ) -> impl Future<Output = Result<PaymentView, ServiceError>> + Send;

    /// Releases the rest of the hold to the payer.
    fn void(
        &self,
        merchant: &Merchant,
        payment_id: Uuid,
    ) -> impl Future<Output = Result<PaymentView, ServiceError>> + Send;

    /// Returns captured funds to the payer, funded by the operator's refund float.
    fn refund(
        &self,
        merchant: &Merchant,
        payment_id: Uuid,
        request: RefundRequest,
    ) -> impl Future<Output = Result<PaymentView, ServiceError>> + Send;

    /// One payment.
    fn get(
        &self,
        merchant: &Merchant,
        payment_id: Uuid,
    ) -> impl Future<Output = Result<PaymentView, ServiceError>> + Send;

    /// What the operator accepts from `merchant` (`GET /v1/merchant`).
    fn terms(&self, merchant: &Merchant) -> x402_escrow_sdk::merchant::MerchantTerms;

    /// The merchant's payments for one HTTP request id, newest first.
    fn by_request_id(
        &self,
        merchant: &Merchant,
        request_id: &str,
    ) -> impl Future<Output = Result<Vec<PaymentView>, ServiceError>> + Send;
}

/// Builds the view of a stored payment and its transactions.
pub fn payment_view(payment: &Payment, transactions: Vec<TransactionView>) -> PaymentView {
    let amounts = &payment.amounts;
    let capturable = amounts
        .authorized
        .saturating_sub(amounts.captured + amounts.released);
    PaymentView {
        id: payment.id,
        merchant_id: payment.merchant_id,
        request_id: payment.request_id.clone(),
        payment_hash: payment.payment_hash,
        status: payment.status,
        flow: payment.flow,
        chain_id: payment.chain_id,
        escrow: payment.escrow,
        payment_info: serde_json::to_value(payment_info_to_json(&to_payment_info(&payment.info)))
            .unwrap_or(serde_json::Value::Null),
        amounts: AmountsView {
            authorized: amounts.authorized,
            captured: amounts.captured,
            refunded: amounts.refunded,
            capturable,
            refundable: amounts.captured.saturating_sub(amounts.refunded),
        },
        transactions,
        last_error: payment.last_error_code.as_ref().map(|code| ErrorView {
            code: code.clone(),
            message: payment.last_error_message.clone().unwrap_or_default(),
        }),
        capture_deadline: payment.capture_deadline_at,
        created_at: payment.created_at,
        updated_at: payment.updated_at,
    }
}

/// The escrow's ABI struct for a stored PaymentInfo.
pub fn to_payment_info(record: &PaymentInfoRecord) -> PaymentInfo {
    PaymentInfo {
        operator: record.operator,
        payer: record.payer,
        receiver: record.receiver,
        token: record.token,
        maxAmount: U120::saturating_from(record.max_amount),
        preApprovalExpiry: U48::saturating_from(record.pre_approval_expiry),
        authorizationExpiry: U48::saturating_from(record.authorization_expiry),
        refundExpiry: U48::saturating_from(record.refund_expiry),
        minFeeBps: record.min_fee_bps,
        maxFeeBps: record.max_fee_bps,
        feeReceiver: record.fee_receiver,
        salt: record.salt,
    }
}

/// The store's record of an ABI PaymentInfo (lossless: uint120 and uint48 fit u128 and u64).
pub fn to_record(info: &PaymentInfo) -> PaymentInfoRecord {
    PaymentInfoRecord {
        operator: info.operator,
        payer: info.payer,
        receiver: info.receiver,
        token: info.token,
        max_amount: info.maxAmount.to::<u128>(),
        pre_approval_expiry: info.preApprovalExpiry.to::<u64>(),
        authorization_expiry: info.authorizationExpiry.to::<u64>(),
        refund_expiry: info.refundExpiry.to::<u64>(),
        min_fee_bps: info.minFeeBps,
        max_fee_bps: info.maxFeeBps,
        fee_receiver: info.feeReceiver,
        salt: U256::from(info.salt),
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
