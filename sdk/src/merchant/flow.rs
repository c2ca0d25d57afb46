//! A paid request: authorize through the operator, run the handler (timeout, panic, drop
//! guard), settle, attach the receipt. What "authorize" and "settle" mean depends on what was
//! paid:
//!
//! | payment | before the handler | handler succeeds (2xx) | handler fails |
//! |---|---|---|---|
//! | `auth-capture`, flow `escrow` | authorize (hold) | capture | void |
//! | `auth-capture`, flow `authorization` | charge (captured at once) | nothing more | refund the whole amount |
//! | `exact` | verify (no gas) | settle (`transferWithAuthorization`) | nothing was moved |

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::B256;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use futures_util::FutureExt as _;
use tower::Service;

use super::challenge;
use super::config::{CaptureMode, PaymentRoute, PaymentsConfig};
use super::context::{PaymentContext, RequestId};
use super::layer::Shared;
use super::operator::{AuthorizeCall, OperatorClient, OperatorPayment, payer_of};
use super::read::Paid;
use super::read::{Read, authorize_failed, challenge_response, read_payment};
use super::settle::{self, Finish, ReceiptFacts, Release, VoidGuard};
use crate::buyer::unix_now;
use crate::facilitator::{SettleResponse, VerifyRequest};
use crate::schemes::EXACT;
use crate::schemes::auth_capture::PaymentFlow;
use crate::wire::ResourceInfo;
use x402_escrow_types::{ErrorCode, PaymentStatus};

/// The operator's reason for an ERC-3009 authorization already used or cancelled.
const AUTHORIZATION_USED: &str = ErrorCode::AuthorizationUsed.as_str();

/// How the handler ended.
pub(crate) enum Outcome<E> {
    Response(Response<Body>),
    Error(E),
    Panic,
    Timeout,
}

/// The service behind a paid route: the handler the payment flows run.
pub(crate) trait Handler:
    Service<Request<Body>, Response = Response<Body>, Future: Send + 'static> + Send + 'static
{
}

impl<S> Handler for S where
    S: Service<Request<Body>, Response = Response<Body>, Future: Send + 'static> + Send + 'static
{
}

pub(crate) async fn paid<S: Handler>(
    shared: Arc<Shared>,
    route: PaymentRoute,
    mut inner: S,
    mut request: Request<Body>,
    request_id: RequestId,
) -> Result<Response<Body>, S::Error> {
    let config = &shared.config;
    let now = unix_now();
    let resource = challenge::resource(config, &route, request.uri(), request.headers());
    let paid = match read_payment(config, &route, &resource, &request, now) {
        Read::Answer(response) => return Ok(response),
        Read::Payment(paid) => *paid,
    };
    if paid.requirements.scheme == EXACT {
        return paid_exact(
            &shared, &route, inner, request, request_id, paid, &resource, now,
        )
        .await;
    }
    let payer = payer_of(&paid.payload);
    let amount = paid.requirements.amount;
    // Flow `authorization`: the operator charges; the way back is a refund of the whole amount.
    let charge = paid
        .requirements
        .auth_capture_extra()
        .is_some_and(|e| e.flow() == PaymentFlow::Authorization);
    let release = if charge {
        Release::Refund(amount)
    } else {
        Release::Void
    };
    let scope = match paid.payload.payment_id() {
        Some(id) => format!("payment-identifier:{id}"),
        None => format!("request-id:{request_id}"),
    };
    let call = AuthorizeCall {
        payment_payload: paid.payload.clone(),
        payment_requirements: paid.requirements.clone(),
        request_id: Some(request_id.to_string()),
        idempotency_scope: scope,
        wait_seconds: config.authorize_wait_secs,
    };
    let operator = shared.operator.clone();
    let task = tokio::spawn(async move { operator.authorize(&call).await });
    let mut guard = VoidGuard::authorizing(shared.operator.clone(), task, release);
    let mut payment = match guard.authorized().await {
        Ok(payment) => payment,
        Err(error) => {
            return Ok(authorize_failed(config, &route, &resource, now, &error));
        }
    };
    if payment.is_authorizing() {
        payment = wait_authorized(&shared.operator, payment, config).await;
    }
    let span = tracing::Span::current();
    span.record("payment_id", tracing::field::display(payment.id));
    span.record(
        "payment_hash",
        tracing::field::display(payment.payment_hash),
    );
    let network = paid.requirements.network;
    if payment.is_authorizing() {
        // Still not on chain: the buyer retries the same payment, which replays.
        guard.disarm();
        let mut response = challenge::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "settlement_pending",
            "the hold is not confirmed yet; retry the same payment",
        );
        let kind = if charge { "charge" } else { "authorize" };
        if let (Some(tx), Some(payer)) = (payment.tx_hash(kind), payer) {
            settle::attach_receipt(
                &mut response,
                &SettleResponse::pending(tx, network, payer),
                paid.v1,
            );
        }
        return Ok(response);
    }
    // A replayed authorization of an already captured payment runs the handler again; the
    // capture then replays too. A charge is usable while it is captured (a refunded one is not).
    let usable = if charge {
        payment.status == PaymentStatus::Captured
    } else {
        matches!(
            payment.status,
            PaymentStatus::Authorized | PaymentStatus::Captured | PaymentStatus::PartiallyCaptured
        )
    };
    if !usable {
        guard.disarm();
        let code = payment
            .last_error
            .as_ref()
            .map(|e| e.code.clone())
            .unwrap_or_else(|| format!("payment_{}", payment.status));
        return Ok(challenge_response(
            config,
            &route,
            &resource,
            now,
            Some(code),
        ));
    }
    tracing::info!(%amount, "payment authorized");
    let payment_id = payment.id.to_string();
    hand_over(
        &mut request,
        request_id,
        &paid,
        payment_id.clone(),
        payment.payment_hash,
    );

    let outcome = run_handler(&mut inner, request, config.handler_timeout).await;
    guard.disarm();
    let facts = |payment: &OperatorPayment, status: PaymentStatus, tx_kind: &str| {
        settle::receipt(&ReceiptFacts {
            payment,
            status,
            tx_kind,
            network,
            payer,
            amount,
        })
    };
    let success = matches!(&outcome, Outcome::Response(r) if r.status().is_success());
    let receipt = if charge && success {
        // Charged before the handler ran: nothing to capture.
        facts(&payment, payment.status, "charge")
    } else if charge {
        // The flow's failure path: the whole amount goes back.
        match settle::finish(&shared.operator, &payment_id, release.finish()).await {
            Ok(refunded) => facts(&refunded, refunded.status, "refund"),
            Err(_) => facts(&payment, payment.status, "charge"),
        }
    } else if success && config.capture_mode == CaptureMode::Queued {
        settle::queue_capture(&shared.operator, &payment_id);
        facts(&payment, PaymentStatus::Authorized, "authorize")
    } else if success {
        match settle::finish(&shared.operator, &payment_id, Finish::Capture).await {
            Ok(captured) => facts(&captured, captured.status, "capture"),
            Err(_) => {
                // The hold stands; capture later in the background.
                settle::queue_capture(&shared.operator, &payment_id);
                facts(&payment, PaymentStatus::Authorized, "authorize")
            }
        }
    } else {
        match settle::finish(&shared.operator, &payment_id, Finish::Void).await {
            Ok(voided) => facts(&voided, voided.status, "void"),
            Err(_) => facts(&payment, payment.status, "authorize"),
        }
    };
    let given_back = if charge { "refunded" } else { "voided" };
    let mut response = match failure_response(outcome, given_back) {
        Ok(response) => response,
        Err(error) => return Err(error),
    };
    settle::attach_receipt(&mut response, &receipt, paid.v1);
    Ok(response)
}

