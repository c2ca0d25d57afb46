//! Prometheus metrics, exposed at `GET /metrics` in the OpenMetrics text format (which
//! Prometheus scrapes natively).
//!
//! | name | type | labels | fed by |
//! |---|---|---|---|
//! | `x402_payments` | gauge | `status` | the store, refreshed on every scrape |
//! | `x402_webhook_queue_depth` | gauge | | the store (pending deliveries), on scrape |
//! | `x402_tx_queue_depth` | gauge | | the store (queued transactions of the signer), on scrape |
//! | `x402_http_requests_total` | counter | `method`, `route`, `status` | the HTTP layer |
//! | `x402_http_request_duration_seconds` | histogram | `method`, `route`, `status` | the HTTP layer |
//! | `x402_tx_latency_seconds` | histogram | `kind` | the relayer: first broadcast → final |
//! | `x402_tx_confirmations` | histogram | `kind` | the relayer: confirmations when marked final |
//! | `x402_gas_used_total` | counter | `kind` | the relayer: gas used by mined transactions |
//! | `x402_store_write_transactions_total` | counter | | the store: SQL write transactions this process committed, on scrape |
//! | `x402_store_writer_busy_seconds_total` | counter | | the store (SQLite only): time this process held the single write turn, on scrape; its rate near 1 means writes queue |
//!
//! [`Metrics`] is a cheap handle (clone it into the relayer and the engine).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::lifecycle::ALL_STATUSES;
use crate::store::{Store, StoreError, TxKind};

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 5 ms … ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

fn tx_latency_histogram() -> Histogram {
    // 0.5 s … ~2.3 h.
    Histogram::new(exponential_buckets(0.5, 2.0, 15))
}

fn confirmations_histogram() -> Histogram {
    Histogram::new([1.0, 2.0, 3.0, 6.0, 12.0, 24.0, 64.0])
}

