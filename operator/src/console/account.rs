//! The merchant's own settings from the console: the webhook endpoint (URL, deliveries on and
//! off), redelivering an event, and rotating the webhook secret or the API key (behind a
//! confirmation; the new one is shown once). Every form is CSRF-checked and goes through the same
//! store calls and checks as the REST API (`crate::api::endpoint`).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;
use x402_escrow_types::endpoint::DEFAULT_ROTATION_GRACE_SECS;

use super::format;
use super::pages::{csrf_refused, error_page, internal};
use super::session::{self, SignedIn};
use super::views::{Refusal, RotateConfirmPage, RotatedPage, render};
use crate::api::ApiState;
use crate::api::endpoint::check_webhook_url;
use crate::service::{ErrorCode, PaymentService};
use crate::store::StoreError;

/// A form carrying only the session's CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// The webhook endpoint form.
#[derive(Debug, Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    enabled: String,
}

fn csrf_ok(signed: &SignedIn, presented: &str) -> bool {
    session::tokens_match(&signed.session.csrf_token, presented)
}

fn refusal(signed: &SignedIn, code: ErrorCode, message: impl Into<String>) -> Response {
    error_page(
        signed.chrome("Refused"),
        Refusal::new(code.as_str(), message),
        code.http_status(),
    )
}

/// `POST /console/webhook`: a new URL (empty: unchanged) and deliveries on or off.
pub async fn update_webhook<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: SignedIn,
    form: Result<Form<WebhookForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refusal(&signed, ErrorCode::InvalidRequest, "the form is incomplete");
    };
    if !csrf_ok(&signed, &form.csrf) {
        return csrf_refused(&signed);
    }
    let enabled = match form.enabled.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        "" => None,
        other => {
            return refusal(
                &signed,
                ErrorCode::InvalidRequest,
                format!("deliveries must be on or off, not {other:?}"),
            );
        }
    };
    let url = Some(form.url.trim().to_owned()).filter(|u| !u.is_empty());
    if let Some(url) = &url
        && let Err(e) = check_webhook_url(url)
    {
        return refusal(&signed, ErrorCode::InvalidWebhookUrl, e.message);
    }
    match state
        .store
        .update_webhook_endpoint(signed.merchant.id, url, enabled)
        .await
    {
        Ok(_) => Redirect::to("/console/settings#webhook").into_response(),
        Err(e) => internal(e),
    }
}

/// `POST /console/webhook/deliveries/{id}/redeliver`.
pub async fn redeliver<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: SignedIn,
    Path(id): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !csrf_ok(&signed, &presented) {
        return csrf_refused(&signed);
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return refusal(
            &signed,
            ErrorCode::NotFound,
            format!("no webhook delivery {id}"),
        );
    };
    match state.store.redeliver(signed.merchant.id, id).await {
        Ok(_) => Redirect::to("/console/settings#deliveries").into_response(),
        Err(StoreError::NotFound { .. }) => refusal(
            &signed,
            ErrorCode::NotFound,
            format!("no webhook delivery {id}"),
        ),
        Err(StoreError::Conflict { detail, .. }) => {
            refusal(&signed, ErrorCode::InvalidState, detail)
        }
        Err(e) => internal(e),
    }
}

/// What a rotation page rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rotated {
    ApiKey,
    WebhookSecret,
}

impl Rotated {
    fn parse(what: &str) -> Option<Rotated> {
        match what {
            "api-key" => Some(Rotated::ApiKey),
            "webhook-secret" => Some(Rotated::WebhookSecret),
            _ => None,
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Rotated::ApiKey => "api-key",
            Rotated::WebhookSecret => "webhook-secret",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Rotated::ApiKey => "API key",
            Rotated::WebhookSecret => "webhook signing secret",
        }
    }
}

/// `GET /console/rotate/{what}`: the confirmation.
pub async fn rotate_confirm(signed: SignedIn, Path(what): Path<String>) -> Response {
    let Some(rotated) = Rotated::parse(&what) else {
        return refusal(
            &signed,
            ErrorCode::NotFound,
            format!("nothing to rotate named {what:?}"),
        );
    };
    render(
        200,
        &RotateConfirmPage {
            chrome: signed.chrome(format!("Rotate the {}", rotated.noun())),
            what: rotated.slug().to_owned(),
            noun: rotated.noun().to_owned(),
        },
    )
}

/// `POST /console/rotate/{what}`: rotates (one day of grace for the previous one) and shows the
/// new key or secret once.
pub async fn rotate<S: PaymentService>(
    State(state): State<ApiState<S>>,
    signed: SignedIn,
    Path(what): Path<String>,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !csrf_ok(&signed, &presented) {
        return csrf_refused(&signed);
    }
    let Some(rotated) = Rotated::parse(&what) else {
        return refusal(
            &signed,
            ErrorCode::NotFound,
            format!("nothing to rotate named {what:?}"),
        );
    };
    let grace_ms = i64::try_from(DEFAULT_ROTATION_GRACE_SECS * 1000).unwrap_or(i64::MAX);
    let id = signed.merchant.id;
    let result = match rotated {
        Rotated::ApiKey => state.store.rotate_api_key(id, grace_ms).await,
        Rotated::WebhookSecret => state.store.rotate_webhook_secret(id, grace_ms).await,
    };
    match result {
        Ok((secret, until)) => {
            tracing::info!(what = rotated.slug(), "rotated from the console");
            render(
                200,
                &RotatedPage {
                    chrome: signed.chrome(format!("New {}", rotated.noun())),
                    noun: rotated.noun().to_owned(),
                    secret: secret.expose().to_owned(),
                    previous_until: until.map(format::time).unwrap_or_default(),
                },
            )
        }
        Err(e) => internal(e),
    }
}
