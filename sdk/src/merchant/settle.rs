//! After the handler: capture, void or refund (in spawned tasks, so a dropped response cannot
//! cancel them), the drop guard that gives the money back when the client goes away (a void of a
//! hold, a refund of a charge), and the receipt.

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
use x402_escrow_types::PaymentStatus;

/// The operator call that places the hold, in its own task.
pub(crate) type AuthorizeTask = JoinHandle<Result<OperatorPayment, OperatorError>>;

enum GuardState {
    /// The authorize call is in flight.
    Authorizing(AuthorizeTask),
    /// The operator accepted the payment but the hold (or charge) is not final yet.
    Pending(Box<OperatorPayment>),
    /// The hold (or charge) is final.
    Held(String),
    Done,
}

/// How the money goes back to the buyer when the request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// Void the hold (x402 flow `escrow`).
    Void,
    /// Refund this amount of the charge (x402 flow `authorization`: the whole amount).
    Refund(Amount),
}

impl Release {
    /// The lifecycle call that does it.
    pub(crate) fn finish(self) -> Finish {
        match self {
            Self::Void => Finish::Void,
            Self::Refund(amount) => Finish::Refund(amount),
        }
    }

    /// Whether a payment that is `status` (not in flight) holds money this call gives back: a
    /// void needs a hold (`authorized`, `partially_captured`, or `expired` with the hold still in
    /// escrow: the operator refuses an empty one), a refund a charge (`captured`). A `failed`
    /// payment holds nothing.
    pub(crate) fn applies_to(self, status: PaymentStatus) -> bool {
        match self {
            Self::Void => matches!(
                status,
                PaymentStatus::Authorized
                    | PaymentStatus::PartiallyCaptured
                    | PaymentStatus::Expired
            ),
            Self::Refund(_) => status == PaymentStatus::Captured,
        }
    }
}

/// Gives the money back (void or refund, [`Release`]) if the request future is dropped before the
/// outcome is decided (client disconnect). While the authorize call or the hold is in flight, it
/// first waits (up to `wait`) for the hold to be final, and gives back only what was taken: the
/// operator refuses a void of a hold in flight (`payment_busy`), and would replay that refusal
/// to every later void with the same idempotency key.
pub(crate) struct VoidGuard {
    operator: OperatorClient,
    state: GuardState,
    release: Release,
    wait: Duration,
}

impl VoidGuard {
    /// A guard over an authorization (or charge) in flight; `wait`: how long a dropped request
    /// waits for a hold in flight to be final before giving up (the capture-deadline auto-void
    /// then releases it).
    pub(crate) fn authorizing(
        operator: OperatorClient,
        task: AuthorizeTask,
        release: Release,
        wait: Duration,
    ) -> Self {
        Self {
            operator,
            state: GuardState::Authorizing(task),
            release,
            wait,
        }
    }

    /// Waits for the authorization; on success the guard holds the payment (pending while the
    /// hold is in flight, held once final).
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
            Ok(payment) if payment.is_authorizing() => {
                GuardState::Pending(Box::new(payment.clone()))
            }
            Ok(payment) => GuardState::Held(payment.id.to_string()),
            Err(_) => GuardState::Done,
        };
        result
    }

    /// The hold is final and usable: a drop gives the money back at once.
    pub(crate) fn held(&mut self, payment_id: String) {
        self.state = GuardState::Held(payment_id);
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
        let release = self.release;
        let finish = release.finish();
        let wait = self.wait;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match state {
            GuardState::Done => {}
            GuardState::Held(id) => {
                tracing::warn!(payment_id = %id, action = finish.kind(), "request dropped before completion; giving the money back");
                runtime.spawn(async move { log_release(finish.call(&operator, &id).await, &id) });
            }
            GuardState::Pending(payment) => {
                tracing::warn!(
                    payment_id = %payment.id,
                    action = finish.kind(),
                    "request dropped while the hold is in flight; giving the money back once final"
                );
                runtime.spawn(release_when_final(operator, *payment, release, wait));
            }
            GuardState::Authorizing(task) => {
                tracing::warn!(
                    action = finish.kind(),
                    "request dropped while authorizing; giving the money back once authorized"
                );
                runtime.spawn(async move {
                    if let Ok(Ok(payment)) = task.await {
                        release_when_final(operator, payment, release, wait).await;
                    }
                });
            }
        }
    }
}

