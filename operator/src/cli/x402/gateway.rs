//! `x402-escrow gateway`: a paying reverse proxy. Listed routes (`--route "GET /path=$0.01"`)
//! are charged through the SDK's [`X402Layer`]; the request is forwarded to the upstream and its
//! response streamed back; the layer captures when the upstream answers 2xx and voids otherwise
//! (an unreachable upstream answers 502, so it voids too). Unlisted routes pass through free.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use alloy::primitives::Address;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::Args;
use eyre::{Context, Result, bail};
use x402_escrow_sdk::Amount;
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
use x402_escrow_sdk::merchant::{
    AssetConfig, MerchantTerms, OperatorClient, PaymentFlow, PaymentRoute, PaymentsConfig, Price,
    RequestId, X_REQUEST_ID, X402Layer,
};

/// Options of `x402-escrow gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The API to put behind payments (`http://127.0.0.1:3000`; a path prefix is kept).
    #[arg(long)]
    pub upstream: String,
    /// A paid route: `"METHOD /path=PRICE"`, the price in dollars (`$0.01`) or token units
    /// (`0.01`); single-quote it in a shell (`'GET /w=$0.01'`: `$0` expands in double quotes).
    /// Repeat for more routes; other requests pass through free.
    #[arg(long = "route", required = true)]
    pub routes: Vec<String>,
    /// The operator's HTTP API. Everything not given below (network, token, escrow,
    /// `captureAuthorizer`, fee, time windows, `payTo`) is read from it (`GET /v1/merchant`), so
    /// what the gateway offers is what the operator accepts.
    #[arg(long, env = "X402_OPERATOR_URL")]
    pub operator: String,
    /// The merchant's operator API key.
    #[arg(long, env = "X402_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// The x402 `auth-capture` payment flow: `escrow` (hold, capture on a 2xx, void otherwise)
    /// or `authorization` (charge before forwarding, refund the whole amount unless 2xx).
    #[arg(long, value_enum, default_value_t = FlowArg::Escrow)]
    pub flow: FlowArg,
    /// Also offer the (non-refundable) `exact` scheme: verified before forwarding, settled only
    /// after a 2xx.
    #[arg(long)]
    pub offer_exact: bool,
    /// How long to wait for the operator at start-up (seconds).
    #[arg(long, default_value_t = 30)]
    pub operator_wait_secs: u64,
    /// Override: network, CAIP-2 (`eip155:8453`) or v1 name (`base`); must be the operator's.
    #[arg(long)]
    pub network: Option<String>,
    /// Override: the token address (one the operator accepts).
    #[arg(long)]
    pub asset: Option<Address>,
    /// Override: the token's EIP-712 name (`USDC`).
    #[arg(long)]
    pub asset_name: Option<String>,
    /// Override: the token's EIP-712 version (`2`).
    #[arg(long)]
    pub asset_version: Option<String>,
    /// Override: the token's decimals.
    #[arg(long)]
    pub decimals: Option<u8>,
    /// Override: the merchant's receiver (default: its first registered receiver).
    #[arg(long)]
    pub pay_to: Option<Address>,
    /// Override: the operator's signer (`captureAuthorizer`).
    #[arg(long)]
    pub capture_authorizer: Option<Address>,
    /// Override: the AuthCaptureEscrow (default: the operator's first).
    #[arg(long)]
    pub escrow: Option<Address>,
    /// Override: the escrow's ERC3009PaymentCollector (with `--escrow`, when the operator does
    /// not list it).
    #[arg(long, requires = "escrow")]
    pub collector: Option<Address>,
    /// Override: `extra.feeRecipient` (default: the operator's).
    #[arg(long)]
    pub fee_recipient: Option<Address>,
    /// Override: `extra.maxFeeBps` (default: the operator's fee).
    #[arg(long)]
    pub max_fee_bps: Option<u16>,
    /// Override: `maxTimeoutSeconds` of the requirements (the buyer's signature lives this
    /// long; it must exceed the operator's `auto_void.expiry_margin_secs`).
    #[arg(long)]
    pub max_timeout_secs: Option<u64>,
    /// How long the upstream may take before the payment is voided (seconds).
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8403")]
    pub listen: String,
}

/// One `--route`: the layer's `"METHOD /path"` spec and its price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The method.
    pub method: Method,
    /// The exact path.
    pub path: String,
    /// The price as written.
    pub price: String,
    /// The price in atomic units.
    pub amount: Amount,
}

