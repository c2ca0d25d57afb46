//! The paying reverse proxy: refundable x402 in front of any HTTP API (`x402-escrow gateway`).
//!
//! Listed routes (`--route "GET /path=$0.01"`) are charged through the SDK's
//! [`X402Layer`](x402_escrow_sdk::merchant::X402Layer); the request is forwarded to the upstream
//! and its response streamed back; the layer captures when the upstream answers 2xx and voids
//! otherwise (an unreachable upstream answers 502, so it voids too). Unlisted routes pass
//! through free. What the gateway offers (network, token, escrow, fee, time windows, `payTo`) is
//! read from the operator's terms ([`fetch_terms`]); [`GatewayArgs`] overrides are checked
//! against them ([`payments_config`]). `--latency-cap` puts the routes priced within it in the
//! layer's latency mode ([`PaymentRoute::latency_mode`](x402_escrow_sdk::merchant::PaymentRoute::latency_mode)).
#![warn(missing_docs)]

mod args;
mod proxy;
mod routes;

use std::net::SocketAddr;
use std::time::Duration;

use alloy::primitives::Address;
use x402_escrow_sdk::merchant::{
    OperatorClient, OperatorError, PaymentFlow, RouteSpecError, TermsError,
};
use x402_escrow_sdk::network::NetworkError;

pub use args::{FlowArg, GatewayArgs, TransferMethodArg, fetch_terms, payments_config};
pub use proxy::{METERED_PRICE_HEADER, router, serve};
pub use routes::{RouteParseError, RouteSpec, layer, parse_latency_cap, parse_route, parse_routes};

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A `--route` does not parse.
    #[error(transparent)]
    RouteSpec(#[from] RouteParseError),
    /// The layer refused a route.
    #[error("route {route}")]
    Route {
        /// The route (`"GET /path"`).
        route: String,
        /// Why.
        #[source]
        source: RouteSpecError,
    },
    /// The upstream is not a URL.
    #[error("upstream {upstream:?}")]
    UpstreamUrl {
        /// The upstream as given.
        upstream: String,
        /// Why.
        #[source]
        source: url::ParseError,
    },
    /// The upstream is not an http(s) URL without query.
    #[error("upstream {0:?} must be an http(s) URL without query")]
    UpstreamScheme(String),
    /// The HTTP client could not be built.
    #[error("building the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The operator's terms do not make payment settings.
    #[error(transparent)]
    Terms(TermsError),
    /// `--network` is not a network.
    #[error("--network {network:?}")]
    Network {
        /// The network as given.
        network: String,
        /// Why.
        #[source]
        source: NetworkError,
    },
    /// `--escrow` without `--collector`, naming an escrow the operator does not list.
    #[error(
        "--escrow {0} is not one the operator drives: give its --collector too \
         (the operator will still refuse it unless it drives it)"
    )]
    UnknownEscrow(Address),
    /// `--transfer-method permit2` for an escrow deployment without a Permit2 collector.
    #[error(
        "--transfer-method permit2: the escrow {0} has no Permit2 collector (the operator would \
         refuse every Permit2 payment)"
    )]
    NoPermit2Collector(Address),
    /// An override disagrees with the operator's terms.
    #[error("the gateway's settings disagree with the operator's (fix the flag named)")]
    Disagree(#[source] TermsError),
    /// The operator's terms could not be read.
    #[error(
        "reading what the operator accepts from this merchant (GET /v1/merchant); \
         check --operator and X402_API_KEY"
    )]
    Operator(#[source] OperatorError),
    /// The listening address could not be bound.
    #[error("listen on {listen}")]
    Listen {
        /// The address as given.
        listen: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving")]
    Serve(#[source] std::io::Error),
}

/// Runs `x402-escrow gateway` until Ctrl-C: reads the operator's terms, builds the payment
/// settings and the routes, listens and prints what it offers.
pub async fn run(args: GatewayArgs) -> Result<(), GatewayError> {
    let operator = OperatorClient::new(args.operator.clone(), args.api_key.clone());
    let terms = fetch_terms(&operator, Duration::from_secs(args.operator_wait_secs)).await?;
    let config = payments_config(&args, &terms)?;
    let mut routes = parse_routes(&args.routes, config.asset.decimals)?;
    if let Some(cap) = &args.latency_cap {
        let cap = parse_latency_cap(cap, config.asset.decimals)?;
        for route in &mut routes {
            route.latency_cap = Some(cap);
        }
    }
    let payments = layer(operator, config.clone(), &routes)?;
    let app = router(
        &args.upstream,
        payments,
        Duration::from_secs(args.timeout_secs.max(1)),
    )?;
    let listen = |source| GatewayError::Listen {
        listen: args.listen.clone(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(listen)?;
    let address: SocketAddr = listener.local_addr().map_err(listen)?;
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
            "  paid       {} = {} ({} units){}",
            route.spec(),
            route.price,
            route.amount,
            if route.latency_mode() {
                ", latency mode"
            } else {
                ""
            }
        );
    }
    println!("  free       every other request");
    serve(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(GatewayError::Serve)
}
