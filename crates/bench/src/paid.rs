//! The paid mode: a baseline on a free route, then buyers paying through the merchant layer,
//! then settlement (every payment captured with its capture final).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use x402_escrow_demo::serve_app;
use x402_escrow_sdk::Amount;
use x402_escrow_sdk::buyer::{AssetLimits, SpendPolicy};
use x402_escrow_sdk::merchant::{OperatorClient, PaymentRoute, X402Layer};

use crate::load::{Budget, Buyer, free_request, paid_request, run_phase};
use crate::report::{PaidReport, PerPaidRequest, Percentiles};
use crate::run::{Phase, Setup, per_instance, poll_count, sample};
use crate::{BenchDatabase, PRICE, Result, Step};

/// Baseline on the free route, then the paid route, then settlement. Buyer `b` pays through
/// the layer of instance `b % instances`.
pub(crate) async fn paid_phase<D: BenchDatabase>(setup: &Setup<'_>, db: &D) -> Result<Phase> {
    let args = setup.args;
    let budget_requests = args.requests.unwrap_or(1000);
    async fn handler() -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({"city": "Lisbon", "forecast": "sunny", "celsius": 24}))
    }
    // The merchant: the same handler free and paid, one paid route per operator instance.
    let mut app = Router::new().route("/free", get(handler));
    for (i, instance) in setup.instances.iter().enumerate() {
        let layer = X402Layer::new(
            OperatorClient::new(instance.process.url(), setup.api_key.clone()),
            setup.payments_config.clone(),
        );
        app = app.route(
            &format!("/paid-{i}"),
            get(handler).layer(layer.paid(PaymentRoute::new("$0.01").description("Benchmark"))),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .step("binding the merchant")?;
    let merchant_url = format!(
        "http://{}",
        listener.local_addr().step("binding the merchant")?
    );
    let stop_merchant = serve_app(listener, app);

    let budget = |now: Instant| match args.duration {
        Some(secs) => Budget::Until(now + Duration::from_secs(secs)),
        None => Budget::Requests(budget_requests),
    };

    // Baseline: the free route.
    let http = setup.http.clone();
    let free_url = format!("{merchant_url}/free");
    let baseline = {
        let http = http.clone();
        let url = free_url.clone();
        run_phase(args.buyers, budget(Instant::now()), move |_, _| {
            let http = http.clone();
            let url = url.clone();
            async move { free_request(&http, &url).await }
        })
        .await?
    };

    // Paid.
    let mut limits = AssetLimits::new(
        setup.payments_config.network,
        setup.payments_config.asset.address,
    );
    limits.max_per_payment = Some(Amount::from(PRICE));
    let policy = SpendPolicy::new(vec![limits]);
    let buyers: Arc<Vec<Buyer>> = Arc::new(
        setup
            .buyer_keys
            .iter()
            .enumerate()
            .map(|(index, signer)| Buyer {
                signer: signer.clone(),
                policy: policy.clone(),
                registry: setup.payments_config.registry.clone(),
                http: http.clone(),
                dir: setup.dir.clone(),
                index,
                state: tokio::sync::Mutex::new((0, None)),
            })
            .collect(),
    );
    let before = sample(&http, setup.instances).await?;
    let paid_started = Instant::now();
    let urls: Arc<Vec<String>> = Arc::new(
        (0..setup.instances.len())
            .map(|i| format!("{merchant_url}/paid-{i}"))
            .collect(),
    );
    let paid = {
        let buyers = buyers.clone();
        let urls = urls.clone();
        run_phase(args.buyers, budget(paid_started), move |b, n| {
            let buyers = buyers.clone();
            let urls = urls.clone();
            async move {
                paid_request(&buyers[b], &urls[b % urls.len()], format!("bench-{n}")).await
            }
        })
        .await?
    };
    let paid_elapsed = paid.elapsed;

    // Settlement: every answered payment captured, its capture final.
    let deadline = Instant::now() + Duration::from_secs(120 + 4 * args.block_time * 10);
    let captured = poll_count(paid.ok, deadline, || async {
        db.captured_count(&setup.merchant_id)
            .await
            .step("counting captured payments")
    })
    .await?;
    let settled = paid_started.elapsed();
    let after = sample(&http, setup.instances).await?;
    let _ = stop_merchant.send(());

    let mut baseline_lat = baseline.latencies;
    let mut paid_lat = paid.latencies;
    let baseline_latency_ms = Percentiles::of(&mut baseline_lat);
    let paid_latency_ms = Percentiles::of(&mut paid_lat);
    let added_latency_ms = Percentiles {
        count: paid_latency_ms.count,
        mean: paid_latency_ms.mean - baseline_latency_ms.mean,
        p50: paid_latency_ms.p50 - baseline_latency_ms.p50,
        p95: paid_latency_ms.p95 - baseline_latency_ms.p95,
        p99: paid_latency_ms.p99 - baseline_latency_ms.p99,
        max: paid_latency_ms.max - baseline_latency_ms.max,
    };
    Ok(Phase {
        paid: Some(PaidReport {
            baseline_ok: baseline.ok,
            baseline_rps: baseline.ok as f64 / baseline.elapsed.as_secs_f64().max(1e-9),
            baseline_latency_ms,
            paid_ok: paid.ok,
            paid_failed: paid.failed,
            paid_secs: paid_elapsed.as_secs_f64(),
            paid_rps: paid.ok as f64 / paid_elapsed.as_secs_f64().max(1e-9),
            paid_latency_ms,
            added_latency_ms,
            captured,
            settled_secs: settled.as_secs_f64(),
            settled_per_sec: captured as f64 / settled.as_secs_f64().max(1e-9),
            per_paid_request: PerPaidRequest::default(),
        }),
        facilitator: None,
        ok_per_instance: per_instance(&paid.ok_per_task, setup.instances.len()),
        failures: paid.failures,
        operations: captured,
        before,
        after,
        window: settled,
    })
}
