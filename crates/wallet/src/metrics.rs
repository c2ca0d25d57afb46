//! Prometheus metrics of the wallet, at `GET /metrics` in the OpenMetrics text format (the
//! operator's style: `prometheus-client`, gauges read from the store on scrape).
//!
//! | name | type | labels | fed by |
//! |---|---|---|---|
//! | `x402_wallet_payments` | gauge | `state` | the store, refreshed on every scrape |
//! | `x402_wallet_decisions_total` | counter | `decision`, `rule` | every reservation, refusal, signature, approval |
//! | `x402_wallet_fetches_total` | counter | `outcome` (`free`, `paid`, `upstream_error`) | `/v1/fetch` |
//! | `x402_wallet_http_requests_total` | counter | `route`, `status` | the HTTP layer |
//! | `x402_wallet_reconciled_total` | counter | `to` | the background reconcile |

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::store::{State, Store, StoreError};

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// The wallet's metrics; clones share the series.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    payments: Family<Labels, Gauge>,
    decisions: Family<Labels, Counter>,
    fetches: Family<Labels, Counter>,
    http: Family<Labels, Counter>,
    reconciled: Family<Labels, Counter>,
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
    /// Registers every series.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let payments = Family::<Labels, Gauge>::default();
        let decisions = Family::<Labels, Counter>::default();
        let fetches = Family::<Labels, Counter>::default();
        let http = Family::<Labels, Counter>::default();
        let reconciled = Family::<Labels, Counter>::default();
        registry.register(
            "x402_wallet_payments",
            "Payments in the ledger by state",
            payments.clone(),
        );
        registry.register(
            "x402_wallet_decisions",
            "Decisions of the wallet by kind and rule",
            decisions.clone(),
        );
        registry.register(
            "x402_wallet_fetches",
            "POST /v1/fetch requests by outcome",
            fetches.clone(),
        );
        registry.register(
            "x402_wallet_http_requests",
            "HTTP requests by route and status",
            http.clone(),
        );
        registry.register(
            "x402_wallet_reconciled",
            "Ledger changes made from the chain",
            reconciled.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            payments,
            decisions,
            fetches,
            http,
            reconciled,
        }
    }

    /// Counts a decision.
    pub fn decision(&self, decision: &str, rule: &str) {
        self.decisions
            .get_or_create(&vec![
                ("decision", decision.to_owned()),
                ("rule", rule.to_owned()),
            ])
            .inc();
    }

    /// Counts a fetch.
    pub fn fetch(&self, outcome: &str) {
        self.fetches
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// Counts an HTTP request.
    pub fn http(&self, route: &str, status: u16) {
        self.http
            .get_or_create(&vec![
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    /// Counts a reconcile change.
    pub fn reconciled(&self, to: State) {
        self.reconciled
            .get_or_create(&vec![("to", to.as_str().to_owned())])
            .inc();
    }

    /// Refreshes the store gauges and renders every series.
    pub async fn render(&self, store: &Store) -> Result<String, StoreError> {
        let counts = store.state_counts().await?;
        for state in State::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            self.payments
                .get_or_create(&vec![("state", state.as_str().to_owned())])
                .set(n);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| StoreError::Decode {
            column: "metrics",
            message: e.to_string(),
        })?;
        Ok(out)
    }
}
