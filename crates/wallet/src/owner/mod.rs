//! The owner's page: server-rendered HTML at `/owner`, in the merchant console's style, signed
//! in with the wallet's owner token. It shows every payment key with its rules and usage and
//! the payments waiting for approval, and lets the owner approve or reject them, flip a key's
//! kill switch and revoke a key — through the same [`Wallet`] and [`keys`](crate::keys)
//! functions as the REST API, so the page and the API cannot disagree.
//!
//! - Templates: askama (`src/owner/templates/`, compiled in and type-checked; every value is
//!   HTML-escaped). The stylesheet and the double-submit guard script are the merchant
//!   console's own files, embedded from `operator/src/console/assets/` and served from
//!   `/owner/assets/`; the `Content-Security-Policy` allows only this origin.
//! - Sessions ([`session`]): signing in (POST form, the owner token sent once) creates a random
//!   session id held by the browser in an `HttpOnly`, `SameSite=Strict`, `Path=/owner` cookie
//!   (`Secure` with `--secure-cookie`), stored as its SHA-256 in `wallet_owner_sessions` with a
//!   per-session CSRF token and an end. Signing out deletes the row.
//! - CSRF: `SameSite=Strict` plus the session's token in every POST form (a wrong or missing
//!   token is `403 csrf_token_invalid` and changes nothing); the sign-in form carries a
//!   double-submit token.
//! - Revoking is final, so it goes through a confirmation page; approve, reject and the kill
//!   switch act at once (each is a state check: a second submit is `409 not_pending` or a
//!   no-op).
//!
//! Routes: [`ROUTES`].

mod pages;
pub mod session;
mod views;

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::Wallet;

/// Every route of the owner's page, as `(method, path template)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/owner"),
    ("get", "/owner/login"),
    ("post", "/owner/login"),
    ("post", "/owner/logout"),
    ("get", "/owner/keys/{id}"),
    ("post", "/owner/keys/{id}/switch"),
    ("get", "/owner/keys/{id}/revoke"),
    ("post", "/owner/keys/{id}/revoke"),
    ("post", "/owner/payments/{id}/approve"),
    ("post", "/owner/payments/{id}/reject"),
    ("get", "/owner/assets/{file}"),
];

/// How the owner's page runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerPageSettings {
    /// Whether the session cookie is marked `Secure` (the wallet is reached over https).
    pub secure_cookie: bool,
    /// How long a session lasts after sign-in.
    pub session_ttl: Duration,
}

impl Default for OwnerPageSettings {
    /// Plain-http cookies (a wallet on localhost), 8-hour sessions.
    fn default() -> Self {
        OwnerPageSettings {
            secure_cookie: false,
            session_ttl: Duration::from_secs(8 * 3600),
        }
    }
}

/// The page's state: the wallet and the settings.
#[derive(Debug, Clone)]
pub struct OwnerState {
    /// The wallet the page reads and acts on.
    pub wallet: Wallet,
    /// Cookie and session settings.
    pub settings: OwnerPageSettings,
}

/// The owner's page routes over `wallet`.
pub fn router(wallet: Wallet, settings: OwnerPageSettings) -> Router {
    Router::new()
        .route("/owner", get(pages::home))
        .route("/owner/login", get(pages::login_form).post(pages::login))
        .route("/owner/logout", post(pages::logout))
        .route("/owner/keys/{id}", get(pages::key))
        .route("/owner/keys/{id}/switch", post(pages::switch))
        .route(
            "/owner/keys/{id}/revoke",
            get(pages::revoke_confirm).post(pages::revoke),
        )
        .route("/owner/payments/{id}/approve", post(pages::approve))
        .route("/owner/payments/{id}/reject", post(pages::reject))
        .route("/owner/assets/{file}", get(asset))
        .layer(from_fn(x402_escrow_pages::security_headers))
        .with_state(OwnerState { wallet, settings })
}

// One stylesheet and one script for the merchant console and the owner's page.
const CSS: &str = include_str!("../../../../operator/src/console/assets/console.css");
const JS: &str = include_str!("../../../../operator/src/console/assets/console.js");

/// `GET /owner/assets/{file}`.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, mime) = match file.as_str() {
        "owner.css" => (CSS, "text/css; charset=utf-8"),
        "owner.js" => (JS, "text/javascript; charset=utf-8"),
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