/// The handler's response, or the error answer for a panic or a timeout (`given_back`: what
/// happened to the payment, for the message).
fn failure_response<E>(outcome: Outcome<E>, given_back: &str) -> Result<Response<Body>, E> {
    match outcome {
        Outcome::Response(response) => Ok(response),
        Outcome::Error(error) => Err(error),
        Outcome::Panic => Ok(challenge::error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "handler_panicked",
            &format!("the handler failed; the payment was {given_back}"),
        )),
        Outcome::Timeout => Ok(challenge::error_response(
            StatusCode::GATEWAY_TIMEOUT,
            "handler_timeout",
            &format!("the handler timed out; the payment was {given_back}"),
        )),
    }
}

/// Hands the handler its payment: the request id, and the [`PaymentContext`] of `payment_id` /
/// `payment_hash` (amount, payer, scheme and network from `paid`).
fn hand_over(
    request: &mut Request<Body>,
    request_id: RequestId,
    paid: &Paid,
    payment_id: String,
    payment_hash: B256,
) {
    request.extensions_mut().insert(request_id.clone());
    request.extensions_mut().insert(PaymentContext {
        payment_id,
        payment_hash,
        amount: paid.requirements.amount,
        payer: payer_of(&paid.payload),
        scheme: paid.requirements.scheme.clone(),
        network: paid.requirements.network,
        request_id,
    });
}

