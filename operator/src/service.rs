//! The seam between the HTTP layer and the engine: what a merchant can ask of the operator, what
//! it gets back, and the stable error codes. `api` is written against [`PaymentService`];
//! `engine::Engine` implements it. Keeping the seam a trait lets the HTTP layer be tested with a
//! fake and the engine without HTTP.

use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use alloy::primitives::U256;
use alloy::primitives::aliases::{U48, U120};
use x402_escrow_bindings::PaymentInfo;
use x402_escrow_sdk::schemes::auth_capture::payment_info_to_json;

pub use x402_escrow_types::api::{decimal, opt_decimal};
pub use x402_escrow_types::{
    AmountsView, AuthorizeRequest, CaptureRequest, ErrorCode, ErrorView, PaymentList, PaymentQuery,
    PaymentView, RefundRequest, TransactionView,
};

use crate::store::{Merchant, Payment, PaymentInfoRecord, Store, StoreError};

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

    /// One payment. With `wait`, a payment still in flight (`authorizing`, `capturing`, …) is
    /// answered once it settles or the wait runs out, whichever comes first (a long poll: the
    /// caller is woken by the same push path the engine's own waits use).
    fn get(
        &self,
        merchant: &Merchant,
        payment_id: Uuid,
        wait: Option<Duration>,
    ) -> impl Future<Output = Result<PaymentView, ServiceError>> + Send;

    /// What the operator accepts from `merchant` (`GET /v1/merchant`).
    fn terms(&self, merchant: &Merchant) -> x402_escrow_sdk::merchant::MerchantTerms;

    /// The merchant's payments for one HTTP request id, newest first.
    fn by_request_id(
        &self,
        merchant: &Merchant,
        request_id: &str,
    ) -> impl Future<Output = Result<Vec<PaymentView>, ServiceError>> + Send;

    /// One page of the merchant's payments matching `query`, newest first by creation time
    /// then id, with the cursor of the next page (`GET /v1/payments`).
    fn list_payments(
        &self,
        merchant: &Merchant,
        query: &PaymentQuery,
    ) -> impl Future<Output = Result<PaymentList, ServiceError>> + Send;
}

/// The transactions of a stored payment as merchants see them: each with its mined hash, or
/// the latest attempt's while it is not mined; a batch transaction with the call it made for
/// this payment (`call`).
pub async fn transaction_views(
    store: &Store,
    payment_id: Uuid,
) -> Result<Vec<TransactionView>, StoreError> {
    let txs = store.txs_for_payment(payment_id).await?;
    let calls: std::collections::HashMap<Uuid, _> = if txs.iter().any(|t| t.kind.is_batch()) {
        store
            .batch_calls_for_payment(payment_id)
            .await?
            .into_iter()
            .collect()
    } else {
        std::collections::HashMap::new()
    };
    let mut views = Vec::with_capacity(txs.len());
    for t in &txs {
        let hash = match t.mined_tx_hash {
            Some(hash) => Some(hash),
            None if t.attempts > 0 => store.attempts_for(t.id).await?.last().map(|a| a.tx_hash),
            None => None,
        };
        views.push(TransactionView {
            kind: t.kind.as_str().to_owned(),
            hash,
            status: t.status.as_str().to_owned(),
            block_number: t.block_number,
            call: calls.get(&t.id).map(|k| k.as_str().to_owned()),
        });
    }
    Ok(views)
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
