//! The merchant HTTP API (axum): see `operator/DESIGN.md` ("HTTP API") and `operator/openapi.yaml`.
//!
//! [`router`] is generic over the [`PaymentService`] it calls, so it is tested with a fake and
//! served with the engine. Layers, outermost first:
//!
//! 1. request id ([`request_id`]): `X-Request-Id` taken (if sane) or generated, put in the
//!    `http` tracing span and echoed in the response;
//! 2. HTTP metrics ([`metrics::track_http`]);
//! 3. body limit ([`BODY_LIMIT`], 413 as JSON);
//! 4. on `/v1/*`: bearer authentication ([`auth::require_merchant`]);
//! 5. on every POST: `Idempotency-Key` ([`idempotency::idempotent`]).
//!
//! [`router_with_facilitator`] (what `serve` runs) adds the x402 facilitator endpoints under
//! layers 1 and 2 only.
//!
//! Every error is `{"error": {"code", "message"}}` (see [`errors`]).

pub mod auth;
pub mod endpoint;
pub mod errors;
pub mod facilitator;
pub mod idempotency;
pub mod metrics;
pub mod reserve;
pub mod routes;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;
use tracing::Instrument;

pub use idempotency::IdempotencySettings;
pub use metrics::Metrics;

use crate::service::PaymentService;
use crate::store::Store;

/// Largest request body accepted (64 KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The request id header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The future a readiness check returns: `Err` carries a short reason.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

type Probe = Arc<dyn Fn() -> ProbeFuture + Send + Sync>;

/// What `/readyz` checks: named probes, each with a timeout. `serve` adds the database, the
/// RPC and "a signer lease is held by someone".
#[derive(Clone)]
pub struct Readiness {
    checks: Vec<(String, Probe)>,
    timeout: Duration,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field(
                "checks",
                &self.checks.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new()
    }
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    /// `true` when every check passed.
    pub ready: bool,
    /// `"ready"` or `"not_ready"`.
    pub status: &'static str,
    /// Each check: `"ok"` or its failure.
    pub checks: BTreeMap<String, String>,
}

impl Readiness {
    /// No checks (always ready); 2 s per check.
    pub fn new() -> Readiness {
        Readiness {
            checks: Vec::new(),
            timeout: Duration::from_secs(2),
        }
    }