/// An `exact` payment (a plain ERC-3009 transfer, not refundable): the operator verifies it (no
/// gas), the handler runs, and only a 2xx settles it (`POST /settle`, the operator's
/// `transferWithAuthorization` through its outbox). A failed handler costs the buyer nothing. A
/// settlement that fails withholds the response (402 with the reason); one whose receipt is not
/// known yet (`settlement_pending`) delivers it with the pending receipt and its transaction
/// hash, since the transfer is on its way. A retry of a payment that was settled already (its
/// response was lost) is served again with the original receipt.
#[allow(clippy::too_many_arguments)]
async fn paid_exact<S: Handler>(
    shared: &Shared,
    route: &PaymentRoute,
    mut inner: S,
    mut request: Request<Body>,
    request_id: RequestId,
    paid: Paid,
    resource: &ResourceInfo,
    now: u64,
) -> Result<Response<Body>, S::Error> {
    let config = &shared.config;
    // The challenge again, naming why this payment is refused.
    let refuse = |reason: String| challenge_response(config, route, resource, now, Some(reason));
    let amount = paid.requirements.amount;
    let Some(exact) = paid.payload.payload.as_exact() else {
        return Ok(refuse(ErrorCode::InvalidPayload.as_str().to_owned()));
    };
    let nonce = exact.authorization.nonce;
    let call = VerifyRequest::new(paid.payload.clone(), paid.requirements.clone());
    // Set when this very payment was settled before (a retry whose first response was lost).
    let mut settled_before = None;
    match shared.operator.verify(&call).await {
        Ok(verdict) if verdict.is_valid => {}
        Ok(verdict) if verdict.invalid_reason.as_deref() == Some(AUTHORIZATION_USED) => {
            // The buyer retries the same signed payment, never a second one: if the operator
            // settled this very authorization, it answers `/settle` with that transfer, and the
            // buyer gets what it paid for.
            match shared.operator.settle(&call).await {
                Ok(receipt) if receipt.success => settled_before = Some(receipt),
                _ => {
                    return Ok(refuse(AUTHORIZATION_USED.to_owned()));
                }
            }
        }
        Ok(verdict) => {
            let reason = verdict
                .invalid_reason
                .unwrap_or_else(|| "invalid_payload".to_owned());
            tracing::info!(%reason, "exact payment refused");
            return Ok(refuse(reason));
        }
        Err(error) => return Ok(authorize_failed(config, route, resource, now, &error)),
    }
    let span = tracing::Span::current();
    span.record("payment_hash", tracing::field::display(nonce));
    // No escrow payment: the ERC-3009 nonce names the transfer.
    hand_over(&mut request, request_id, &paid, nonce.to_string(), nonce);
    let outcome = run_handler(&mut inner, request, config.handler_timeout).await;
    if let Some(receipt) = settled_before {
        // Paid already, whatever the handler does now.
        let mut response = failure_response(outcome, "settled before")?;
        settle::attach_receipt(&mut response, &receipt, paid.v1);
        return Ok(response);
    }
    let success = matches!(&outcome, Outcome::Response(r) if r.status().is_success());
    if !success {
        // Nothing was transferred, so there is nothing to give back and no receipt.
        return failure_response(outcome, "not settled");
    }
    // Settled in a task of its own: a dropped response cannot cancel it half way.
    let operator = shared.operator.clone();
    let settled = match tokio::spawn(async move { operator.settle(&call).await }).await {
        Ok(result) => result,
        Err(join) => Err(super::operator::OperatorError::Transport(format!(
            "settle task failed: {join}"
        ))),
    };
    let receipt = match settled {
        Ok(receipt) if receipt.success || receipt.is_pending() => receipt,
        Ok(receipt) => {
            let reason = receipt
                .error_reason
                .clone()
                .unwrap_or_else(|| "settle_failed".to_owned());
            tracing::warn!(%reason, message = ?receipt.error_message, "exact settlement failed");
            return Ok(refuse(reason));
        }
        Err(error) => {
            tracing::error!(%error, "exact settlement outcome unknown");
            return Ok(challenge::error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "settlement_unknown",
                "the payment could not be settled now; retry the same payment",
            ));
        }
    };
    tracing::info!(%amount, transaction = ?receipt.transaction, pending = receipt.is_pending(), "exact payment settled");
    let mut response = failure_response(outcome, "settled")?;
    settle::attach_receipt(&mut response, &receipt, paid.v1);
    Ok(response)
}

pub(crate) async fn run_handler<S>(
    inner: &mut S,
    request: Request<Body>,
    timeout: std::time::Duration,
) -> Outcome<S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let future = match std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(request))) {
        Ok(future) => future,
        Err(_) => {
            tracing::error!("handler panicked");
            return Outcome::Panic;
        }
    };
    match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await {
        Ok(Ok(Ok(response))) => Outcome::Response(response),
        Ok(Ok(Err(error))) => Outcome::Error(error),
        Ok(Err(_)) => {
            tracing::error!("handler panicked");
            Outcome::Panic
        }
        Err(_) => {
            tracing::warn!(?timeout, "handler timed out");
            Outcome::Timeout
        }
    }
}

/// Waits while the payment is `authorizing`, up to the configured wait (default 30 s), with
/// long polls (`GET /v1/payments/{id}?wait=`): the operator answers the moment the hold settles.
/// A failed poll is retried after a short pause until the wait runs out.
pub(crate) async fn wait_authorized(
    operator: &OperatorClient,
    mut payment: OperatorPayment,
    config: &PaymentsConfig,
) -> OperatorPayment {
    let wait = Duration::from_secs(config.authorize_wait_secs.unwrap_or(30));
    let deadline = tokio::time::Instant::now() + wait;
    while payment.is_authorizing() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        // Whole seconds on the wire; a last fraction of a second is not worth another round trip.
        if left < Duration::from_secs(1) {
            break;
        }
        match operator.get_settled(&payment.id.to_string(), left).await {
            Ok(latest) => payment = latest,
            Err(error) => {
                tracing::warn!(%error, "waiting for an authorizing payment");
                tokio::time::sleep(RETRY_PAUSE.min(left)).await;
            }
        }
    }
    payment
}

/// The pause before asking again after a failed long poll.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
