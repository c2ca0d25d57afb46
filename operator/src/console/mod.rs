//! The merchant console: server-rendered HTML pages at `/console`, signed in with a merchant API
//! key (see `operator/DESIGN.md`, "Console").
//!
//! The console is a client of the same seams as the REST API: it reads and moves payments through
//! the [`PaymentService`] (so a merchant sees and moves only its own payments: another merchant's
//! payment id is `404 not_found` here too), and it reads what a payment page shows beyond the
//! REST view (transaction times, blocks, webhook deliveries) from the [`Store`](crate::store::Store).
//!
//! - Templates: askama (`src/console/templates/`, compiled into the binary and type-checked at
//!   build time; every `{{ value }}` is HTML-escaped). Static CSS and JS are embedded with
//!   `include_str!` and served from `/console/assets/` (nothing is loaded from elsewhere: the
//!   pages' `Content-Security-Policy` allows only `'self'`).
//! - Sessions ([`session`]): sign-in with the API key (POST form) creates a random session id,
//!   stored hashed (SHA-256) in `console_sessions` with its expiry, held by the browser in an
//!   `HttpOnly`, `SameSite=Strict` cookie (`Secure` with `[console] secure_cookie`).
//! - CSRF: `SameSite=Strict` plus a per-session token that every POST form carries (a wrong or
//!   missing token is `403 csrf_token_invalid` and changes nothing); the sign-in form itself is
//!   protected by a double-submit token.
//! - Money-moving forms (capture, void, refund) go through a confirmation page that embeds a fresh
//!   idempotency key; the action runs under that key in the REST API's idempotency table (its own
//!   namespace, `console<TAB>key`), so a double submit moves money once.
//!
//! - Settings ([`account`]): the webhook endpoint (URL, deliveries on and off), the delivery log
//!   with redelivery, the refund reserve and its statement, and rotating the webhook secret or
//!   the API key behind a confirmation (the new one shown once).
//!
//! Routes: [`ROUTES`]. The router is merged into the API router (`api::router`), so the console
//! shares its request-id span, metrics and body limit.

mod account;
mod actions;
mod chart;
mod format;
mod pages;
pub mod session;
mod timeline;
mod views;

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::api::ApiState;
use crate::config::ConsoleConfig;
use crate::service::PaymentService;

/// Every route the console serves, as `(method, path template)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/console"),
    ("get", "/console/login"),
    ("post", "/console/login"),
    ("post", "/console/logout"),
    ("get", "/console/payments"),
    ("get", "/console/payments/{id}"),
    ("get", "/console/payments/{id}/confirm"),
    ("post", "/console/payments/{id}/act"),
    ("get", "/console/settings"),
    ("post", "/console/webhook"),
    ("post", "/console/webhook/deliveries/{id}/redeliver"),
    ("get", "/console/rotate/{what}"),
    ("post", "/console/rotate/{what}"),
    ("get", "/console/assets/{file}"),
];

/// How the console runs (`[console]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Whether `/console` is served.
    pub enabled: bool,
    /// Whether the session cookie is marked `Secure` (the operator is reached over https).
    pub secure_cookie: bool,
    /// How long a session lasts after sign-in.
    pub session_ttl: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings::from(&ConsoleConfig::default())
    }
}

impl From<&ConsoleConfig> for ConsoleSettings {
    fn from(c: &ConsoleConfig) -> Self {
        ConsoleSettings {
            enabled: c.enabled,
            secure_cookie: c.secure_cookie,
            session_ttl: Duration::from_secs(c.session_ttl_secs),
        }
    }
}

/// The console's routes (none when `settings.enabled` is false), to merge into the API router.
pub fn router<S: PaymentService>(settings: &ConsoleSettings) -> Router<ApiState<S>> {
    if !settings.enabled {
        return Router::new();
    }
    Router::new()
        .route("/console", get(pages::home))
        .route(
            "/console/login",
            get(pages::login_form::<S>).post(pages::login::<S>),
        )
        .route("/console/logout", post(pages::logout::<S>))
        .route("/console/payments", get(pages::payments::<S>))
        .route("/console/payments/{id}", get(pages::payment::<S>))
        .route("/console/payments/{id}/confirm", get(actions::confirm::<S>))
        .route("/console/payments/{id}/act", post(actions::act::<S>))
        .route("/console/settings", get(pages::settings::<S>))
        .route("/console/webhook", post(account::update_webhook::<S>))
        .route(
            "/console/webhook/deliveries/{id}/redeliver",
            post(account::redeliver::<S>),
        )
        .route(
            "/console/rotate/{what}",
            get(account::rotate_confirm).post(account::rotate::<S>),
        )
        .route("/console/assets/{file}", get(asset))
        .layer(from_fn(x402_escrow_pages::security_headers))
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// `GET /console/assets/{file}`: the embedded stylesheet and script.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, mime) = match file.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
