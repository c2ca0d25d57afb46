//! Answers decided before the handler runs: the 402 challenge, 400 for bad headers, the
//! operator's refusal; and the decoded payment otherwise.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};

use super::challenge::{self, MatchError};
use super::config::{PaymentRoute, PaymentsConfig};
use super::layer::PAYMENT_IDENTIFIER_REQUIRED;
use super::operator::{IDEMPOTENCY_KEY_REUSED, OperatorError};
use crate::wire::codec::{self, PAYMENT_SIGNATURE, X_PAYMENT};
use crate::wire::{PaymentPayload, PaymentRequirements, ResourceInfo};

/// The decoded payment of a request.
pub(crate) struct Paid {
    /// The payment in v2 form.
    pub(crate) payload: PaymentPayload,
    /// The route's requirements it answers.
    pub(crate) requirements: PaymentRequirements,
    /// Sent as v1 `X-PAYMENT`.
    pub(crate) v1: bool,
}

/// Either an early answer (402, 400, …) or the payment.
pub(crate) enum Read {
    Answer(Response<Body>),
    Payment(Box<Paid>),
}

pub(crate) fn read_payment(
    config: &PaymentsConfig,
    route: &PaymentRoute,
    resource: &ResourceInfo,
    request: &Request<Body>,
    now: u64,
) -> Read {
    let challenge = |error: Option<String>| challenge_response(config, route, resource, now, error);
    let headers = request.headers();
    let (payload, requirements, v1) = if let Some(value) = headers.get(PAYMENT_SIGNATURE) {
        let payload = match codec::decode_payment_signature(value.as_bytes()) {
            Ok(payload) => payload,
            Err(error) => return Read::Answer(challenge::bad_header(&error)),
        };
        if config.payment_identifier_required && payload.payment_id().is_none() {
            return Read::Answer(challenge(Some(PAYMENT_IDENTIFIER_REQUIRED.to_owned())));
        }
        match challenge::match_v2(config, route, &payload, now) {
            Ok(requirements) => (payload, requirements, false),
            Err(MatchError::NoMatch(why)) => return Read::Answer(challenge(Some(why))),
            Err(error @ MatchError::Price(_)) => return Read::Answer(misconfigured(&error)),
        }
    } else if let Some(value) = headers.get(X_PAYMENT) {
        let payment = match codec::decode_x_payment(value.as_bytes()) {
            Ok(payment) => payment,
            Err(error) => return Read::Answer(challenge::bad_header(&error)),
        };
        match challenge::match_v1(config, route, resource, &payment, now) {
            Ok((payload, requirements)) => (payload, requirements, true),
            Err(MatchError::NoMatch(why)) => return Read::Answer(challenge(Some(why))),
            Err(error @ MatchError::Price(_)) => return Read::Answer(misconfigured(&error)),
        }
    } else {
        return Read::Answer(challenge(None));
    };
    Read::Payment(Box::new(Paid {
        payload,
        requirements,
        v1,
    }))
}

pub(crate) fn challenge_response(
    config: &PaymentsConfig,
    route: &PaymentRoute,
    resource: &ResourceInfo,
    now: u64,
    error: Option<String>,
) -> Response<Body> {
    let authorizer = config.next_authorizer();
    match challenge::offers(config, route, challenge::epoch_of(now), authorizer) {
        Ok(accepts) => challenge::payment_required(config, resource.clone(), accepts, error),
        Err(error) => misconfigured(&MatchError::Price(error)),
    }
}

/// The 402 `error` of a refused payment: the x402 reason (or the operator's code), then the
/// operator's explanation with its numbers, e.g. `invalid_auth_capture_evm_capture_deadline_expired:
/// captureDeadline (authorizationExpiry) 1796410140 is 35 s short of the capture window: …`.
/// Clients that want only the reason take what comes before the first `": "`.
pub(crate) fn refusal(reason: &str, message: &str) -> String {
    if message.is_empty() {
        reason.to_owned()
    } else {
        format!("{reason}: {message}")
    }
}

pub(crate) fn misconfigured(error: &MatchError) -> Response<Body> {
    tracing::error!(%error, "paid route misconfigured");
    challenge::error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "misconfigured_route",
        &error.to_string(),
    )
}

pub(crate) fn authorize_failed(
    config: &PaymentsConfig,
    route: &PaymentRoute,
    resource: &ResourceInfo,
    now: u64,
    error: &OperatorError,
) -> Response<Body> {
    match error {
        OperatorError::Rejected { code, message, .. } if code == IDEMPOTENCY_KEY_REUSED => {
            tracing::warn!(%message, "payment identifier reused with another payment");
            challenge::error_response(
                StatusCode::CONFLICT,
                "payment_identifier_reused",
                "this payment-identifier id was already used with a different payment",
            )
        }
        OperatorError::Rejected {
            status: 401,
            message,
            ..
        } => {
            tracing::error!(%message, "the operator refused this merchant's API key");
            challenge::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "operator_unauthorized",
                "the merchant's payment configuration is broken; nothing was charged",
            )
        }
        OperatorError::Rejected {
            status,
            code,
            message,
            reason,
        } if *status < 500 => {
            tracing::info!(%code, ?reason, %message, "operator refused the payment");
            challenge_response(
                config,
                route,
                resource,
                now,
                Some(refusal(reason.as_deref().unwrap_or(code), message)),
            )
        }
        other => {
            tracing::error!(error = %other, "operator unavailable");
            challenge::error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "operator_unavailable",
                "the payment could not be verified now; retry the same payment",
            )
        }
    }
}
