//! A paid request: authorize through the operator, run the handler (timeout, panic, drop
//! guard), settle, attach the receipt. What "authorize" and "settle" mean depends on what was
//! paid:
//!
//! | payment | before the handler | handler succeeds (2xx) | handler fails |
//! |---|---|---|---|
//! | `auth-capture`, flow `escrow` | authorize (hold) | capture | void |
//! | `auth-capture`, flow `authorization` | charge (captured at once) | nothing more | refund the whole amount |
//! | `exact` | verify (no gas) | settle (`transferWithAuthorization`) | nothing was moved |
//!
//! A metered route ([`PaymentRoute::metered`]) settles a 2xx at the handler's
//! [`MeteredPrice`]: flow `escrow` captures that much and voids the rest; flow `authorization`
//! refunds the rest of the charge; a price above the authorization gives everything back and
//! answers `500` [`METERED_PRICE_TOO_HIGH`] before any capture.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use futures_util::FutureExt as _;
use tower::Service;

use super::challenge;
use super::config::{CaptureMode, PaymentRoute, PaymentsConfig};
use super::context::{MeteredPrice, PaymentContext, RequestId};
use super::layer::Shared;
use super::layer::{HOLD_FAILED, METERED_PRICE_TOO_HIGH};
use super::operator::{AuthorizeCall, OperatorClient, OperatorPayment, payer_of};
use super::read::Paid;
use super::read::{Read, authorize_failed, challenge_response, read_payment, refusal};
use super::settle::{self, Finish, ReceiptFacts, Release, VoidGuard};
use crate::amount::Amount;
use crate::buyer::unix_now;
use crate::facilitator::{SettleResponse, VerifyRequest};
use crate::network::Network;
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
    let latency = route.latency_mode_for(amount, config.asset.decimals);
    let scope = match paid.payload.payment_id() {
        Some(id) => format!("payment-identifier:{id}"),
        None => format!("request-id:{request_id}"),
    };
    let call = AuthorizeCall {
        payment_payload: paid.payload.clone(),
        payment_requirements: paid.requirements.clone(),
        request_id: Some(request_id.to_string()),
        idempotency_scope: scope,
        // Latency mode: answered once verified, simulated and queued (`202 authorizing`).
        wait_seconds: if latency {
            Some(0)
        } else {
            config.authorize_wait_secs
        },
    };
    let operator = shared.operator.clone();
    let task = tokio::spawn(async move { operator.authorize(&call).await });
    let mut guard = VoidGuard::authorizing(
        shared.operator.clone(),
        task,
        release,
        authorize_wait(config),
    );
    // A refusal (verification, simulation) or an unreachable operator: the handler never runs.
    let mut payment = match guard.authorized().await {
        Ok(payment) => payment,
        Err(error) => {
            return Ok(authorize_failed(config, &route, &resource, now, &error));
        }
    };
    let span = tracing::Span::current();
    span.record("payment_id", tracing::field::display(payment.id));
    span.record(
        "payment_hash",
        tracing::field::display(payment.payment_hash),
    );
    let terms = Terms {
        charge,
        release,
        amount,
        payer,
        network: paid.requirements.network,
        v1: paid.v1,
        capture_mode: config.capture_mode,
        metered: route.metered,
    };
    let answer = Answer {
        config,
        route: &route,
        resource: &resource,
        now,
    };
    if latency && payment.is_authorizing() {
        tracing::info!(%amount, "latency mode: the handler runs while the hold is in flight");
        return overlapped(
            &shared, inner, request, request_id, &paid, payment, guard, &terms, &answer,
        )
        .await;
    }
    if payment.is_authorizing() {
        payment = wait_authorized(&shared.operator, payment, config).await;
    }
    if let Some(response) = unusable(
        &shared.operator,
        &payment,
        &mut guard,
        &terms,
        &answer,
        false,
    ) {
        return Ok(response);
    }
    tracing::info!(%amount, "payment authorized");
    let payment_id = payment.id.to_string();
    guard.held(payment_id.clone());
    hand_over(
        &mut request,
        request_id,
        &paid,
        payment_id,
        payment.payment_hash,
        true,
    );
    let outcome = run_handler(&mut inner, request, config.handler_timeout).await;
    guard.disarm();
    settle_outcome(&shared.operator, &payment, outcome, &terms).await
}

