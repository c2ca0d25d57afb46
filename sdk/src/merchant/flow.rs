//! A paid request: authorize through the operator, run the handler (timeout, panic, drop
//! guard), capture or void, attach the receipt.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use futures_util::FutureExt as _;
use tower::Service;

use super::challenge;
use super::config::{CaptureMode, PaymentRoute, PaymentsConfig};
use super::context::{PaymentContext, RequestId};
use super::layer::Shared;
use super::operator::{AuthorizeCall, OperatorClient, OperatorPayment, payer_of};
use super::read::{Read, authorize_failed, challenge_response, read_payment};
use super::settle::{self, Finish, ReceiptFacts, VoidGuard};
use crate::buyer::unix_now;
use crate::facilitator::SettleResponse;
use crate::schemes::EXACT;

/// How the handler ended.
pub(crate) enum Outcome<E> {
    Response(Response<Body>),
    Error(E),
    Panic,
    Timeout,
}

pub(crate) async fn paid<S>(
    shared: Arc<Shared>,
    route: PaymentRoute,
    mut inner: S,
    mut request: Request<Body>,
    request_id: RequestId,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    let config = &shared.config;
    let now = unix_now();
    let resource = challenge::resource(config, &route, request.uri(), request.headers());
    let paid = match read_payment(config, &route, &resource, &request, now) {
        Read::Answer(response) => return Ok(response),
        Read::Payment(paid) => *paid,
    };
    let payer = payer_of(&paid.payload);
    let amount = paid.requirements.amount;
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
    let mut guard = VoidGuard::authorizing(shared.operator.clone(), task);
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
    span.record("payment_id", payment.id.as_str());
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
        if let (Some(tx), Some(payer)) = (payment.tx_hash("authorize"), payer) {
            settle::attach_receipt(
                &mut response,
                &SettleResponse::pending(tx, network, payer),
                paid.v1,
            );
        }
        return Ok(response);
    }
    // A replayed authorization of an already captured payment runs the handler again; the
    // capture then replays too.
    let usable = matches!(
        payment.status.as_str(),
        "authorized" | "captured" | "partially_captured"
    );
    if !usable && paid.requirements.scheme != EXACT {
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
    request.extensions_mut().insert(request_id.clone());
    request.extensions_mut().insert(PaymentContext {
        payment_id: payment.id.clone(),
        payment_hash: payment.payment_hash,
        amount,
        payer,
        scheme: paid.requirements.scheme.clone(),
        network,
        request_id,
    });

    let outcome = run_handler(&mut inner, request, config.handler_timeout).await;
    guard.disarm();
    let facts = |payment: &OperatorPayment, status: &str, tx_kind: &str| {
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
    let receipt = if paid.requirements.scheme == EXACT {
        // `exact` settled at once: nothing to capture or void.
        facts(&payment, &payment.status, "charge")
    } else if success && config.capture_mode == CaptureMode::Queued {
        settle::queue_capture(&shared.operator, &payment.id);
        facts(&payment, "authorized", "authorize")
    } else if success {
        match settle::finish(&shared.operator, &payment.id, Finish::Capture).await {
            Ok(captured) => facts(&captured, &captured.status, "capture"),
            Err(_) => {
                // The hold stands; capture later in the background.
                settle::queue_capture(&shared.operator, &payment.id);
                facts(&payment, "authorized", "authorize")
            }
        }
    } else {
        match settle::finish(&shared.operator, &payment.id, Finish::Void).await {
            Ok(voided) => facts(&voided, &voided.status, "void"),
            Err(_) => facts(&payment, &payment.status, "authorize"),
        }
    };
    let mut response = match outcome {
        Outcome::Response(response) => response,
        Outcome::Error(error) => return Err(error),
        Outcome::Panic => challenge::error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "handler_panicked",
            "the handler failed; the payment was voided",
        ),
        Outcome::Timeout => challenge::error_response(
            StatusCode::GATEWAY_TIMEOUT,
            "handler_timeout",
            "the handler timed out; the payment was voided",
        ),
    };
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

/// Polls the payment while it is `authorizing`, up to the configured wait (default 30 s).
pub(crate) async fn wait_authorized(
    operator: &OperatorClient,
    mut payment: OperatorPayment,
    config: &PaymentsConfig,
) -> OperatorPayment {
    let wait = std::time::Duration::from_secs(config.authorize_wait_secs.unwrap_or(30));
    let deadline = tokio::time::Instant::now() + wait;
    while payment.is_authorizing() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        match operator.get(&payment.id).await {
            Ok(latest) => payment = latest,
            Err(error) => tracing::warn!(%error, "polling an authorizing payment"),
        }
    }
    payment
}
