//! Capture, void and refund from the console: a confirmation page, then one POST that carries
//! the session's CSRF token and the idempotency key the confirmation page embedded.
//!
//! The action runs under that key in the REST API's idempotency table, in the console's own
//! namespace (`console<TAB><key>`: REST `Idempotency-Key`s never contain a tab), with the
//! fingerprint of the payment, action and amount. A second submit of the same form replays the
//! first answer instead of moving money again; the same key with another amount is
//! `422 idempotency_key_reused`; one still running is `409 idempotency_key_in_flight`. The action
//! itself goes through the same [`PaymentService`] as `POST /v1/payments/{id}/…`, in its own task
//! (a browser that goes away does not cancel it half way).

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::format;
use super::pages::{csrf_refused, decimals, internal, not_found, payment_page, refused};
use super::session::{self, SignedIn};
use super::views::{ConfirmPage, Refusal, render};
use crate::api::ApiState;
use crate::api::idempotency::MIN_IN_FLIGHT_LOCK;
use crate::service::{CaptureRequest, ErrorCode, PaymentService, RefundRequest, ServiceError};
use crate::store::{IdempotencyBegin, request_fingerprint};

/// Longest form idempotency key accepted.
const MAX_IDEM_LEN: usize = 64;

/// An action on a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Capture(Option<u128>),
    Void,
    Refund(u128),
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Capture(_) => "capture",
            Action::Void => "void",
            Action::Refund(_) => "refund",
        }
    }

    fn amount_text(self) -> String {
        match self {
            Action::Capture(Some(a)) | Action::Refund(a) => a.to_string(),
            Action::Capture(None) | Action::Void => String::new(),
        }
    }

    /// Reads `action` and `amount` from a form or query: `400 invalid_request` for an unknown
    /// action or an amount on a void, `400 invalid_amount` for a bad amount.
    fn parse(action: &str, amount: Option<&str>) -> Result<Action, Refusal> {
        let amount = amount.map(str::trim).filter(|a| !a.is_empty());
        let parsed = match amount {
            None => None,
            Some(text) => Some(format::parse_amount(text).ok_or_else(|| {
                Refusal::new(
                    ErrorCode::InvalidAmount.as_str(),
                    "the amount must be a whole positive number of base units",
                )
            })?),
        };
        match (action, parsed) {
            ("capture", a) => Ok(Action::Capture(a)),
            ("void", None) => Ok(Action::Void),
            ("void", Some(_)) => Err(Refusal::new(
                ErrorCode::InvalidRequest.as_str(),
                "a void takes no amount",
            )),
            ("refund", Some(a)) => Ok(Action::Refund(a)),
            ("refund", None) => Err(Refusal::new(
                ErrorCode::InvalidAmount.as_str(),
                "a refund needs an amount",
            )),
            _ => Err(Refusal::new(
                ErrorCode::InvalidRequest.as_str(),
                "the action must be capture, void or refund",
            )),
        }
    }
}

/// Query of the confirmation page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmQuery {
    /// `capture`, `void` or `refund`.
    pub action: String,
    /// Base units (capture: empty for everything capturable).
    pub amount: Option<String>,
}