    /// Sets the per-check timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Readiness {
        self.timeout = timeout;
        self
    }

    /// Adds a check named `name`.
    pub fn with_check<F, Fut>(mut self, name: impl Into<String>, check: F) -> Readiness
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let probe: Probe = Arc::new(move || Box::pin(check()) as ProbeFuture);
        self.checks.push((name.into(), probe));
        self
    }

    /// Adds the `database` check (`SELECT 1` through the store).
    pub fn with_database(self, store: Store) -> Readiness {
        self.with_check("database", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        })
    }

    /// Adds the `signer_lease` check: some instance (not necessarily this one) holds an unexpired
    /// lease on `(chain_id, signer)`, so transactions are being sent.
    pub fn with_signer_lease(self, store: Store, chain_id: u64, signer: Address) -> Readiness {
        self.with_check("signer_lease", move || {
            let store = store.clone();
            async move {
                let row = store
                    .get_signer(chain_id, signer)
                    .await
                    .map_err(|e| e.to_string())?;
                let now = store.now_ms();
                match row {
                    Some(s)
                        if s.lease_owner.is_some()
                            && s.lease_expires_at.is_some_and(|t| t > now) =>
                    {
                        Ok(())
                    }
                    Some(_) => Err(format!("no instance holds the lease of signer {signer}")),
                    None => Err(format!(
                        "signer {signer} is not registered on chain {chain_id}"
                    )),
                }
            }
        })
    }

    /// Adds the `signer_lease` check for every signer lane: each lane's lease is held by some
    /// instance (this one or another). One lane is [`Readiness::with_signer_lease`].
    pub fn with_lane_leases(self, store: Store, chain_id: u64, lanes: Vec<Address>) -> Readiness {
        if let [signer] = lanes.as_slice() {
            return self.with_signer_lease(store, chain_id, *signer);
        }
        self.with_check("signer_lease", move || {
            let (store, lanes) = (store.clone(), lanes.clone());
            async move {
                let now = store.now_ms();
                let mut idle = Vec::new();
                for signer in lanes {
                    let row = store
                        .get_signer(chain_id, signer)
                        .await
                        .map_err(|e| e.to_string())?;
                    let held = row.is_some_and(|s| {
                        s.lease_owner.is_some() && s.lease_expires_at.is_some_and(|t| t > now)
                    });
                    if !held {
                        idle.push(signer.to_string());
                    }
                }
                if idle.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "no instance holds the lease of signer lane(s) {}",
                        idle.join(", ")
                    ))
                }
            }
        })
    }

    /// Runs every check (concurrently, each under the timeout).
    pub async fn check(&self) -> ReadinessReport {
        let mut set = tokio::task::JoinSet::new();
        for (name, probe) in &self.checks {
            let name = name.clone();
            let fut = probe();
            let timeout = self.timeout;
            set.spawn(async move {
                let outcome = match tokio::time::timeout(timeout, fut).await {
                    Ok(Ok(())) => "ok".to_owned(),
                    Ok(Err(e)) => format!("error: {e}"),
                    Err(_) => format!("error: timed out after {timeout:?}"),
                };
                (name, outcome)
            });
        }
        let mut checks = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((name, outcome)) => {
                    checks.insert(name, outcome);
                }
                Err(e) => {
                    checks.insert(format!("check-{}", checks.len()), format!("error: {e}"));
                }
            }
        }
        let ready = checks.values().all(|v| v == "ok");
        ReadinessReport {
            ready,
            status: if ready { "ready" } else { "not_ready" },
            checks,
        }
    }
}

/// Everything the router needs.
pub struct ApiState<S> {
    /// The engine (or a fake).
    pub service: Arc<S>,
    /// The store (API keys, idempotency keys, metrics gauges).
    pub store: Store,
    /// Idempotency-key retention and in-flight lock.
    pub idempotency: IdempotencySettings,
    /// `/readyz` checks.
    pub readiness: Readiness,
    /// The metrics registry.
    pub metrics: Metrics,
    /// The `(chain id, signer)` whose queue `x402_tx_queue_depth` reports.
    pub tx_queue_signer: Option<(u64, Address)>,
    /// The merchant console (`/console`, [`crate::console`]).
    pub console: crate::console::ConsoleSettings,
}

impl<S> Clone for ApiState<S> {
    fn clone(&self) -> Self {
        ApiState {
            service: Arc::clone(&self.service),
            store: self.store.clone(),
            idempotency: self.idempotency,
            readiness: self.readiness.clone(),
            metrics: self.metrics.clone(),
            tx_queue_signer: self.tx_queue_signer,
            console: self.console,
        }
    }
}

impl<S> ApiState<S> {
    /// A state with default idempotency settings, a database readiness check, fresh metrics
    /// and no transaction queue gauge.
    pub fn new(service: Arc<S>, store: Store) -> ApiState<S> {
        ApiState {
            service,
            readiness: Readiness::new().with_database(store.clone()),
            store,
            idempotency: IdempotencySettings::default(),
            metrics: Metrics::new(),
            tx_queue_signer: None,
            console: crate::console::ConsoleSettings::default(),
        }
    }
}

