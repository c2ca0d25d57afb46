//! The tower [`Layer`] and its [`Service`]: challenge, verify through the operator, run the
//! handler, capture or void.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument as _;

use super::config::{PaymentRoute, PaymentsConfig};
use super::context::{RequestId, X_REQUEST_ID};
use super::operator::OperatorClient;

/// The 402 `error` when the `payment-identifier` extension is required and absent.
pub const PAYMENT_IDENTIFIER_REQUIRED: &str = "payment_identifier_required";

/// The 402 `error` reason in latency mode ([`PaymentRoute::latency_mode`]) when the hold fails
/// after the handler ran: the handler's response is withheld and nothing is charged.
pub const HOLD_FAILED: &str = "hold_failed";

/// The error code (`500`) when a metered route's handler priced its request above what the
/// buyer authorized ([`MeteredPrice`](super::MeteredPrice)): nothing is captured, the whole
/// payment goes back, and the handler's response is withheld.
pub const METERED_PRICE_TOO_HIGH: &str = "metered_price_exceeds_authorization";

/// Which requests a [`PaymentRoute`] applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// Every request reaching the layer (use with `route_layer` / `MethodRouter::layer`).
    All,
    /// One method and exact path.
    Exact(Method, String),
}

#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) operator: OperatorClient,
    pub(crate) config: PaymentsConfig,
    routes: Vec<(Matcher, PaymentRoute)>,
}

impl Shared {
    fn route_for(&self, method: &Method, path: &str) -> Option<&PaymentRoute> {
        self.routes
            .iter()
            .find_map(|(matcher, route)| match matcher {
                Matcher::All => Some(route),
                Matcher::Exact(m, p) if m == method && p == path => Some(route),
                Matcher::Exact(..) => None,
            })
    }
}

/// Error building a layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteSpecError {
    /// The spec is not `"METHOD /path"`.
    #[error("route {0:?} is not \"METHOD /path\"")]
    Malformed(String),
}

/// The x402 payment layer. Cheap to clone; configure once, apply per route or per router.
///
/// ```ignore
/// let payments = X402Layer::new(operator, config);
/// let app = Router::new()
///     .route("/weather", get(weather).layer(payments.paid(PaymentRoute::new("$0.01"))));
/// ```
#[derive(Debug, Clone)]
pub struct X402Layer {
    shared: Arc<Shared>,
}

impl X402Layer {
    /// A layer with no paid routes yet (every request passes through until
    /// [`route`](Self::route) or [`paid`](Self::paid) adds one).
    pub fn new(operator: OperatorClient, config: PaymentsConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                operator,
                config,
                routes: Vec::new(),
            }),
        }
    }

    /// A copy of this layer charging `route` for every request it sees (for
    /// `Router::route_layer` or `MethodRouter::layer`).
    pub fn paid(&self, route: impl Into<PaymentRoute>) -> Self {
        let mut shared = (*self.shared).clone();
        shared.routes = vec![(Matcher::All, route.into())];
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Adds a paid route `"GET /weather"` (exact path match) for use as a router-wide layer.
    pub fn route(
        mut self,
        spec: &str,
        route: impl Into<PaymentRoute>,
    ) -> Result<Self, RouteSpecError> {
        let malformed = || RouteSpecError::Malformed(spec.to_owned());
        let (method, path) = spec.trim().split_once(' ').ok_or_else(malformed)?;
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| malformed())?;
        let path = path.trim();
        if !path.starts_with('/') {
            return Err(malformed());
        }
        Arc::make_mut(&mut self.shared)
            .routes
            .push((Matcher::Exact(method, path.to_owned()), route.into()));
        Ok(self)
    }

    /// The configuration.
    pub fn config(&self) -> &PaymentsConfig {
        &self.shared.config
    }

    /// The operator client.
    pub fn operator(&self) -> &OperatorClient {
        &self.shared.operator
    }
}

impl<S> Layer<S> for X402Layer {
    type Service = X402Service<S>;

    fn layer(&self, inner: S) -> Self::Service {
        X402Service {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service produced by [`X402Layer`].
#[derive(Debug, Clone)]
pub struct X402Service<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request<Body>> for X402Service<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(route) = self
            .shared
            .route_for(request.method(), request.uri().path())
            .cloned()
        else {
            return Box::pin(inner.call(request));
        };
        let shared = self.shared.clone();
        let request_id = RequestId::from_headers(request.headers());
        let span = tracing::info_span!(
            "x402",
            request_id = %request_id,
            payment_id = tracing::field::Empty,
            payment_hash = tracing::field::Empty,
        );
        Box::pin(
            async move {
                let mut response =
                    super::flow::paid(shared, route, inner, request, request_id.clone()).await?;
                if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
                    response.headers_mut().insert(X_REQUEST_ID, value);
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}
