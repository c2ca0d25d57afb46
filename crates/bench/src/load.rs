//! The load phases: concurrent buyers (or plain clients) against the merchant.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::keccak256;
use alloy::signers::local::PrivateKeySigner;

use x402_escrow_sdk::buyer::{BuyerClient, SpendLedger, SpendPolicy};
use x402_escrow_sdk::escrows::EscrowRegistry;

use crate::{BenchError, LEDGER_ROTATE, Result, Step};

/// Buyer `i`'s key: deterministic, so runs are reproducible.
pub(crate) fn buyer_key(i: usize) -> Result<PrivateKeySigner> {
    PrivateKeySigner::from_bytes(&keccak256(format!("x402-escrow bench buyer {i}")))
        .step("buyer key")
}

// ----------------------------------------------------------------------------- load phases

/// What the buyers do: the same total work split over `buyers` tasks.
#[derive(Clone, Copy)]
pub(crate) enum Budget {
    Requests(u64),
    Until(Instant),
}

pub(crate) struct PhaseResult {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) failures: Vec<String>,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) elapsed: Duration,
    /// Successful calls of each task (buyer / client), by index.
    pub(crate) ok_per_task: Vec<u64>,
}

/// Runs `one(buyer, n)` from `buyers` tasks until the budget is spent.
pub(crate) async fn run_phase<F, Fut>(buyers: usize, budget: Budget, one: F) -> Result<PhaseResult>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), String>> + Send,
{
    let one = Arc::new(one);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for b in 0..buyers {
        let one = one.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failures = Vec::new();
            let mut failed = 0u64;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                match budget {
                    Budget::Requests(total) if n >= total => break,
                    Budget::Until(deadline) if Instant::now() >= deadline => break,
                    _ => {}
                }
                let t = Instant::now();
                match one(b, n).await {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(e) => {
                        failed += 1;
                        if failures.len() < 5 {
                            failures.push(e);
                        }
                    }
                }
            }
            (lat, failed, failures)
        }));
    }
    let mut result = PhaseResult {
        ok: 0,
        failed: 0,
        failures: Vec::new(),
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
        ok_per_task: Vec::with_capacity(buyers),
    };
    for task in tasks {
        let (lat, failed, failures) = task.await.step("a buyer task panicked")?;
        result.ok += lat.len() as u64;
        result.ok_per_task.push(lat.len() as u64);
        result.latencies.extend(lat);
        result.failed += failed;
        for f in failures {
            if result.failures.len() < 5 {
                result.failures.push(f);
            }
        }
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// One buyer: its key, policy and a ledger it replaces every [`LEDGER_ROTATE`] payments.
pub(crate) struct Buyer {
    pub(crate) signer: PrivateKeySigner,
    pub(crate) policy: SpendPolicy,
    pub(crate) registry: EscrowRegistry,
    pub(crate) http: reqwest::Client,
    pub(crate) dir: PathBuf,
    pub(crate) index: usize,
    pub(crate) state: tokio::sync::Mutex<(u64, Option<BuyerClient>)>,
}

impl Buyer {
    async fn client(&self) -> Result<BuyerClient> {
        let mut state = self.state.lock().await;
        let (used, client) = &mut *state;
        if client.is_none() || *used % LEDGER_ROTATE == 0 {
            let path = self.dir.join(format!(
                "buyer-{}-ledger-{}.json",
                self.index,
                *used / LEDGER_ROTATE
            ));
            let ledger = SpendLedger::open(&path).step("spend ledger")?;
            *client = Some(
                BuyerClient::new(
                    self.http.clone(),
                    self.signer.clone(),
                    self.policy.clone(),
                    ledger,
                )
                .with_registry(self.registry.clone()),
            );
        }
        *used += 1;
        client
            .clone()
            .ok_or_else(|| BenchError::Unexpected("no buyer client".into()))
    }
}

pub(crate) async fn paid_request(
    buyer: &Buyer,
    url: &str,
    request_id: String,
) -> std::result::Result<(), String> {
    let client = buyer.client().await.map_err(|e| e.to_string())?;
    let request = client
        .http()
        .get(url)
        .header("x-request-id", request_id)
        .build()
        .map_err(|e| e.to_string())?;
    let paid = client
        .send(request)
        .await
        .map_err(|e| format!("buyer: {e}"))?;
    let status = paid.response.status();
    let _ = paid.response.bytes().await;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}"));
    }
    if paid.payment.is_none() {
        return Err("answered without asking for payment".into());
    }
    Ok(())
}

pub(crate) async fn free_request(
    http: &reqwest::Client,
    url: &str,
) -> std::result::Result<(), String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let _ = response.bytes().await;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}"));
    }
    Ok(())
}