/// What a paid `auth-capture` request settles with.
struct Terms {
    /// Flow `authorization`: charged before the handler, refunded on failure.
    charge: bool,
    /// How the money goes back.
    release: Release,
    amount: Amount,
    payer: Option<Address>,
    network: Network,
    /// Answer in x402 v1.
    v1: bool,
    capture_mode: CaptureMode,
    /// The route is metered: a 2xx settles at the handler's [`MeteredPrice`].
    metered: bool,
}

/// What the 402 challenge of a refused payment is built from.
struct Answer<'a> {
    config: &'a PaymentsConfig,
    route: &'a PaymentRoute,
    resource: &'a ResourceInfo,
    now: u64,
}

impl Answer<'_> {
    /// The challenge again, with `error`.
    fn challenge(&self, error: String) -> Response<Body> {
        challenge_response(
            self.config,
            self.route,
            self.resource,
            self.now,
            Some(error),
        )
    }
}

/// Whether the handler's response may be released for `payment` (final): a hold that is
/// `authorized`, or a replayed authorization of a payment already (partially) captured (its
/// capture then replays too); a charge while it is `captured` (a refunded one is not).
fn usable(payment: &OperatorPayment, charge: bool) -> bool {
    if charge {
        payment.status == PaymentStatus::Captured
    } else {
        matches!(
            payment.status,
            PaymentStatus::Authorized | PaymentStatus::Captured | PaymentStatus::PartiallyCaptured
        )
    }
}

/// The answer when `payment` cannot pay for the response (`None`: it can). Still in flight →
/// `503 settlement_pending` with the pending receipt (the buyer retries the same payment, which
/// replays); settled otherwise → the challenge again naming why (`hold_failed: …` when the
/// handler already ran, in latency mode). Disarms the guard either way: a hold in flight is left
/// to the buyer's retry (or the capture-deadline auto-void), and a failed one holds nothing.
fn unusable(
    operator: &OperatorClient,
    payment: &OperatorPayment,
    guard: &mut VoidGuard,
    terms: &Terms,
    answer: &Answer<'_>,
    handler_ran: bool,
) -> Option<Response<Body>> {
    if payment.is_authorizing() {
        guard.disarm();
        let mut response = challenge::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "settlement_pending",
            "the hold is not confirmed yet; retry the same payment",
        );
        let kind = if terms.charge { "charge" } else { "authorize" };
        if let (Some(tx), Some(payer)) = (payment.tx_hash(kind), terms.payer) {
            settle::attach_receipt(
                &mut response,
                &SettleResponse::pending(tx, terms.network, payer),
                terms.v1,
            );
        }
        return Some(response);
    }
    if usable(payment, terms.charge) {
        return None;
    }
    guard.disarm();
    let code = payment
        .last_error
        .as_ref()
        .map(|e| e.code.clone())
        .unwrap_or_else(|| format!("payment_{}", payment.status));
    if !handler_ran {
        return Some(answer.challenge(code));
    }
    tracing::warn!(%code, status = %payment.status, "latency mode: the hold failed; the handler's response is dropped");
    if terms.release.applies_to(payment.status) {
        // Not reachable from `authorizing` directly, but a hold that is somehow still in escrow
        // goes back to the payer rather than waiting for the auto-void.
        let operator = operator.clone();
        let id = payment.id.to_string();
        let finish = terms.release.finish();
        tokio::spawn(async move { settle::finish(&operator, &id, finish).await });
    }
    Some(answer.challenge(refusal(
        HOLD_FAILED,
        &format!(
            "the hold did not go through ({code}, payment {}); nothing was charged and the response was withheld",
            payment.status
        ),
    )))
}