/// The operator's metrics. Cloning shares the same series.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    payments: Family<Labels, Gauge>,
    webhook_queue_depth: Gauge,
    tx_queue_depth: Gauge,
    http_requests: Family<Labels, Counter>,
    http_duration: HistogramFamily,
    tx_latency: HistogramFamily,
    tx_confirmations: HistogramFamily,
    gas_used: Family<Labels, Counter>,
    store_writes: Counter,
    store_writer_busy: Counter<f64, AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every operator metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let payments = Family::<Labels, Gauge>::default();
        let webhook_queue_depth = Gauge::default();
        let tx_queue_depth = Gauge::default();
        let http_requests = Family::<Labels, Counter>::default();
        let http_duration: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let tx_latency: HistogramFamily = Family::new_with_constructor(tx_latency_histogram);
        let tx_confirmations: HistogramFamily =
            Family::new_with_constructor(confirmations_histogram);
        let gas_used = Family::<Labels, Counter>::default();
        let store_writes = Counter::default();
        let store_writer_busy = Counter::<f64, AtomicU64>::default();
        registry.register("x402_payments", "Payments by status", payments.clone());
        registry.register(
            "x402_webhook_queue_depth",
            "Webhook deliveries waiting to be sent",
            webhook_queue_depth.clone(),
        );
        registry.register(
            "x402_tx_queue_depth",
            "Chain transactions queued for the signer",
            tx_queue_depth.clone(),
        );
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "x402_http_requests",
            "HTTP requests by method, route and status",
            http_requests.clone(),
        );
        registry.register(
            "x402_http_request_duration_seconds",
            "HTTP request latency by method, route and status",
            http_duration.clone(),
        );
        registry.register(
            "x402_tx_latency_seconds",
            "Time from first broadcast to finality, by transaction kind",
            tx_latency.clone(),
        );
        registry.register(
            "x402_tx_confirmations",
            "Confirmations observed when a transaction was marked final, by kind",
            tx_confirmations.clone(),
        );
        registry.register(
            "x402_gas_used",
            "Gas used by mined transactions, by kind",
            gas_used.clone(),
        );
        registry.register(
            "x402_store_write_transactions",
            "SQL write transactions committed by this process",
            store_writes.clone(),
        );
        registry.register(
            "x402_store_writer_busy_seconds",
            "Time this process held SQLite's single write turn",
            store_writer_busy.clone(),
        );
        // Every transaction kind starts at zero so the series exist before the first transaction.
        for &kind in TxKind::ALL {
            let labels = vec![("kind", kind.as_str().to_owned())];
            let _ = tx_latency.get_or_create(&labels);
            let _ = tx_confirmations.get_or_create(&labels);
            let _ = gas_used.get_or_create(&labels);
        }
        Metrics {
            registry: Arc::new(registry),
            payments,
            webhook_queue_depth,
            tx_queue_depth,
            http_requests,
            http_duration,
            tx_latency,
            tx_confirmations,
            gas_used,
            store_writes,
            store_writer_busy,
        }
    }

    /// Records one HTTP request.
    pub fn record_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = vec![
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Records a transaction's time from first broadcast to finality.
    pub fn observe_tx_latency(&self, kind: &str, latency: Duration) {
        self.tx_latency
            .get_or_create(&vec![("kind", kind.to_owned())])
            .observe(latency.as_secs_f64());
    }

    /// Records how many confirmations a transaction had when marked final.
    pub fn observe_tx_confirmations(&self, kind: &str, confirmations: u64) {
        self.tx_confirmations
            .get_or_create(&vec![("kind", kind.to_owned())])
            .observe(confirmations as f64);
    }

    /// Adds the gas used by a mined transaction.
    pub fn add_gas_used(&self, kind: &str, gas: u64) {
        self.gas_used
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc_by(gas);
    }

    /// Sets the payments-by-status gauge (statuses absent from `counts` read 0).
    pub fn set_payment_counts(&self, counts: &[(crate::lifecycle::PaymentStatus, i64)]) {
        for status in ALL_STATUSES {
            let n = counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            self.payments
                .get_or_create(&vec![("status", status.as_str().to_owned())])
                .set(n);
        }
    }

    /// Sets the webhook queue depth.
    pub fn set_webhook_queue_depth(&self, n: i64) {
        self.webhook_queue_depth.set(n);
    }

    /// Sets the transaction queue depth.
    pub fn set_tx_queue_depth(&self, n: i64) {
        self.tx_queue_depth.set(n);
    }

    /// Refreshes the gauges that mirror the store. `signer` is the `(chain id, address)` whose
    /// queue is reported (none: the gauge is left as is).
    pub async fn refresh(
        &self,
        store: &Store,
        signer: Option<(u64, Address)>,
    ) -> Result<(), StoreError> {
        // The store counts its own commits; the counter follows it (never backwards, so two
        // scrapes at once cannot count a commit twice).
        self.store_writes
            .inner()
            .fetch_max(store.write_count(), Ordering::Relaxed);
        if let Some(busy) = store.writer_busy_secs() {
            // The same, for a non-negative f64 counter stored as its bits: for such values
            // the bits order as the numbers do, so the larger bits are the later reading.
            self.store_writer_busy
                .inner()
                .fetch_max(busy.to_bits(), Ordering::Relaxed);
        }
        let counts = store.count_payments_by_status().await?;
        self.set_payment_counts(&counts);
        self.set_webhook_queue_depth(store.pending_delivery_count().await?);
        if let Some((chain_id, address)) = signer {
            self.set_tx_queue_depth(store.queued_tx_count(chain_id, address).await?);
        }
        Ok(())
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }

    /// The exposition as an HTTP response.
    pub fn response(&self) -> Response {
        let mut response = (StatusCode::OK, self.render()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

/// The route template of a matched request, copied into the response so the outer metrics
/// layer (which runs before routing) can label by route.
#[derive(Debug, Clone)]
struct RouteLabel(String);

/// Route-level middleware: copies the matched route template into the response extensions.
pub async fn tag_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

/// Outer middleware: counts and times every request (`route` is the template, e.g.
/// `/v1/payments/{id}`, or `unmatched`).
pub async fn track_http(
    axum::extract::State(metrics): axum::extract::State<Metrics>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // Only standard methods become label values (bounded cardinality).
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let response = next.run(req).await;
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or("unmatched", |r| r.0.as_str());
    metrics.record_http(
        &method,
        route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