/// Waits (up to `wait`) for `payment` to be final, then gives back what it holds, if anything.
async fn release_when_final(
    operator: OperatorClient,
    payment: OperatorPayment,
    release: Release,
    wait: Duration,
) {
    let payment = super::flow::wait_final(&operator, payment, wait).await;
    let id = payment.id.to_string();
    if payment.is_authorizing() {
        tracing::error!(payment_id = %id, "hold still in flight after the wait; the capture-deadline auto-void releases it");
    } else if release.applies_to(payment.status) {
        log_release(release.finish().call(&operator, &id).await, &id);
    } else {
        tracing::info!(payment_id = %id, status = %payment.status, "nothing held; nothing to give back");
    }
}

fn log_release(result: Result<OperatorPayment, OperatorError>, id: &str) {
    match result {
        Ok(p) => tracing::info!(payment_id = %id, status = %p.status, "money given back"),
        Err(error) => tracing::error!(payment_id = %id, %error, "void / refund failed"),
    }
}

/// Which lifecycle call to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Capture this amount (`None`: everything held).
    Capture(Option<Amount>),
    Void,
    /// Refund this amount (of a charged payment).
    Refund(Amount),
}

impl Finish {
    /// The action's name (also the transaction kind it produces).
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Capture(_) => "capture",
            Self::Void => "void",
            Self::Refund(_) => "refund",
        }
    }

    async fn call(
        self,
        operator: &OperatorClient,
        id: &str,
    ) -> Result<OperatorPayment, OperatorError> {
        match self {
            Self::Capture(amount) => operator.capture(id, amount).await,
            Self::Void => operator.void(id).await,
            Self::Refund(amount) => operator.refund(id, amount).await,
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
    let task = tokio::spawn(async move { action.call(&operator, &id).await });
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

/// Captures in the background, retrying transient failures for a few minutes: everything held
/// (`amount` `None`), or a metered price below the hold (`Some`), after which the rest of the
/// hold is voided the same way.
pub(crate) fn queue_capture(operator: &OperatorClient, payment_id: &str, amount: Option<Amount>) {
    let operator = operator.clone();
    let id = payment_id.to_owned();
    tokio::spawn(async move {
        if !with_retries(&operator, &id, Finish::Capture(amount)).await {
            return;
        }
        if amount.is_some() {
            with_retries(&operator, &id, Finish::Void).await;
        }
    });
}

/// Makes `action` in the background, retrying transient failures for a few minutes (the
/// idempotency key makes every retry the same call); whether it was done.
async fn with_retries(operator: &OperatorClient, id: &str, action: Finish) -> bool {
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=6 {
        match action.call(operator, id).await {
            Ok(p) => {
                tracing::info!(payment_id = %id, status = %p.status, action = action.kind(), "queued call done");
                return true;
            }
            Err(error) if error.is_transient() && attempt < 6 => {
                tracing::warn!(payment_id = %id, %error, attempt, action = action.kind(), "queued call retry");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(60));
            }
            Err(error) => {
                tracing::error!(payment_id = %id, %error, action = action.kind(), "queued call failed");
                return false;
            }
        }
    }
    false
}

/// What the receipt reports.
pub(crate) struct ReceiptFacts<'a> {
    pub payment: &'a OperatorPayment,
    pub status: PaymentStatus,
    pub tx_kind: &'a str,
    pub network: Network,
    pub payer: Option<Address>,
    pub amount: Amount,
    /// A metered route's price (the receipt's `amount`, `capturedAmount` and, once the rest of
    /// the hold went back, `releasedAmount`).
    pub metered: Option<Amount>,
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
        "status": facts.status.as_str(),
    });
    if p.amounts.refunded != 0
        && let Some(object) = info.as_object_mut()
    {
        object.insert(
            "refundedAmount".to_owned(),
            Value::String(p.amounts.refunded.to_string()),
        );
    }
    if let (Some(price), Some(object)) = (facts.metered, info.as_object_mut()) {
        object.insert("meteredPrice".to_owned(), Value::String(price.to_string()));
        if p.amounts.captured != 0 {
            object.insert(
                "capturedAmount".to_owned(),
                Value::String(p.amounts.captured.to_string()),
            );
        }
        // Released: what was held and is neither captured nor still capturable.
        let released = p
            .amounts
            .authorized
            .saturating_sub(p.amounts.captured)
            .saturating_sub(p.amounts.capturable);
        if released != 0 {
            object.insert(
                "releasedAmount".to_owned(),
                Value::String(released.to_string()),
            );
        }
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
        amount: Some(facts.metered.unwrap_or(facts.amount)),
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