/// Latency mode: the hold is in flight (`payment` is `authorizing`); the handler runs at the same
/// time as one long poll for the hold. The response is released only once the hold is final and
/// usable; a failed hold drops it (402 `hold_failed`) and, if it fails while the handler still
/// runs, stops the handler. Errors, panics, timeouts and disconnects end as in the normal path:
/// a usable hold is then voided (refunded), and a client that goes away while the hold is in
/// flight leaves the guard to give the money back once it is final.
#[allow(clippy::too_many_arguments)]
async fn overlapped<S: Handler>(
    shared: &Shared,
    mut inner: S,
    mut request: Request<Body>,
    request_id: RequestId,
    paid: &Paid,
    payment: OperatorPayment,
    mut guard: VoidGuard,
    terms: &Terms,
    answer: &Answer<'_>,
) -> Result<Response<Body>, S::Error> {
    let config = &shared.config;
    let payment_id = payment.id.to_string();
    hand_over(
        &mut request,
        request_id,
        paid,
        payment_id.clone(),
        payment.payment_hash,
        false,
    );
    let handler = run_handler(&mut inner, request, config.handler_timeout);
    let hold = wait_authorized(&shared.operator, payment, config);
    tokio::pin!(handler, hold);
    let (outcome, payment) = tokio::select! {
        outcome = &mut handler => (Some(outcome), (&mut hold).await),
        payment = &mut hold => (None, payment),
    };
    if let Some(response) = unusable(&shared.operator, &payment, &mut guard, terms, answer, true) {
        // The handler's response (or the handler itself, still running) is dropped here.
        return Ok(response);
    }
    guard.held(payment_id);
    tracing::info!(amount = %terms.amount, "payment authorized (latency mode)");
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => handler.await,
    };
    guard.disarm();
    settle_outcome(&shared.operator, &payment, outcome, terms).await
}

/// What a metered route's 2xx settles at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metered {
    /// Not metered, or the handler set no price (or the whole authorization): everything.
    Whole,
    /// Less than authorized: capture (keep) this much, give the rest back.
    Part(Amount),
    /// More than authorized: refused before any transaction, everything goes back.
    TooHigh(Amount),
}

/// The settlement a successful `outcome` asks for under `terms`.
fn metered<E>(outcome: &Outcome<E>, terms: &Terms) -> Metered {
    let Outcome::Response(response) = outcome else {
        return Metered::Whole;
    };
    let Some(MeteredPrice(price)) = response.extensions().get::<MeteredPrice>().copied() else {
        return Metered::Whole;
    };
    if !terms.metered {
        tracing::warn!(%price, "MeteredPrice on a route that is not metered: ignored");
        return Metered::Whole;
    }
    if price > terms.amount {
        Metered::TooHigh(price)
    } else if price == terms.amount {
        Metered::Whole
    } else {
        Metered::Part(price)
    }
}