impl RouteSpec {
    /// `"GET /path"`.
    pub fn spec(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Why a `--route` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteParseError {
    /// No `=` between the route and the price.
    #[error("route {0:?}: expected \"METHOD /path=PRICE\", e.g. \"GET /weather=$0.01\"")]
    Shape(String),
    /// The method is not an HTTP method in capitals.
    #[error(
        "route {spec:?}: {method:?} is not an HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)"
    )]
    Method {
        /// The whole spec.
        spec: String,
        /// The method as written.
        method: String,
    },
    /// The path is not an absolute path without query.
    #[error("route {spec:?}: path {path:?} must start with '/' and contain no spaces, '?' or '#'")]
    Path {
        /// The whole spec.
        spec: String,
        /// The path as written.
        path: String,
    },
    /// The price does not parse or is zero.
    #[error("route {spec:?}: price {price:?} is not a positive amount ($0.01, 0.01): {reason}")]
    Price {
        /// The whole spec.
        spec: String,
        /// The price as written.
        price: String,
        /// Why.
        reason: String,
    },
    /// The same method and path twice.
    #[error("route {0:?} is listed twice")]
    Duplicate(String),
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Parses `"GET /path=$0.01"` strictly (the price converted with `decimals`).
pub fn parse_route(spec: &str, decimals: u8) -> Result<RouteSpec, RouteParseError> {
    let shape = || RouteParseError::Shape(spec.to_owned());
    let (route, price) = spec.rsplit_once('=').ok_or_else(shape)?;
    let (method, path) = route.trim().split_once(' ').ok_or_else(shape)?;
    let (path, price) = (path.trim(), price.trim());
    if !METHODS.contains(&method) {
        return Err(RouteParseError::Method {
            spec: spec.to_owned(),
            method: method.to_owned(),
        });
    }
    if !path.starts_with('/')
        || path
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#')
    {
        return Err(RouteParseError::Path {
            spec: spec.to_owned(),
            path: path.to_owned(),
        });
    }
    let price_error = |reason: String| RouteParseError::Price {
        spec: spec.to_owned(),
        price: price.to_owned(),
        reason,
    };
    if price.is_empty() {
        return Err(price_error("empty".into()));
    }
    let amount = Price::usd(price)
        .resolve(decimals)
        .map_err(|e| price_error(e.to_string()))?;
    if amount == Amount::ZERO {
        return Err(price_error("zero (leave free routes unlisted)".into()));
    }
    Ok(RouteSpec {
        method: Method::from_bytes(method.as_bytes()).map_err(|_| shape())?,
        path: path.to_owned(),
        price: price.to_owned(),
        amount,
    })
}

/// Parses every `--route`, refusing duplicates.
pub fn parse_routes(specs: &[String], decimals: u8) -> Result<Vec<RouteSpec>, RouteParseError> {
    let mut routes: Vec<RouteSpec> = Vec::new();
    for spec in specs {
        let route = parse_route(spec, decimals)?;
        if routes
            .iter()
            .any(|r| r.method == route.method && r.path == route.path)
        {
            return Err(RouteParseError::Duplicate(route.spec()));
        }
        routes.push(route);
    }
    Ok(routes)
}

/// Builds the payment layer charging `routes`.
pub fn layer(
    operator: OperatorClient,
    config: PaymentsConfig,
    routes: &[RouteSpec],
) -> Result<X402Layer> {
    let mut layer = X402Layer::new(operator, config);
    for route in routes {
        layer = layer
            .route(
                &route.spec(),
                PaymentRoute::new(Price::Atomic(route.amount)),
            )
            .wrap_err_with(|| format!("route {}", route.spec()))?;
    }
    Ok(layer)
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
}

/// The gateway's router: everything goes to the upstream, through `payments`.
pub fn router(upstream: &str, payments: X402Layer, timeout: Duration) -> Result<Router> {
    let parsed =
        reqwest::Url::parse(upstream).wrap_err_with(|| format!("upstream {upstream:?}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
        bail!("upstream {upstream:?} must be an http(s) URL without query");
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .wrap_err("building the HTTP client")?;
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
    let headers = strip(upstream.headers(), &[]);
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
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

/// `--flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlowArg {
    /// Hold, then capture on success or void on failure.
    Escrow,
    /// Charge at once, refund the whole amount on failure.
    Authorization,
}

impl From<FlowArg> for PaymentFlow {
    fn from(flow: FlowArg) -> Self {
        match flow {
            FlowArg::Escrow => PaymentFlow::Escrow,
            FlowArg::Authorization => PaymentFlow::Authorization,
        }
    }
}

/// The payment settings: what the operator accepts from this merchant (`terms`), with the
/// command line's overrides, checked against the terms (a disagreement names both settings).
pub fn payments_config(args: &GatewayArgs, terms: &MerchantTerms) -> Result<PaymentsConfig> {
    let mut config = PaymentsConfig::from_terms(terms)?;
    if let Some(network) = &args.network {
        config.network = network
            .parse()
            .map_err(|e| eyre::eyre!("--network {network:?}: {e}"))?;
    }
    if let Some(asset) = args.asset {
        match terms.assets.iter().find(|a| a.address == asset) {
            Some(known) => {
                config.asset = AssetConfig::new(
                    known.address,
                    known.name.clone(),
                    known.version.clone(),
                    known.decimals,
                )
            }
            None => config.asset.address = asset,
        }
    }
    if let Some(name) = &args.asset_name {
        config.asset.name = name.clone();
    }
    if let Some(version) = &args.asset_version {
        config.asset.version = version.clone();
    }
    if let Some(decimals) = args.decimals {
        config.asset.decimals = decimals;
    }
    if let Some(pay_to) = args.pay_to {
        config.pay_to = pay_to;
    }
    if let Some(authorizer) = args.capture_authorizer {
        config.capture_authorizer = authorizer;
    }
    if let Some(escrow) = args.escrow {
        config.escrow = Some(escrow);
        if let Some(collector) = args.collector {
            config.registry = EscrowRegistry::only(EscrowDeployment::v1_0_interface(
                "local", escrow, collector, None,
            ));
        } else if config.registry.get(escrow).is_none() {
            bail!(
                "--escrow {escrow} is not one the operator drives: give its --collector too \
                 (the operator will still refuse it unless it drives it)"
            );
        }
    }
    if let Some(fee_recipient) = args.fee_recipient {
        config.fee_recipient = fee_recipient;
    }
    if let Some(max_fee_bps) = args.max_fee_bps {
        config.max_fee_bps = max_fee_bps;
        config.min_fee_bps = config.min_fee_bps.min(max_fee_bps);
    }
    if let Some(max_timeout) = args.max_timeout_secs {
        config.max_timeout_seconds = max_timeout;
        // The captureDeadline offered must cover the longer signing window too.
        config.capture_deadline_secs = terms.capture_deadline_offer_secs(max_timeout);
        config.refund_deadline_secs = config
            .refund_deadline_secs
            .max(config.capture_deadline_secs);
    }
    config.payment_flow = args.flow.into();
    config.offer_exact = args.offer_exact;
    config.handler_timeout = Duration::from_secs(args.timeout_secs.max(1));
    config
        .check_terms(terms)
        .wrap_err("the gateway's settings disagree with the operator's (fix the flag named)")?;
    Ok(config)
}

/// Reads the merchant's terms, waiting up to `wait` for an operator that is still starting.
pub async fn fetch_terms(operator: &OperatorClient, wait: Duration) -> Result<MerchantTerms> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match operator.terms().await {
            Ok(terms) => return Ok(terms),
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "waiting for the operator");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(eyre::eyre!(e)).wrap_err(
                    "reading what the operator accepts from this merchant (GET /v1/merchant); \
                     check --operator and X402_API_KEY",
                );
            }
        }
    }
}

