//! Merchant authentication: `Authorization: Bearer <api key>`.
//!
//! The key is hashed (SHA-256) and the merchant looked up by its hash, so no stored secret is
//! compared byte by byte in SQL; the one comparison the API makes (the presented key's hash
//! against the stored hash, or the previous key's within a rotation's grace period) is done in
//! constant time. Anything else is `401 unauthorized` with
//! `WWW-Authenticate: Bearer`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use crate::service::ErrorCode;
use crate::store::{Merchant, Store, hash_api_key};

/// Longest API key accepted (longer headers are refused before hashing).
const MAX_KEY_LEN: usize = 512;

/// The authenticated merchant of a request (inserted by [`require_merchant`]).
#[derive(Debug, Clone)]
pub struct CurrentMerchant(pub Arc<Merchant>);

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(ErrorCode::Unauthorized, message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The bearer token of `Authorization`, if well formed.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("missing Authorization header")?;
    let value = value
        .to_str()
        .map_err(|_| "Authorization header is not ASCII")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("Authorization must be `Bearer <api key>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("Authorization must be `Bearer <api key>`");
    }
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_KEY_LEN {
        return Err("invalid API key");
    }
    Ok(token)
}

/// The merchant whose API key is `api_key`, or `None`.
pub async fn authenticate(store: &Store, api_key: &str) -> Result<Option<Merchant>, ApiError> {
    let Some(merchant) = store.merchant_by_api_key(api_key).await? else {
        return Ok(None);
    };
    let presented = hash_api_key(api_key);
    let matches = merchant.accepts_key_hash(&presented, store.now_ms());
    Ok(matches.then_some(merchant))
}

/// Middleware: authenticates the merchant and stores it in the request's extensions as a
/// [`CurrentMerchant`]; answers 401 otherwise.
pub async fn require_merchant(
    State(store): State<Store>,
    mut req: Request,
    next: Next,
) -> Response {
    let key = match bearer_token(req.headers()) {
        Ok(key) => key,
        Err(message) => return unauthorized(message),
    };
    match authenticate(&store, key).await {
        Ok(Some(merchant)) => {
            tracing::Span::current().record("merchant_id", tracing::field::display(merchant.id));
            req.extensions_mut()
                .insert(CurrentMerchant(Arc::new(merchant)));
            next.run(req).await
        }
        Ok(None) => unauthorized("unknown API key"),
        Err(e) => e.into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentMerchant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentMerchant>()
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "not authenticated"))
    }
}