/// After the handler, with a usable `payment`: capture a 2xx (sync or queued; a metered route at
/// the handler's price, the rest voided), void (refund a charge) anything else, and attach the
/// receipt.
async fn settle_outcome<E>(
    operator: &OperatorClient,
    payment: &OperatorPayment,
    mut outcome: Outcome<E>,
    terms: &Terms,
) -> Result<Response<Body>, E> {
    let payment_id = payment.id.to_string();
    let charge = terms.charge;
    let mut success = matches!(&outcome, Outcome::Response(r) if r.status().is_success());
    let mut price = None;
    if success {
        match metered(&outcome, terms) {
            Metered::Whole => {}
            Metered::Part(part) => price = Some(part),
            Metered::TooHigh(asked) => {
                tracing::error!(%asked, authorized = %terms.amount, "metered price above the authorization: everything goes back");
                let given_back = if charge { "refunded" } else { "voided" };
                outcome = Outcome::Response(challenge::error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    METERED_PRICE_TOO_HIGH,
                    &format!(
                        "the handler priced the request at {asked}, above the {} authorized; \
                         nothing was captured and the payment was {given_back}",
                        terms.amount
                    ),
                ));
                success = false;
            }
        }
    }
    let facts = |payment: &OperatorPayment, status: PaymentStatus, tx_kind: &str| {
        settle::receipt(&ReceiptFacts {
            payment,
            status,
            tx_kind,
            network: terms.network,
            payer: terms.payer,
            amount: terms.amount,
            metered: price,
        })
    };
    let receipt = if charge && success {
        match price {
            // Charged before the handler ran: nothing to capture.
            None => facts(payment, payment.status, "charge"),
            // Metered: the part of the charge the handler did not use goes back.
            Some(price) => {
                let rest = Amount(terms.amount.0 - price.0);
                match settle::finish(operator, &payment_id, Finish::Refund(rest)).await {
                    Ok(refunded) => facts(&refunded, refunded.status, "refund"),
                    Err(_) => facts(payment, payment.status, "charge"),
                }
            }
        }
    } else if charge {
        // The flow's failure path: the whole amount goes back.
        match settle::finish(operator, &payment_id, terms.release.finish()).await {
            Ok(refunded) => facts(&refunded, refunded.status, "refund"),
            Err(_) => facts(payment, payment.status, "charge"),
        }
    } else if success && price.is_some_and(|p| p.0.is_zero()) {
        // Metered at zero: nothing used, the whole hold goes back.
        match settle::finish(operator, &payment_id, Finish::Void).await {
            Ok(voided) => facts(&voided, voided.status, "void"),
            Err(_) => facts(payment, payment.status, "authorize"),
        }
    } else if success && terms.capture_mode == CaptureMode::Queued {
        settle::queue_capture(operator, &payment_id, price);
        facts(payment, PaymentStatus::Authorized, "authorize")
    } else if success {
        match settle::finish(operator, &payment_id, Finish::Capture(price)).await {
            Ok(captured) if price.is_some() => {
                // The rest of the hold goes back to the payer now.
                match settle::finish(operator, &payment_id, Finish::Void).await {
                    Ok(released) => facts(&released, released.status, "capture"),
                    Err(_) => facts(&captured, captured.status, "capture"),
                }
            }
            Ok(captured) => facts(&captured, captured.status, "capture"),
            Err(_) => {
                // The hold stands; capture later in the background.
                settle::queue_capture(operator, &payment_id, price);
                facts(payment, PaymentStatus::Authorized, "authorize")
            }
        }
    } else {
        match settle::finish(operator, &payment_id, Finish::Void).await {
            Ok(voided) => facts(&voided, voided.status, "void"),
            Err(_) => facts(payment, payment.status, "authorize"),
        }
    };
    let given_back = if charge { "refunded" } else { "voided" };
    let mut response = failure_response(outcome, given_back)?;
    settle::attach_receipt(&mut response, &receipt, terms.v1);
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
/// `payment_hash` (amount, payer, scheme and network from `paid`; `hold_final`: whether the hold
/// is final yet).
fn hand_over(
    request: &mut Request<Body>,
    request_id: RequestId,
    paid: &Paid,
    payment_id: String,
    payment_hash: B256,
    hold_final: bool,
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
        hold_final,
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
    hand_over(
        &mut request,
        request_id,
        &paid,
        nonce.to_string(),
        nonce,
        true,
    );
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

/// How long the layer waits for a hold in flight: the configured authorize wait, default 30 s.
fn authorize_wait(config: &PaymentsConfig) -> Duration {
    Duration::from_secs(config.authorize_wait_secs.unwrap_or(30))
}

/// Waits while the payment is `authorizing`, up to the configured wait (default 30 s); see
/// [`wait_final`].
pub(crate) async fn wait_authorized(
    operator: &OperatorClient,
    payment: OperatorPayment,
    config: &PaymentsConfig,
) -> OperatorPayment {
    wait_final(operator, payment, authorize_wait(config)).await
}

/// Waits while the payment is `authorizing` (or `charging`), up to `wait`, with long polls
/// (`GET /v1/payments/{id}?wait=`): the operator answers the moment the hold settles. A failed
/// poll is retried after a short pause until the wait runs out.
pub(crate) async fn wait_final(
    operator: &OperatorClient,
    mut payment: OperatorPayment,
    wait: Duration,
) -> OperatorPayment {
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