/// `GET /console/payments/{id}/confirm?action=…[&amount=…]`: what is about to happen, and the
/// form (CSRF token + a fresh idempotency key) that does it. Nothing changes here.
pub async fn confirm<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: SignedIn,
    Path(id): Path<String>,
    query: Result<Query<ConfirmQuery>, QueryRejection>,
) -> Response {
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return not_found(&signed, &id);
    };
    let view = match state.service.get(&signed.merchant, uuid, None).await {
        Ok(v) => v,
        Err(e) if e.code == ErrorCode::NotFound => return not_found(&signed, &id),
        Err(e) => return refused(signed.chrome("Confirm"), &e),
    };
    let action = match query {
        Ok(Query(q)) => Action::parse(&q.action, q.amount.as_deref()),
        Err(e) => Err(Refusal::new(
            ErrorCode::InvalidRequest.as_str(),
            format!("bad query: {}", e.body_text()),
        )),
    };
    let action = match action {
        Ok(a) => a,
        Err(r) => return payment_page(&state, &signed, &id, None, Some(r), 400).await,
    };
    let token = view
        .payment_info
        .get("token")
        .and_then(|t| t.as_str())
        .and_then(|t| t.parse().ok());
    let dec = token.and_then(|t| decimals(&state, &signed.merchant, t));
    let summary = match action {
        Action::Capture(Some(a)) => {
            format!("Capture {} of payment {uuid}?", format::amount(a, dec))
        }
        Action::Capture(None) => format!(
            "Capture everything still capturable ({}) of payment {uuid}?",
            format::amount(view.amounts.capturable, dec)
        ),
        Action::Void => format!(
            "Void the hold of payment {uuid}, releasing {} to the payer?",
            format::amount(view.amounts.capturable, dec)
        ),
        Action::Refund(a) => format!(
            "Refund {} of payment {uuid} to the payer?",
            format::amount(a, dec)
        ),
    };
    render(
        200,
        &ConfirmPage {
            chrome: signed.chrome("Confirm"),
            id: uuid.to_string(),
            request_id: view.request_id.clone().unwrap_or_default(),
            action: action.name().to_owned(),
            amount: action.amount_text(),
            summary,
            idem: session::random_token(),
        },
    )
}

/// The confirmed form.
#[derive(Debug, Deserialize)]
pub struct ActForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// The idempotency key the confirmation page made.
    #[serde(default)]
    pub idem: String,
    /// `capture`, `void` or `refund`.
    #[serde(default)]
    pub action: String,
    /// Base units.
    #[serde(default)]
    pub amount: String,
}

/// What the idempotency table keeps of a console action.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    code: Option<String>,
    message: Option<String>,
}

