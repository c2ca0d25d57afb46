//! The facilitator mode: x402 payloads signed before the timed phase, then posted to the
//! operator's `POST /settle` as a merchant's middleware would (Bearer API key, v2 body), then
//! confirmed in the database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::signers::local::PrivateKeySigner;
use x402_escrow_sdk::buyer::unix_now;
use x402_escrow_sdk::facilitator::{SettleResponse, VerifyRequest};
use x402_escrow_sdk::merchant::{PaymentRoute, PaymentsConfig};
use x402_escrow_sdk::random_b256;
use x402_escrow_sdk::schemes::{auth_capture, exact};
use x402_escrow_sdk::wire::PaymentPayload;

use crate::load::{Budget, run_phase};
use crate::report::{FacilitatorReport, PerPaidRequest, Percentiles, scheme_name};
use crate::run::{Phase, Setup, per_instance, poll_count, sample};
use crate::{BenchDatabase, BenchError, BenchScheme, Result, Step};

/// `count` settle bodies of `scheme` for what `config` offers at `route`, payload `n` signed by
/// `payers[n % payers.len()]`; and the seconds the signing took.
pub(crate) fn presign(
    config: &PaymentsConfig,
    route: &PaymentRoute,
    scheme: BenchScheme,
    payers: &[PrivateKeySigner],
    count: u64,
) -> Result<(Vec<String>, f64)> {
    let started = Instant::now();
    let now = unix_now();
    let want = scheme_name(scheme);
    let requirements = config
        .offers(route, now)
        .step("the route's payment requirements")?
        .into_iter()
        .find(|r| r.scheme == want)
        .ok_or_else(|| BenchError::Unexpected(format!("the merchant offers no {want} option")))?;
    let mut bodies = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for n in 0..count {
        let payer = &payers[usize::try_from(n).unwrap_or(0) % payers.len()];
        let payload = match scheme {
            BenchScheme::Exact => PaymentPayload::new(
                requirements.clone(),
                exact::build_payload(&requirements, payer, now, random_b256())
                    .step("signing an exact payload")?,
            ),
            BenchScheme::AuthCapture => PaymentPayload::new(
                requirements.clone(),
                auth_capture::build_payload(
                    &requirements,
                    payer,
                    now,
                    random_b256(),
                    &config.registry,
                )
                .step("signing an auth-capture payload")?,
            ),
        };
        let body = VerifyRequest::new(payload, requirements.clone());
        bodies.push(serde_json::to_string(&body).step("encoding a settle body")?);
    }
    Ok((bodies, started.elapsed().as_secs_f64()))
}

/// Posts one settle body; `Ok` only for `success: true` with a transaction.
pub(crate) async fn settle(
    http: &reqwest::Client,
    url: &str,
    api_key: &str,
    body: String,
) -> std::result::Result<(), String> {
    let response = http
        .post(url)
        .bearer_auth(api_key)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    let answer: SettleResponse = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "HTTP {status}, not a settle response ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    if !answer.success || answer.transaction.is_none() {
        return Err(format!(
            "HTTP {status}: {} ({})",
            answer.error_reason.unwrap_or_default(),
            answer.error_message.unwrap_or_default()
        ));
    }
    Ok(())
}

/// Signs `--requests` payloads, then posts them to `POST /settle` from `--buyers` clients
/// (client `b` to instance `b % instances`), then waits until the database confirms every
/// successful settle.
pub(crate) async fn facilitator_phase<D: BenchDatabase>(
    setup: &Setup<'_>,
    db: &D,
) -> Result<Phase> {
    let args = setup.args;
    let count = args.requests.unwrap_or(1000);
    let mut config = setup.payments_config.clone();
    config.offer_exact = true;
    let (bodies, signing_secs) = presign(
        &config,
        &PaymentRoute::new("$0.01"),
        args.scheme,
        &setup.buyer_keys,
        count,
    )?;
    let bodies = Arc::new(bodies);
    let urls: Arc<Vec<String>> = Arc::new(
        setup
            .instances
            .iter()
            .map(|i| format!("{}/settle", i.process.url()))
            .collect(),
    );
    let http = setup.http.clone();
    let before = sample(&http, setup.instances).await?;
    let started = Instant::now();
    let result = {
        let http = http.clone();
        let api_key = setup.api_key.clone();
        let bodies = bodies.clone();
        let urls = urls.clone();
        run_phase(args.buyers, Budget::Requests(count), move |b, n| {
            let http = http.clone();
            let api_key = api_key.clone();
            let url = urls[b % urls.len()].clone();
            let body = usize::try_from(n).ok().and_then(|n| bodies.get(n)).cloned();
            async move {
                let body = body.ok_or_else(|| format!("no payload {n}"))?;
                settle(&http, &url, &api_key, body).await
            }
        })
        .await?
    };
    // Every successful settle in the database (they answer once final; this is a bound, not a
    // wait in the normal case).
    let deadline = Instant::now() + Duration::from_secs(60);
    let confirmed = poll_count(result.ok, deadline, || {
        confirmed(db, args.scheme, &setup.merchant_id)
    })
    .await?;
    let window = started.elapsed();
    let after = sample(&http, setup.instances).await?;
    let mut latencies = result.latencies;
    Ok(Phase {
        paid: None,
        facilitator: Some(FacilitatorReport {
            scheme: args.scheme,
            requests: count,
            signing_secs,
            ok: result.ok,
            failed: result.failed,
            secs: result.elapsed.as_secs_f64(),
            settles_per_sec: result.ok as f64 / result.elapsed.as_secs_f64().max(1e-9),
            latency_ms: Percentiles::of(&mut latencies),
            confirmed,
            per_settle: PerPaidRequest::default(),
        }),
        ok_per_instance: per_instance(&result.ok_per_task, setup.instances.len()),
        failures: result.failures,
        operations: result.ok,
        before,
        after,
        window,
    })
}

/// Settles the database shows done: the merchant's `authorized` payments (`auth-capture`) or
/// the final `transfer` rows, sent alone or in an `execute` (`exact`).
async fn confirmed<D: BenchDatabase>(db: &D, scheme: BenchScheme, merchant: &str) -> Result<u64> {
    let n = match scheme {
        BenchScheme::AuthCapture => db
            .statuses(merchant)
            .await
            .step("reading the payment statuses")?
            .get("authorized")
            .copied()
            .unwrap_or(0),
        BenchScheme::Exact => db
            .transactions()
            .await
            .step("reading the transactions")?
            .iter()
            .find(|t| t.kind == "transfer")
            .map_or(0, |t| t.final_count + t.merged_final),
    };
    Ok(u64::try_from(n).unwrap_or(0))
}
