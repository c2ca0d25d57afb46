//! The per-signer transaction pipeline (see `operator/DESIGN.md`, "Transaction pipeline").
//!
//! A [`Relayer`] drives one signer key on one chain while it holds the signer's lease in the
//! database. The database owns the nonce and every signed byte:
//!
//! 1. `claim_next_tx` reserves the nonce (`reserved`), fenced by the lease;
//! 2. the relayer estimates gas (+ margin; a reverting estimate is recorded as `reverted` with
//!    the decoded custom error and the nonce goes to a zero-value self-transfer), picks fees,
//!    signs, and stores raw bytes + hash (`record_attempt`, `signed`);
//! 3. broadcasts them (`send_raw_transaction`, then `mark_broadcast`);
//! 4. the monitor ([`Relayer::tick`]) finds receipts (`mined`), waits for the configured depth and
//!    re-checks the block is canonical (`final` / `reverted`), un-mines on reorgs, re-broadcasts
//!    dropped bytes, replaces stuck attempts with ≥ 10% higher fees, and abandons a nonce the
//!    chain used for something else.
//!
//! A crash between any two steps is recovered from the database alone: every pass starts from
//! `txs_in_flight`. "Maybe sent" RPC answers are never failures; receipts of every stored hash of
//! the nonce are looked up first.
//!
//! The engine enqueues rows, calls [`RelayerHandle::wake`], and reacts to
//! [`RelayerHandle::subscribe`] outcomes (or a [`TxObserver`]); the relayer never changes a
//! payment's status. (Batching, `batch.rs`, moves the `pending_tx_id` of payments whose single
//! capture / void rows it merges into a batch row, in the same SQL transaction.) Wiring, in `serve`:
//!
//! ```ignore
//! let relayer = Relayer::from_config(store.clone(), &config, &deployment, signer, instance_id)?;
//! let handle = relayer.handle();
//! let engine = Engine::new(/* … */, handle.notifier());   // wakes the relayer after enqueueing
//! let mut outcomes = handle.subscribe();
//! tokio::spawn(async move {                                // at-least-once: on_tx_outcome is idempotent
//!     while let Ok(o) = outcomes.recv().await { let _ = engine.on_tx_outcome(o.chain_tx_id).await; }
//! });
//! tokio::spawn(relayer.run(shutdown_signal));              // /readyz reads handle.health()
//! ```
//!
//! A lagging subscriber (`RecvError::Lagged`) should re-scan: the relayer also re-announces, when
//! it takes the lease, every settled row a payment still points at.

mod batch;
mod errors;
mod execute;
mod fees;
mod handle;
mod lanes;
mod lease;
mod monitor;
mod push;
pub(crate) mod revert;
mod sender;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alloy::network::Ethereum;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use tokio::sync::{Notify, broadcast, watch};
use tracing::Instrument;

pub use batch::BatchOptions;
pub use errors::{CrashPoint, RelayerError, RpcUrlError};
pub use fees::Fees;
pub use handle::{
    RelayerHandle, RelayerHealth, RelayerMetrics, RelayerMetricsSink, RelayerOptions, TickReport,
    TxObserver, TxOutcome,
};
pub use lanes::LaneShare;
pub use revert::decode_revert;

pub(crate) use execute::delegated_to;

use crate::config::Config;
use crate::store::{ChainTx, Lease, Store, TxStatus};

/// How long one JSON-RPC request may take when the configuration says nothing
/// (`chain.rpc_timeout_secs`).
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// A provider without alloy's recommended fillers (no cached nonce manager, no gas filler):
/// the relayer sets nonce, gas and fees itself and sends raw signed bytes. Each request gives up
/// after [`DEFAULT_RPC_TIMEOUT`] (see [`http_provider_with_timeout`]).
pub fn http_provider(url: alloy::transports::http::reqwest::Url) -> DynProvider {
    http_provider_with_timeout(url, DEFAULT_RPC_TIMEOUT)
}

