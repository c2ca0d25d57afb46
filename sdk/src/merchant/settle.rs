//! After the handler: capture or void (in spawned tasks, so a dropped response cannot cancel
//! them), the drop guard that voids when the client goes away, and the receipt.

use std::time::Duration;

use alloy::primitives::Address;
use axum::body::Body;
use axum::http::{HeaderValue, Response};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::operator::{OperatorClient, OperatorError, OperatorPayment};
use crate::amount::Amount;
use crate::buyer::receipt::RECEIPT_EXTENSION;
use crate::facilitator::SettleResponse;
use crate::network::Network;
use crate::wire::codec::{self, PAYMENT_RESPONSE, X_PAYMENT_RESPONSE};

/// The operator call that places the hold, in its own task.
pub(crate) type AuthorizeTask = JoinHandle<Result<OperatorPayment, OperatorError>>;

enum GuardState {
    Authorizing(AuthorizeTask),
    Held(String),
    Done,
}

/// Voids the payment if the request future is dropped before the outcome is decided (client
/// disconnect): while authorizing, the void waits for the authorization to finish.
pub(crate) struct VoidGuard {
    operator: OperatorClient,
    state: GuardState,
}

impl VoidGuard {
    /// A guard over an authorization in flight.
    pub(crate) fn authorizing(operator: OperatorClient, task: AuthorizeTask) -> Self {
        Self {
            operator,
            state: GuardState::Authorizing(task),
        }
    }

    /// Waits for the authorization; on success the guard holds the payment.
    pub(crate) async fn authorized(&mut self) -> Result<OperatorPayment, OperatorError> {
        let GuardState::Authorizing(task) = &mut self.state else {
            return Err(OperatorError::Transport(
                "authorization already awaited".into(),
            ));
        };
        let result = match task.await {
            Ok(result) => result,
            Err(join) => Err(OperatorError::Transport(format!(
                "authorize task failed: {join}"
            ))),
        };
        self.state = match &result {
            Ok(payment) => GuardState::Held(payment.id.clone()),
            Err(_) => GuardState::Done,
        };
        result
    }

    /// The outcome is decided by the caller: no void on drop.
    pub(crate) fn disarm(&mut self) {
        self.state = GuardState::Done;
    }
}

impl Drop for VoidGuard {
    fn drop(&mut self) {
        let state = std::mem::replace(&mut self.state, GuardState::Done);
        let operator = self.operator.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match state {
            GuardState::Done => {}
            GuardState::Held(id) => {
                tracing::warn!(payment_id = %id, "request dropped before completion; voiding");
                runtime.spawn(async move { log_void(operator.void(&id).await, &id) });
            }
            GuardState::Authorizing(task) => {
                tracing::warn!("request dropped while authorizing; voiding once authorized");
                runtime.spawn(async move {
                    if let Ok(Ok(payment)) = task.await {
                        log_void(operator.void(&payment.id).await, &payment.id);
                    }
                });
            }
        }
    }
}

fn log_void(result: Result<OperatorPayment, OperatorError>, id: &str) {
    match result {
        Ok(p) => tracing::info!(payment_id = %id, status = %p.status, "voided"),
        Err(error) => tracing::error!(payment_id = %id, %error, "void failed"),
    }
}

/// Which lifecycle call to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Capture,
    Void,
}

impl Finish {
    fn kind(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Void => "void",
        }
    }
}

/// Runs the call in a spawned task (not cancelled by a dropped response) and awaits it.
pub(crate) async fn finish(
    operator: &OperatorClient,
    payment_id: &str,
    action: Finish,
) -> Result<OperatorPayment, OperatorError> {
    let operator = operator.clone();
    let id = payment_id.to_owned();
    let task = tokio::spawn(async move {
        match action {
            Finish::Capture => operator.capture(&id, None).await,
            Finish::Void => operator.void(&id).await,
        }
    });
    let result = match task.await {
        Ok(result) => result,
        Err(join) => Err(OperatorError::Transport(format!(
            "{} task failed: {join}",
            action.kind()
        ))),
    };
    match &result {
        Ok(p) => tracing::info!(payment_id, status = %p.status, action = action.kind(), "settled"),
        Err(error) => tracing::error!(payment_id, %error, action = action.kind(), "failed"),
    }
    result
}

/// Captures in the background, retrying transient failures for a few minutes.
pub(crate) fn queue_capture(operator: &OperatorClient, payment_id: &str) {
    let operator = operator.clone();
    let id = payment_id.to_owned();
    tokio::spawn(async move {
        let mut delay = Duration::from_secs(1);
        for attempt in 1..=6 {
            match operator.capture(&id, None).await {
                Ok(p) => {
                    tracing::info!(payment_id = %id, status = %p.status, "queued capture done");
                    return;
                }
                Err(error) if error.is_transient() && attempt < 6 => {
                    tracing::warn!(payment_id = %id, %error, attempt, "queued capture retry");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
                Err(error) => {
                    tracing::error!(payment_id = %id, %error, "queued capture failed");
                    return;
                }
            }
        }
    });
}

/// What the receipt reports.
pub(crate) struct ReceiptFacts<'a> {
    pub payment: &'a OperatorPayment,
    pub status: &'a str,
    pub tx_kind: &'a str,
    pub network: Network,
    pub payer: Option<Address>,
    pub amount: Amount,
}

/// The success receipt with the `x402-escrow` extension.
pub(crate) fn receipt(facts: &ReceiptFacts<'_>) -> SettleResponse {
    let p = facts.payment;
    let transaction = p
        .tx_hash(facts.tx_kind)
        .or_else(|| p.tx_hash("authorize"))
        .or_else(|| p.tx_hash("charge"));
    let mut info = json!({
        "paymentId": p.id,
        "paymentHash": p.payment_hash,
        "status": facts.status,
    });
    if p.amounts.refunded != Amount::ZERO
        && let Some(object) = info.as_object_mut()
    {
        object.insert(
            "refundedAmount".to_owned(),
            Value::String(p.amounts.refunded.to_string()),
        );
    }
    let mut extensions = Map::new();
    extensions.insert(RECEIPT_EXTENSION.to_owned(), info);
    SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        payer: facts.payer,
        transaction,
        network: facts.network,
        amount: Some(facts.amount),
        extensions: Some(extensions),
    }
}

/// Sets the receipt header of the request's protocol version.
pub(crate) fn attach_receipt(response: &mut Response<Body>, receipt: &SettleResponse, v1: bool) {
    let (name, encoded) = if v1 {
        // The v1 form, plus our receipt extension (v1 decoders read or ignore it).
        let mut json = receipt.to_v1_json();
        if let (Some(object), Some(extensions)) = (json.as_object_mut(), &receipt.extensions) {
            object.insert("extensions".to_owned(), Value::Object(extensions.clone()));
        }
        (X_PAYMENT_RESPONSE, codec::encode_header(&json))
    } else {
        (PAYMENT_RESPONSE, codec::encode_payment_response(receipt))
    };
    match encoded.ok().and_then(|h| HeaderValue::from_str(&h).ok()) {
        Some(value) => {
            response.headers_mut().insert(name, value);
        }
        None => tracing::error!("cannot encode the payment receipt"),
    }
}
