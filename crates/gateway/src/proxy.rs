//! The reverse proxy: every request forwarded to the upstream (hop-by-hop and payment headers
//! stripped, the request id added), the response streamed back.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use x402_escrow_sdk::Amount;
use x402_escrow_sdk::merchant::{MeteredPrice, RequestId, X_REQUEST_ID, X402Layer};

use crate::GatewayError;

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
}

/// The gateway's router: everything goes to the upstream, through `payments`.
pub fn router(
    upstream: &str,
    payments: X402Layer,
    timeout: Duration,
) -> Result<Router, GatewayError> {
    let parsed = reqwest::Url::parse(upstream).map_err(|source| GatewayError::UpstreamUrl {
        upstream: upstream.to_owned(),
        source,
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
        return Err(GatewayError::UpstreamScheme(upstream.to_owned()));
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(GatewayError::HttpClient)?;
    let proxy = Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        http,
    };
    Ok(Router::new()
        .fallback(forward)
        .with_state(proxy)
        .layer(payments))
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Payment headers the upstream has no use for (the signed payment stays with the gateway).
const PAYMENT_HEADERS: &[&str] = &["payment-signature", "x-payment"];

fn strip(headers: &HeaderMap, extra: &[&str]) -> HeaderMap {
    let named_by_connection: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || extra.contains(&n)
            || named_by_connection.iter().any(|c| c == n)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{}", proxy.upstream, path_and_query);
    let mut headers = strip(&parts.headers, &[PAYMENT_HEADERS, &["host"]].concat());
    if let Some(id) = parts.extensions.get::<RequestId>()
        && let Ok(value) = id.as_str().parse()
    {
        headers.insert(HeaderName::from_static(X_REQUEST_ID), value);
    }
    let upstream = proxy
        .http
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let upstream = match upstream {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(%url, error = %e, "upstream request failed");
            let status = if e.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            return (status, format!("upstream unavailable: {e}\n")).into_response();
        }
    };
    let status = upstream.status();
    let metered = match metered_price(upstream.headers()) {
        Ok(price) => price,
        Err(text) => {
            tracing::error!(%url, value = %text, "upstream sent a malformed {METERED_PRICE_HEADER}");
            return (
                StatusCode::BAD_GATEWAY,
                format!("the upstream's {METERED_PRICE_HEADER} {text:?} is not an amount\n"),
            )
                .into_response();
        }
    };
    let headers = strip(upstream.headers(), &[METERED_PRICE_HEADER]);
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if let Some(price) = metered {
        response.extensions_mut().insert(MeteredPrice(price));
    }
    response
}

/// The response header an upstream prices a metered request with (atomic units of the token,
/// decimal digits). The gateway strips it; the buyer sees the receipt instead.
pub const METERED_PRICE_HEADER: &str = "x-402-metered-price";

/// The upstream's metered price, if it sent one; the header's text when it is not one decimal
/// amount (a malformed price is a failed request: nothing is captured).
fn metered_price(headers: &HeaderMap) -> Result<Option<Amount>, String> {
    let mut values = headers.get_all(METERED_PRICE_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| "(not text)".to_owned())?;
    if values.next().is_some() {
        return Err(format!("{text} (sent more than once)"));
    }
    Amount::parse(text.trim())
        .map(Some)
        .map_err(|_| text.to_owned())
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