/// [`http_provider`] whose requests give up after `timeout`. Without one, a request on a
/// connection that went silent (a network partition, a load balancer or NAT that dropped its
/// state) waits forever, and with it the relayer pass or the indexer that sent it: the signer
/// lease runs out and nothing is sent again until the process restarts.
pub fn http_provider_with_timeout(
    url: alloy::transports::http::reqwest::Url,
    timeout: Duration,
) -> DynProvider {
    use alloy::transports::http::reqwest;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build();
    let builder = ProviderBuilder::<_, _, Ethereum>::default();
    match client {
        Ok(client) => builder
            .connect_client(alloy::rpc::client::RpcClient::new_http_with_client(
                client, url,
            ))
            .erased(),
        Err(e) => {
            tracing::error!(error = %e, "cannot build an HTTP client with a timeout; RPC requests will not time out");
            builder.connect_http(url).erased()
        }
    }
}

/// Drives one signer key on one chain (see the module docs).
pub struct Relayer {
    store: Store,
    provider: DynProvider,
    signer: PrivateKeySigner,
    owner: String,
    opts: RelayerOptions,
    lease: Option<Lease>,
    notify: Arc<Notify>,
    outcomes: broadcast::Sender<TxOutcome>,
    health_tx: watch::Sender<RelayerHealth>,
    health_rx: watch::Receiver<RelayerHealth>,
    metrics: Arc<RelayerMetrics>,
    observer: Option<Arc<dyn TxObserver>>,
    sink: Option<Arc<dyn RelayerMetricsSink>>,
    crash_at: Option<CrashPoint>,
    crashed: bool,
    chain_checked: bool,
    batch: BatchOptions,
    /// Whether the signer's account delegates to the batch executor (see `execute.rs`).
    delegation: execute::Delegation,
    /// When the next group of held single rows falls due for batching (store clock, unix ms).
    batch_due: Option<i64>,
    /// The batch formed while a transaction was in flight would revert: no more batches are
    /// formed until nothing is in flight (see `batch.rs`).
    pipeline_paused: bool,
    /// Since when the signer has had a transaction in flight (first seen unmined by a pass).
    flight_started: Option<std::time::Instant>,
    /// The last flight took at least [`batch::SLOW_FLIGHT`] (slow blocks): the next batch is
    /// formed when the receipt is in, not during the flight (see `batch.rs`).
    slow_flights: bool,
    /// The chain's block gas limit, read once: the most a batch row's stored gas limit may be.
    block_gas_limit: Option<u64>,
    /// The last fee suggestion and when it was fetched (see [`FEE_CACHE_TTL`]).
    fee_cache: Option<(std::time::Instant, Fees)>,
    /// Chain reads shared by every row of one monitoring round (see [`PassView`]).
    view: PassView,
    /// Sends whose receipts the node pushes (see `push.rs`).
    push: push::Push,
    /// The last pass left rows that only polling will settle (sent without push): look again
    /// at once rather than a poll interval later.
    poll_soon: bool,
    /// The instance's share of the signer lanes (see `lanes.rs`); `None`: take the lease
    /// whenever it is free.
    share: Option<Arc<LaneShare>>,
}

/// How long a fee suggestion is reused for new transactions: one `eth_feeHistory` round trip
/// per second instead of one per transaction. Well within what `2 × base fee + tip` absorbs
/// (six blocks of maximal base-fee growth); replacements always ask afresh.
pub const FEE_CACHE_TTL: Duration = Duration::from_secs(1);

/// Reads one monitoring round shares across its rows: the head, the signer's nonce at the
/// confirmed block (read once, before any receipt of the round, which keeps "nonce first, then
/// receipts") and canonical block hashes by number.
#[derive(Debug, Default)]
pub(crate) struct PassView {
    head: Option<u64>,
    confirmed_nonce: Option<u64>,
    blocks: std::collections::HashMap<u64, Option<alloy::primitives::B256>>,
}

impl Relayer {
    /// A relayer for `signer`, identified as `owner` in the lease (the instance id). `provider`
    /// should come from [`http_provider`] (no fillers).
    pub fn new(
        store: Store,
        provider: DynProvider,
        signer: PrivateKeySigner,
        owner: impl Into<String>,
        opts: RelayerOptions,
    ) -> Relayer {
        let (outcomes, _) = broadcast::channel(1024);
        let (health_tx, health_rx) = watch::channel(RelayerHealth::default());
        let push = push::Push::new(opts.receipts, opts.bump_after);
        Relayer {
            store,
            provider,
            signer,
            owner: owner.into(),
            opts,
            lease: None,
            notify: Arc::new(Notify::new()),
            outcomes,
            health_tx,
            health_rx,
            metrics: Arc::new(RelayerMetrics::default()),
            observer: None,
            sink: None,
            crash_at: None,
            crashed: false,
            chain_checked: false,
            batch: BatchOptions::DISABLED,
            delegation: execute::Delegation::Unknown,
            batch_due: None,
            pipeline_paused: false,
            flight_started: None,
            slow_flights: false,
            block_gas_limit: None,
            fee_cache: None,
            view: PassView::default(),
            push,
            poll_soon: false,
            share: None,
        }
    }

