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
use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
use x402_escrow_sdk::merchant::{
    AssetConfig, OperatorClient, PaymentRoute, PaymentsConfig, Price, RequestId, X_REQUEST_ID,
    X402Layer,
};
use x402_escrow_sdk::{Amount, Network};

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
    /// The operator's HTTP API.
    #[arg(long, env = "X402_OPERATOR_URL")]
    pub operator: String,
    /// The merchant's operator API key.
    #[arg(long, env = "X402_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Network, CAIP-2 (`eip155:8453`) or v1 name (`base`).
    #[arg(long)]
    pub network: String,
    /// The token address.
    #[arg(long)]
    pub asset: Address,
    /// The token's EIP-712 name (`USDC`).
    #[arg(long, default_value = "USDC")]
    pub asset_name: String,
    /// The token's EIP-712 version (`2`).
    #[arg(long, default_value = "2")]
    pub asset_version: String,
    /// The token's decimals.
    #[arg(long, default_value_t = 6)]
    pub decimals: u8,
    /// The merchant's receiver.
    #[arg(long)]
    pub pay_to: Address,
    /// The operator's signer (`captureAuthorizer`).
    #[arg(long)]
    pub capture_authorizer: Address,
    /// The AuthCaptureEscrow (default: the canonical one).
    #[arg(long)]
    pub escrow: Option<Address>,
    /// The escrow's ERC3009PaymentCollector (needed with a non-canonical `--escrow`).
    #[arg(long, requires = "escrow")]
    pub collector: Option<Address>,
    /// `extra.feeRecipient` (default: any, the operator's).
    #[arg(long)]
    pub fee_recipient: Option<Address>,
    /// `extra.maxFeeBps`.
    #[arg(long, default_value_t = 100)]
    pub max_fee_bps: u16,
    /// `maxTimeoutSeconds` of the requirements (the buyer's signature lives this long; it must
    /// exceed the operator's `auto_void.expiry_margin_secs`, 300 by default).
    #[arg(long, default_value_t = 600)]
    pub max_timeout_secs: u64,
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

/// The payment settings of the command line.
pub fn payments_config(args: &GatewayArgs) -> Result<PaymentsConfig> {
    let network: Network = args
        .network
        .parse()
        .map_err(|e| eyre::eyre!("--network {:?}: {e}", args.network))?;
    let mut config = PaymentsConfig::new(
        network,
        AssetConfig::new(
            args.asset,
            args.asset_name.clone(),
            args.asset_version.clone(),
            args.decimals,
        ),
        args.pay_to,
        args.capture_authorizer,
    );
    if let Some(escrow) = args.escrow {
        config.escrow = Some(escrow);
        if let Some(collector) = args.collector {
            config.registry = EscrowRegistry::only(EscrowDeployment::v1_0_interface(
                "local", escrow, collector, None,
            ));
        } else if EscrowRegistry::canonical().get(escrow).is_none() {
            bail!("--escrow {escrow} is not a canonical deployment: give its --collector too");
        }
    }
    if let Some(fee_recipient) = args.fee_recipient {
        config.fee_recipient = fee_recipient;
    }
    config.max_fee_bps = args.max_fee_bps;
    config.max_timeout_seconds = args.max_timeout_secs;
    config.handler_timeout = Duration::from_secs(args.timeout_secs.max(1));
    Ok(config)
}

/// Runs `x402-escrow gateway` until Ctrl-C.
pub async fn run(args: GatewayArgs) -> Result<()> {
    let routes = parse_routes(&args.routes, args.decimals)?;
    let config = payments_config(&args)?;
    let payments = layer(
        OperatorClient::new(args.operator.clone(), args.api_key.clone()),
        config,
        &routes,
    )?;
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
