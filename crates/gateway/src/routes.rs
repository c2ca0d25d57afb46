//! `--route "METHOD /path=PRICE"`: parsed strictly, then charged through the layer.

use axum::http::Method;
use x402_escrow_sdk::Amount;
use x402_escrow_sdk::merchant::{OperatorClient, PaymentRoute, PaymentsConfig, Price, X402Layer};

use crate::GatewayError;

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
    /// Latency mode's cap in atomic units (`None`: off), from `--latency-cap`: the route runs in
    /// latency mode when its price is at most the cap.
    pub latency_cap: Option<Amount>,
    /// Metered (`=max:PRICE`): the price is the most the buyer authorizes and the upstream's
    /// [`METERED_PRICE_HEADER`](crate::METERED_PRICE_HEADER) decides what is captured.
    pub metered: bool,
}

impl RouteSpec {
    /// `"GET /path"`.
    pub fn spec(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether this route's payments run in latency mode (its price is within the cap).
    pub fn latency_mode(&self) -> bool {
        self.latency_cap.is_some_and(|cap| self.amount <= cap)
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
    /// `--latency-cap` does not parse or is zero.
    #[error("--latency-cap {cap:?} is not a positive amount ($0.05, 0.05): {reason}")]
    LatencyCap {
        /// The cap as written.
        cap: String,
        /// Why.
        reason: String,
    },
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Parses `"GET /path=$0.01"` (or `"GET /path=max:$0.50"`, metered) strictly (the price
/// converted with `decimals`).
pub fn parse_route(spec: &str, decimals: u8) -> Result<RouteSpec, RouteParseError> {
    let shape = || RouteParseError::Shape(spec.to_owned());
    let (route, price) = spec.rsplit_once('=').ok_or_else(shape)?;
    let (method, path) = route.trim().split_once(' ').ok_or_else(shape)?;
    let (path, price) = (path.trim(), price.trim());
    // `max:PRICE`: a metered route, the price a maximum.
    let (metered, price) = match price.strip_prefix("max:") {
        Some(max) => (true, max.trim()),
        None => (false, price),
    };
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
        latency_cap: None,
        metered,
    })
}

/// Parses `--latency-cap` (`$0.05` or `0.05`, converted with `decimals`) strictly: a positive
/// amount.
pub fn parse_latency_cap(cap: &str, decimals: u8) -> Result<Amount, RouteParseError> {
    let error = |reason: String| RouteParseError::LatencyCap {
        cap: cap.to_owned(),
        reason,
    };
    let text = cap.trim();
    if text.is_empty() {
        return Err(error("empty".into()));
    }
    let amount = Price::usd(text)
        .resolve(decimals)
        .map_err(|e| error(e.to_string()))?;
    if amount == Amount::ZERO {
        return Err(error(
            "zero (leave --latency-cap out to keep latency mode off)".into(),
        ));
    }
    Ok(amount)
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
) -> Result<X402Layer, GatewayError> {
    let mut layer = X402Layer::new(operator, config);
    for route in routes {
        let mut paid = PaymentRoute::new(Price::Atomic(route.amount));
        if let Some(cap) = route.latency_cap {
            paid = paid.latency_mode(Price::Atomic(cap));
        }
        if route.metered {
            paid = paid.metered();
        }
        layer = layer
            .route(&route.spec(), paid)
            .map_err(|source| GatewayError::Route {
                route: route.spec(),
                source,
            })?;
    }
    Ok(layer)
}