    /// Take this lane's lease only within the instance's fair `share` of the lanes, and give
    /// it back when the instance holds more than its share (see `lanes.rs`).
    pub fn with_share(mut self, share: Arc<LaneShare>) -> Relayer {
        self.share = Some(share);
        self
    }

    /// Also report outcomes to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn TxObserver>) -> Relayer {
        self.observer = Some(observer);
        self
    }

    /// Feed `sink` (latency, confirmations, gas) as rows settle.
    pub fn with_metrics_sink(mut self, sink: Arc<dyn RelayerMetricsSink>) -> Relayer {
        self.sink = Some(sink);
        self
    }

    /// Wake on `notify` (when the engine was built first with its own `Arc<Notify>`).
    pub fn with_notify(mut self, notify: Arc<Notify>) -> Relayer {
        self.notify = notify;
        self
    }

    /// A relayer from the operator configuration: provider without fillers on
    /// `chain.rpc_url`, options from `[chain]` and `[relayer]`, batching from `[batch]` and
    /// `deployment` (its escrow and batch executor), lease owner `owner` (the instance id).
    pub fn from_config(
        store: Store,
        config: &Config,
        deployment: &x402_escrow_bindings::Deployment,
        signer: PrivateKeySigner,
        owner: impl Into<String>,
    ) -> Result<Relayer, RelayerError> {
        let url = config.chain.rpc_url.parse().map_err(RelayerError::Config)?;
        Ok(Relayer::new(
            store,
            http_provider_with_timeout(url, config.chain.rpc_timeout()),
            signer,
            owner,
            RelayerOptions::from_config(config),
        )
        .with_batching(BatchOptions::from_config(config, deployment)))
    }

    /// Test hook: stop dead (as if killed) the first time `point` is reached.
    #[doc(hidden)]
    pub fn with_crash_point(mut self, point: CrashPoint) -> Relayer {
        self.crash_at = Some(point);
        self
    }

    /// The handle the engine and the API keep.
    pub fn handle(&self) -> RelayerHandle {
        RelayerHandle {
            notify: self.notify.clone(),
            outcomes: self.outcomes.clone(),
            health: self.health_rx.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Runs until `shutdown` resolves (then releases the lease). Never returns early on RPC or
    /// database errors: it backs off exponentially (up to `max_backoff`) and reports them in
    /// [`RelayerHealth`].
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) {
        let span = tracing::info_span!("relayer", signer = %self.address(), chain_id = self.opts.chain_id, owner = %self.owner);
        async move {
            tokio::pin!(shutdown);
            let mut backoff = self.opts.poll_interval.max(Duration::from_millis(100));
            loop {
                let wait = match self.tick().await {
                    Ok(report) => {
                        backoff = self.opts.poll_interval.max(Duration::from_millis(100));
                        if report.lease_held && report.claimed > 0 && self.poll_soon {
                            // Just broadcast without push: look for the receipts at once (an
                            // automining node has them already) instead of a poll interval
                            // later. Pushed receipts wake the loop themselves.
                            Duration::ZERO
                        } else if report.lease_held {
                            // Come back when held rows fall due for batching.
                            let due = self.batch_due.map(|at| {
                                let ms = at.saturating_sub(self.store.now_ms()).max(1);
                                Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
                            });
                            due.map_or(self.opts.poll_interval, |d| {
                                d.min(self.opts.poll_interval)
                            })
                        } else {
                            // Not ours: look again well within a lease length.
                            self.opts.poll_interval.min(self.opts.lease_ttl / 4)
                        }
                    }
                    Err(RelayerError::InjectedCrash(point)) => {
                        tracing::warn!(?point, "injected crash: relayer stops");
                        return;
                    }
                    Err(e) => {
                        let wait = backoff;
                        backoff = (backoff * 2).min(self.opts.max_backoff);
                        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "relayer pass failed");
                        // Keep the lease fresh while waiting, if it is still ours.
                        wait.min(self.opts.lease_ttl / 3)
                    }
                };
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = self.notify.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            self.release().await;
        }
        .instrument(span)
        .await
    }

    /// Gives the lease up (clean shutdown).
    pub async fn release(&mut self) {
        if self.lease.is_some() {
            self.forget_lease();
            match self
                .store
                .release_lease(self.opts.chain_id, self.address(), &self.owner)
                .await
            {
                Ok(_) => tracing::info!("signer lease released"),
                Err(e) => tracing::warn!(error = %e, "releasing the signer lease failed"),
            }
        }
        self.health_tx.send_modify(|h| h.lease_held = false);
    }

    /// One idempotent pass: hold the lease (or stop), resume and monitor every in-flight row,
    /// then claim and send new ones.
    pub async fn tick(&mut self) -> Result<TickReport, RelayerError> {
        if self.crashed {
            return Err(RelayerError::InjectedCrash(
                self.crash_at.unwrap_or(CrashPoint::AfterClaim),
            ));
        }
        let result = self.pass().await;
        let now = self.store.now_ms();
        match &result {
            Ok(report) => self.health_tx.send_modify(|h| {
                h.lease_held = report.lease_held;
                h.rpc_ok = true;
                h.last_error = None;
                h.consecutive_failures = 0;
                h.last_tick_at_ms = Some(now);
                h.in_flight = report.in_flight;
            }),
            Err(e) => {
                RelayerMetrics::inc(&self.metrics.errors);
                if let RelayerError::LeaseLost { .. } = e {
                    tracing::warn!("signer lease lost: sending stopped");
                    self.forget_lease();
                }
                let lease_held = self.lease.is_some();
                let rpc = e.is_rpc();
                let msg = e.to_string();
                self.health_tx.send_modify(|h| {
                    h.lease_held = lease_held;
                    if rpc {
                        h.rpc_ok = false;
                    }
                    h.last_error = Some(msg);
                    h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                    h.last_tick_at_ms = Some(now);
                });
            }
        }
        if let Err(RelayerError::InjectedCrash(_)) = &result {
            self.crashed = true;
        }
        result
    }

    async fn pass(&mut self) -> Result<TickReport, RelayerError> {
        if !self.chain_checked {
            let node = self.provider.get_chain_id().await?;
            if node != self.opts.chain_id {
                return Err(RelayerError::ChainIdMismatch {
                    configured: self.opts.chain_id,
                    node,
                });
            }
            self.chain_checked = true;
        }
        if !self.hold_lease().await? {
            return Ok(TickReport::default());
        }
        let mut report = TickReport {
            lease_held: true,
            ..TickReport::default()
        };
        self.fill_gaps().await?;
        // Resume / monitor: everything with a nonce that is not settled, by nonce. A pass may
        // write new reserved rows (nonce fills), so loop until a pass adds nothing new.
        let mut seen = std::collections::HashSet::new();
        // The signer's rows not mined yet after the last round (batching waits for company
        // only while there are some).
        let mut unmined;
        loop {
            let rows = self
                .store
                .txs_in_flight(self.opts.chain_id, self.address())
                .await?;
            unmined = rows
                .iter()
                .filter(|r| {
                    matches!(
                        r.status,
                        TxStatus::Reserved | TxStatus::Signed | TxStatus::Broadcast
                    )
                })
                .count();
            self.push.collect();
            self.push.retain(&rows.iter().map(|r| r.id).collect());
            let fresh: Vec<ChainTx> = rows.into_iter().filter(|r| seen.insert(r.id)).collect();
            if fresh.is_empty() {
                break;
            }
            self.view = PassView::default();
            // Pushed receipts first, all in one write; rows whose send is still outstanding
            // are the push task's until it answers.
            for row in self.settle_pushed(fresh).await? {
                if !self.push.is_sending(row.id) {
                    self.drive_row(row).await?;
                }
            }
        }
        self.time_flight(unmined);
        // New work: first merge due groups of single rows into batches; younger ones stay
        // queued, waiting for company.
        let hold = self.batch_queued(unmined).await?;
        // Up to `max_claims_per_tick` rows claimed in one write, then sent as a group (see
        // `send_new`).
        self.check_lease().await?;
        let claimed = match self.delegation {
            // A delegated account may have only one transaction in a geth-derived node's pool:
            // the next one (carrying whatever queued meanwhile) goes once this one is mined.
            execute::Delegation::Active if unmined > 0 => Vec::new(),
            // Only the delegation goes out until it is mined (see `execute::Delegation`).
            execute::Delegation::Pending(id) => self
                .store
                .claim_tx(self.opts.chain_id, self.address(), &self.owner, id)
                .await?
                .into_iter()
                .collect(),
            delegation => {
                // Delegated, with nothing in flight: one, or it would be the second in the
                // pool (two `execute` rows are formed when more calls are queued than one
                // carries).
                let limit = if delegation == execute::Delegation::Active {
                    1
                } else {
                    self.opts.max_claims_per_tick
                };
                self.store
                    .claim_next_txs_holding(
                        self.opts.chain_id,
                        self.address(),
                        &self.owner,
                        hold,
                        limit,
                    )
                    .await?
            }
        };
        for row in &claimed {
            RelayerMetrics::inc(&self.metrics.claimed);
            report.claimed += 1;
            tracing::info!(chain_tx = %row.id, payment = ?row.payment_id, nonce = ?row.nonce, kind = %row.kind, "claimed");
        }
        if !claimed.is_empty() {
            self.crash_point(CrashPoint::AfterClaim)?;
            self.send_new(&claimed).await?;
        }
        // Fills written while sending new rows, and rows of the group left `reserved` (their
        // estimate must wait for earlier rows, see `send_new`); driving them may write more
        // fills, so loop until nothing new is reserved.
        let mut driven = std::collections::HashSet::new();
        loop {
            let rows = self
                .store
                .txs_in_flight(self.opts.chain_id, self.address())
                .await?;
            let fresh: Vec<ChainTx> = rows
                .into_iter()
                .filter(|r| r.status == TxStatus::Reserved && driven.insert(r.id))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for row in fresh {
                self.drive_row(row).await?;
            }
        }
        let in_flight = self
            .store
            .txs_in_flight(self.opts.chain_id, self.address())
            .await?;
        self.poll_soon = in_flight.iter().any(|r| {
            matches!(r.status, TxStatus::Signed | TxStatus::Broadcast)
                && !self.push.is_sending(r.id)
        });
        report.in_flight = in_flight.len();
        Ok(report)
    }

    async fn drive_row(&mut self, row: ChainTx) -> Result<(), RelayerError> {
        let span = tracing::info_span!("chain_tx", id = %row.id, payment = ?row.payment_id, nonce = ?row.nonce, status = %row.status);
        self.drive(row).instrument(span).await
    }

    fn crash_point(&mut self, point: CrashPoint) -> Result<(), RelayerError> {
        if self.crash_at == Some(point) {
            return Err(RelayerError::InjectedCrash(point));
        }
        Ok(())
    }

    /// Announces a settled row to subscribers and the observer.
    fn announce(&self, tx: &ChainTx) {
        match tx.status {
            TxStatus::Final => RelayerMetrics::inc(&self.metrics.finalized),
            TxStatus::Reverted => RelayerMetrics::inc(&self.metrics.reverted),
            TxStatus::Abandoned => RelayerMetrics::inc(&self.metrics.abandoned),
            _ => {}
        }
        if tx.status != TxStatus::Abandoned {
            let latency = self.store.now_ms().saturating_sub(tx.created_at);
            self.metrics
                .final_latency_ms_sum
                .fetch_add(u64::try_from(latency).unwrap_or(0), Ordering::Relaxed);
            RelayerMetrics::inc(&self.metrics.final_latency_count);
        }
        tracing::info!(chain_tx = %tx.id, payment = ?tx.payment_id, status = %tx.status, reason = ?tx.revert_reason, "outcome");
        // No receivers is fine.
        let _ = self.outcomes.send(TxOutcome {
            chain_tx_id: tx.id,
            payment_id: tx.payment_id,
            status: tx.status,
        });
        if let Some(observer) = &self.observer {
            observer.on_outcome(tx);
        }
    }
}