/// Runs `x402-escrow gateway` until Ctrl-C.
pub async fn run(args: GatewayArgs) -> Result<()> {
    let operator = OperatorClient::new(args.operator.clone(), args.api_key.clone());
    let terms = fetch_terms(&operator, Duration::from_secs(args.operator_wait_secs)).await?;
    let config = payments_config(&args, &terms)?;
    let routes = parse_routes(&args.routes, config.asset.decimals)?;
    let payments = layer(operator, config.clone(), &routes)?;
    let app = router(
        &args.upstream,
        payments,
        Duration::from_secs(args.timeout_secs.max(1)),
    )?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .wrap_err_with(|| format!("listen on {}", args.listen))?;
    let address: SocketAddr = listener.local_addr()?;
    println!("gateway      http://{address} → {}", args.upstream);
    println!(
        "  merchant   {} ({}), paid to {} in {} on {}",
        terms.name, terms.merchant_id, config.pay_to, config.asset.address, config.network
    );
    println!(
        "  terms      flow {}, exact {}, captureDeadline now + {} s, fee {} bps",
        match config.payment_flow {
            PaymentFlow::Escrow => "escrow",
            PaymentFlow::Authorization => "authorization",
        },
        if config.offer_exact {
            "offered"
        } else {
            "not offered"
        },
        config.capture_deadline_secs,
        terms.fee_bps
    );
    for route in &routes {
        println!(
            "  paid       {} = {} ({} units)",
            route.spec(),
            route.price,
            route.amount
        );
    }
    println!("  free       every other request");
    serve(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .wrap_err("serving")?;
    Ok(())
}