/// `POST /console/payments/{id}/act`: CSRF check (`403 csrf_token_invalid`), then the action
/// under the form's idempotency key. Success goes back to the payment page (303) with a notice;
/// a refusal shows the payment page with its code and the code's HTTP status. No refusal
/// changes anything.
pub async fn act<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<ActForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(_) => return csrf_refused(&signed),
    };
    if !session::tokens_match(&signed.session.csrf_token, &form.csrf) {
        tracing::warn!(payment_id = %id, "console form refused: CSRF token");
        return csrf_refused(&signed);
    }
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return not_found(&signed, &id);
    };
    let action = match Action::parse(&form.action, Some(&form.amount)) {
        Ok(a) => a,
        Err(r) => return payment_page(&state, &signed, &id, None, Some(r), 400).await,
    };
    let idem = form.idem.trim();
    if idem.is_empty()
        || idem.len() > MAX_IDEM_LEN
        || !idem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        let r = Refusal::new(
            ErrorCode::InvalidRequest.as_str(),
            "the form's idempotency key is missing or malformed; open the confirmation again",
        );
        return payment_page(&state, &signed, &id, None, Some(r), 400).await;
    }
    let merchant = signed.merchant.clone();
    let key = format!("console\t{idem}");
    let path = format!("/console/payments/{uuid}/{}", action.name());
    let fingerprint = request_fingerprint("POST", &path, action.amount_text().as_bytes());
    let settings = state.idempotency;
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let begun = state
        .store
        .idempotency_begin(
            merchant.id,
            &key,
            &fingerprint,
            ms(settings.retention),
            ms(settings.in_flight_timeout.max(MIN_IN_FLIGHT_LOCK)),
        )
        .await;
    let refusal_page = |code: ErrorCode, message: String| {
        let state = state.clone();
        let signed = signed.clone();
        let id = id.clone();
        async move {
            payment_page(
                &state,
                &signed,
                &id,
                None,
                Some(Refusal::new(code.as_str(), message)),
                code.http_status(),
            )
            .await
        }
    };
    match begun {
        Err(e) => internal(e),
        Ok(IdempotencyBegin::InFlight) => {
            refusal_page(
                ErrorCode::IdempotencyKeyInFlight,
                "this form is still being processed; reload the payment in a moment".to_owned(),
            )
            .await
        }
        Ok(IdempotencyBegin::Mismatch) => {
            refusal_page(
                ErrorCode::IdempotencyKeyReused,
                "this form was already used for a different action or amount".to_owned(),
            )
            .await
        }
        Ok(IdempotencyBegin::Completed {
            response_status,
            response_body,
        }) => {
            tracing::info!(payment_id = %uuid, action = action.name(), "console form replayed");
            let stored: Stored = serde_json::from_str(&response_body).unwrap_or(Stored {
                code: None,
                message: None,
            });
            match stored.code {
                None => Redirect::to(&format!("/console/payments/{uuid}?notice=replayed"))
                    .into_response(),
                Some(code) => {
                    let r = Refusal::new(code, stored.message.unwrap_or_default());
                    payment_page(&state, &signed, &id, None, Some(r), response_status).await
                }
            }
        }
        Ok(IdempotencyBegin::Started) => {
            let task_state = state.clone();
            let task_merchant = merchant.clone();
            let task_key = key.clone();
            let task = tokio::spawn(async move {
                let service = &task_state.service;
                let result = match action {
                    Action::Capture(amount) => {
                        service
                            .capture(&task_merchant, uuid, CaptureRequest { amount })
                            .await
                    }
                    Action::Void => service.void(&task_merchant, uuid).await,
                    Action::Refund(amount) => {
                        service
                            .refund(&task_merchant, uuid, RefundRequest { amount })
                            .await
                    }
                };
                finish(&task_state, task_merchant.id, &task_key, &result).await;
                result
            });
            let result = match task.await {
                Ok(r) => r,
                Err(e) => {
                    if let Err(e) = state.store.idempotency_release(merchant.id, &key).await {
                        tracing::error!(error = %e, "cannot release a console idempotency key");
                    }
                    return internal(e);
                }
            };
            match result {
                Ok(_) => {
                    tracing::info!(payment_id = %uuid, action = action.name(), "console action");
                    Redirect::to(&format!(
                        "/console/payments/{uuid}?notice={}",
                        action.name()
                    ))
                    .into_response()
                }
                Err(e) if e.code == ErrorCode::NotFound => not_found(&signed, &id),
                Err(e) if e.code == ErrorCode::Internal => internal(&e.message),
                Err(e) => {
                    tracing::info!(payment_id = %uuid, action = action.name(), code = e.code.as_str(), "console action refused");
                    refusal_page(e.code, e.message.clone()).await
                }
            }
        }
    }
}

/// Stores the outcome under the key (a 5xx outcome releases it, so a retry runs again, as the
/// REST API does).
async fn finish<S>(
    state: &ApiState<S>,
    merchant_id: Uuid,
    key: &str,
    result: &Result<crate::service::PaymentView, ServiceError>,
) {
    let (status, stored) = match result {
        Ok(_) => (
            200,
            Stored {
                code: None,
                message: None,
            },
        ),
        Err(e) => (
            e.code.http_status(),
            Stored {
                code: Some(e.code.as_str().to_owned()),
                message: Some(e.message.clone()),
            },
        ),
    };
    let outcome = if status >= 500 {
        state
            .store
            .idempotency_release(merchant_id, key)
            .await
            .map(|_| ())
    } else {
        let body = serde_json::to_string(&stored).unwrap_or_else(|_| "{}".to_owned());
        state
            .store
            .idempotency_complete(merchant_id, key, status, &body)
            .await
            .map(|_| ())
    };
    if let Err(e) = outcome {
        tracing::error!(error = %e, "cannot store a console action's outcome");
    }
}
