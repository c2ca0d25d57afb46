//! The security baseline every server-rendered page of the project shares — the merchant
//! console (`/console`, operator) and the wallet owner's page (`/owner`, wallet): one set of
//! response headers, one way to read and set session cookies, one kind of token.
//!
//! - [`security_headers`]: middleware setting [`CSP`] (only this origin's scripts, styles,
//!   images and forms; never framed; no `<base>`), `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and `Cache-Control:
//!   no-store` unless the handler chose (pages carry private data and a CSRF token).
//! - [`cookie`] / [`set_cookie`]: a cookie by exact name; `HttpOnly`, `SameSite=Strict`,
//!   scoped to the page's path, `Secure` on request.
//! - [`random_token`] / [`is_token`] / [`tokens_match`] / [`token_hash`]: 256-bit hex tokens
//!   (session ids, CSRF tokens), compared in constant time, stored only as their SHA-256.
//! - [`html_page`]: a rendered template as an HTML response (a plain 500 when rendering failed).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The `Content-Security-Policy` of every page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware (`axum::middleware::from_fn(security_headers)`): the security headers of every
/// page response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `html` (a rendered template) as a `text/html` response with `status`; a template that
/// failed to render is logged (naming `what` page) and answered with a plain 500.
pub fn html_page<E: std::fmt::Display>(
    status: StatusCode,
    html: Result<String, E>,
    what: &str,
) -> Response {
    match html {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, page = what, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The value of cookie `name` (exact name) in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, scoped to `path`, lasting `max_age`
/// seconds (0 clears it), `Secure` when `secure`. Names, values and paths are the caller's own
/// constants and [`random_token`]s; anything not valid in a header gives an empty value.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A fresh 256-bit token, as 64 lower-case hex digits.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Whether `text` looks like a [`random_token`] (64 lower-case hex digits).
pub fn is_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Compares a presented token with the expected one in constant time.
pub fn tokens_match(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// What is stored of a token (a session id): its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    #[test]
    fn cookies_are_found_by_exact_name_and_set_strictly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; session_login=aa ; session=bb"),
        );
        assert_eq!(cookie(&headers, "session"), Some("bb"));
        assert_eq!(cookie(&headers, "session_login"), Some("aa"));
        assert_eq!(cookie(&headers, "sess"), None);
        let set = set_cookie("session", "ff", "/console", 60, true);
        assert_eq!(
            set.to_str().unwrap(),
            "session=ff; Path=/console; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        let cleared = set_cookie("session", "", "/owner", 0, false);
        assert_eq!(
            cleared.to_str().unwrap(),
            "session=; Path=/owner; Max-Age=0; HttpOnly; SameSite=Strict"
        );
        assert_eq!(set_cookie("bad\nname", "x", "/", 1, false), "");
    }

    #[test]
    fn tokens_are_64_hex_compared_whole_and_stored_hashed() {
        let token = random_token();
        assert!(is_token(&token));
        assert!(!is_token(&token.to_uppercase()));
        assert!(!is_token(&token[1..]));
        assert!(tokens_match(&token, &token));
        assert!(!tokens_match(&token, &token[..63]));
        assert!(!tokens_match(&token, &random_token()));
        assert_ne!(token_hash(&token), token);
        assert!(is_token(&token_hash(&token)));
    }

    #[test]
    fn pages_are_html_and_failures_plain_500s() {
        let ok = html_page(
            StatusCode::CREATED,
            Ok::<_, String>("<p>x</p>".into()),
            "test",
        );
        assert_eq!(ok.status(), StatusCode::CREATED);
        assert_eq!(
            ok.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let failed = html_page(StatusCode::OK, Err::<String, _>("broken"), "test");
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            failed
                .headers()
                .get(header::CONTENT_TYPE)
                .is_none_or(|v| v != "text/html; charset=utf-8")
        );
    }

    #[tokio::test]
    async fn every_page_gets_the_headers_and_no_store_unless_chosen() {
        let app = Router::new()
            .route("/page", get(|| async { "page" }))
            .route(
                "/asset",
                get(|| async { ([(header::CACHE_CONTROL, "max-age=3600")], "css") }),
            )
            .layer(axum::middleware::from_fn(security_headers));
        let page = app
            .clone()
            .oneshot(Request::get("/page").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let h = page.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let asset = app
            .oneshot(Request::get("/asset").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(asset.headers()[header::CACHE_CONTROL], "max-age=3600");
    }
}