impl<S> ApiState<S> {
    /// Takes the idempotency retention and in-flight timeout from the configuration.
    pub fn with_config(mut self, config: &crate::config::Config) -> ApiState<S> {
        self.idempotency = IdempotencySettings::from(&config.idempotency);
        self.console = crate::console::ConsoleSettings::from(&config.console);
        self
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM: the `shutdown` future for [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}

/// The request id of a request (also in the response's `X-Request-Id`).
pub use x402_escrow_types::RequestId;

fn sane_request_id(v: &HeaderValue) -> Option<String> {
    RequestId::parse(v.to_str().ok()?).map(|id| id.0)
}

/// Middleware: request id, tracing span, echo header.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        merchant_id = tracing::field::Empty,
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "request done"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The API router.
pub fn router<S: PaymentService>(state: ApiState<S>) -> Router {
    layered(state, None)
}

/// [`router`] with the x402 facilitator endpoints (`/supported`, `/verify`, `/settle`, see
/// [`facilitator::routes`]) beside the REST API: outside its body limit and `Idempotency-Key`
/// layer (x402 middleware retries with the payment-identifier extension), but under the same
/// request id and HTTP metrics layers, so `x402_http_requests_total` counts them too.
pub fn router_with_facilitator<S: PaymentService + facilitator::Facilitator>(
    state: ApiState<S>,
    settings: facilitator::FacilitatorSettings,
) -> Router {
    let facilitator = facilitator::routes::<S>(state.store.clone(), settings);
    layered(state, Some(facilitator))
}

/// The REST API's routes and layers; `beside` (routes of their own, with their own
/// authentication) joins after the body limit, before the metrics and request id layers.
fn layered<S: PaymentService>(state: ApiState<S>, beside: Option<Router<ApiState<S>>>) -> Router {
    let idempotency_state = idempotency::IdempotencyState {
        store: state.store.clone(),
        settings: state.idempotency,
        body_limit: BODY_LIMIT,
    };
    let posts = Router::new()
        .route("/v1/payments/authorize", post(routes::authorize::<S>))
        .route("/v1/payments/{id}/capture", post(routes::capture::<S>))
        .route("/v1/payments/{id}/void", post(routes::void::<S>))
        .route("/v1/payments/{id}/refund", post(routes::refund::<S>))
        .route_layer(from_fn_with_state(
            idempotency_state,
            idempotency::idempotent,
        ));
    let merchant = Router::new()
        .route("/v1/payments/{id}", get(routes::get_payment::<S>))
        .route("/v1/payments", get(routes::list_payments::<S>))
        .route("/v1/events", get(routes::list_events::<S>))
        .route("/v1/merchant", get(routes::get_merchant::<S>))
        .route("/v1/reserve", get(reserve::get_reserve::<S>))
        .route("/v1/reserve/statement", get(reserve::get_statement::<S>))
        .route(
            "/v1/merchant/api-key/rotate",
            post(endpoint::rotate_api_key::<S>),
        )
        .route(
            "/v1/webhook",
            get(endpoint::get_webhook::<S>).patch(endpoint::update_webhook::<S>),
        )
        .route(
            "/v1/webhook/secret/rotate",
            post(endpoint::rotate_webhook_secret::<S>),
        )
        .route(
            "/v1/webhook/deliveries",
            get(endpoint::list_deliveries::<S>),
        )
        .route(
            "/v1/webhook/deliveries/{id}/redeliver",
            post(endpoint::redeliver::<S>),
        )
        .merge(posts)
        .route_layer(from_fn_with_state(
            state.store.clone(),
            auth::require_merchant,
        ));
    let rest = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz::<S>))
        .route("/metrics", get(routes::metrics::<S>))
        .merge(merchant)
        .merge(crate::console::router::<S>(&state.console))
        .route_layer(from_fn(metrics::tag_route))
        .method_not_allowed_fallback(errors::fallback_method_not_allowed)
        .fallback(errors::fallback_not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    let app = match beside {
        Some(routes) => rest.merge(routes.route_layer(from_fn(metrics::tag_route))),
        None => rest,
    };
    app.layer(from_fn_with_state(
        state.metrics.clone(),
        metrics::track_http,
    ))
    .layer(from_fn(request_id))
    .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = ?listener.local_addr().ok(), "HTTP API listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
