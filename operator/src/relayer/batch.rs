//! Batching at the claim step: queued single escrow calls are merged into one `execute` row of
//! the signer's EIP-7702 executor (`execute.rs`), or, without one, queued single captures (voids)
//! of the same escrow (ours) into one `captureBatch` (`voidBatch`) row, before the relayer claims
//! new work.
//!
//! A single `capture` / `void` row of a payment waits up to `max_wait` (from its creation) for
//! company: while it is younger, the claim step leaves it queued. A group of such rows (same kind,
//! same escrow) is *due* once it holds `max_size` rows or its oldest row has waited `max_wait`;
//! due groups are merged, `max_size` rows per batch, by [`Store::merge_batch`] (one SQL
//! transaction: batch row written, members abandoned, payments re-pointed). A group of one is
//! simply claimed as it is. The batch row is then claimed, signed and sent like any other row; its
//! outcome is fanned out to the members by the engine.
//!
//! Before merging, the batch call is simulated (`eth_call` from the signer). The escrow's batch
//! calls are all or nothing, so when the simulation reverts, each member's own call is
//! simulated and the members that would revert are left out: they are claimed at once as single
//! rows (and fail alone, with their own decoded error, at the relayer's gas estimate), while the
//! others still go out together. A batch that reverts anyway (the chain moved between simulation
//! and inclusion) is handled by the engine, which re-sends its members one by one.
//!
//! Only the signer's lease holder batches (this runs inside its pass), so merging never races a
//! claim of this instance; a row claimed by anyone else makes the merge fail and roll back.
//!
//! [`Store::merge_batch`]: crate::store::Store::merge_batch

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{SolCall, SolError};
use serde_json::json;
use x402_escrow_bindings::contracts::OperatorBatchExecutor as Executor;
use x402_escrow_bindings::contracts::auth_capture_escrow::AuthCaptureEscrow as Escrow;
use x402_escrow_bindings::{Deployment, EscrowVersion};

use super::execute::{
    Delegation, delegate_key, delegate_row, delegated_to, execute_row, member_json,
};
use super::revert::revert_reason_of;
use super::{Relayer, RelayerError};
use crate::config::Config;
use crate::store::{BatchKinds, ChainTx, Hold, NewChainTx, TxKind};

/// Batching knobs (from `[batch]` and the deployment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOptions {
    /// The most payments per batch transaction; 1 (or 0) disables batching.
    pub max_size: usize,
    /// How long a ready row waits for company: captures and voids for the escrow's batch
    /// calls; with the executor, any escrow call while an earlier transaction of the signer is
    /// still in flight (with nothing in flight, rows go at once).
    pub max_wait: Duration,
    /// The `OperatorBatchExecutor` the signer's account delegates to (EIP-7702): with it, every
    /// escrow call may be batched into one `execute` (see `execute.rs`).
    pub executor: Option<Address>,
    /// The escrows that have `captureBatch` / `voidBatch` (ours). Without an active executor
    /// only their captures and voids are merged; any other escrow (the canonical one has no
    /// batch calls) never gets them.
    pub batch_escrows: Vec<Address>,
}

impl BatchOptions {
    /// No batching: every row is claimed as soon as it is queued.
    pub const DISABLED: BatchOptions = BatchOptions {
        max_size: 1,
        max_wait: Duration::ZERO,
        executor: None,
        batch_escrows: Vec::new(),
    };

    /// From `[batch]` and the deployment in use: the escrow (`[chain.contracts] escrow` wins)
    /// has the batch calls when its record says so (`batchCalls`: ours; the canonical escrows
    /// have none) and it takes the v1.0 fee (`captureBatch` carries `feeBps`: a v1.1 capture
    /// never joins one); the executor is `[batch] executor`, else the deployment's, unless
    /// `[batch] use_executor = false`.
    pub fn from_config(config: &Config, deployment: &Deployment) -> BatchOptions {
        let executor = config
            .batch
            .use_executor
            .then(|| config.batch.executor.or(deployment.batch_executor))
            .flatten();
        BatchOptions {
            max_size: config.batch.max_size,
            max_wait: Duration::from_millis(config.batch.max_wait_ms),
            executor,
            batch_escrows: (deployment.batch_calls && deployment.version == EscrowVersion::V1_0)
                .then(|| {
                    config
                        .chain
                        .contracts
                        .escrow
                        .unwrap_or(deployment.auth_capture_escrow)
                })
                .into_iter()
                .collect(),
        }
    }

    /// Whether rows are batched at all.
    pub fn enabled(&self) -> bool {
        self.max_size > 1
    }
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions::DISABLED
    }
}

/// How many queued rows one pass looks at for batching.
const SCAN: u32 = 2_000;

/// A flight (a transaction of the signer sent until its receipt is in) at least this long means
/// the chain mines on an interval rather than on demand: the next `execute` is then formed when
/// the receipt is in, carrying everything queued during the flight, instead of during it (see
/// [`Relayer::batch_execute`]). Automining anvil answers in milliseconds; the slowest chain
/// this still forms during the flight for has blocks faster than this.
pub(super) const SLOW_FLIGHT: Duration = Duration::from_millis(400);

/// What [`Relayer::merge_chunk`] did with a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// Merged (or sent alone where it had to be), or a race left it for the next pass.
    Done,
    /// Formed during a flight, it would revert: left queued until the flight ends.
    Paused,
    /// Its simulated gas limit is above the block gas limit: to be split.
    TooBig,
}

/// The member of an `executeAll` simulation that reverted without revert data, if that is what
/// `e` says (`CallReverted(index, "")`).
fn member_out_of_gas(e: &alloy::transports::TransportError) -> Option<usize> {
    let data = super::revert::revert_data_of(e)?;
    let error = Executor::CallReverted::abi_decode(&data).ok()?;
    if !error.revertData.is_empty() {
        return None;
    }
    usize::try_from(error.index).ok()
}

/// One member's part of a batch call.
enum Part {
    Capture(Escrow::CaptureRequest),
    Void(Escrow::PaymentInfo),
}

/// Decodes a single row's call (`capture(…)` / `void(…)`); `None` for anything else.
fn part_of(row: &ChainTx) -> Option<Part> {
    match row.kind {
        TxKind::Capture => {
            let call = Escrow::captureCall::abi_decode(&row.calldata).ok()?;
            Some(Part::Capture(Escrow::CaptureRequest {
                paymentInfo: call.paymentInfo,
                amount: call.amount,
                feeBps: call.feeBps,
                feeReceiver: call.feeReceiver,
            }))
        }
        TxKind::Void => {
            let call = Escrow::voidCall::abi_decode(&row.calldata).ok()?;
            Some(Part::Void(call.paymentInfo))
        }
        _ => None,
    }
}

/// The batch row for `rows` (all of one kind and escrow, each decodable), or `None` if any is
/// not a single capture / void call.
pub(super) fn batch_row(chain_id: u64, signer: Address, rows: &[ChainTx]) -> Option<NewChainTx> {
    let first = rows.first()?;
    let mut captures = Vec::new();
    let mut voids = Vec::new();
    let mut members = Vec::new();
    for row in rows {
        if row.kind != first.kind || row.to != first.to {
            return None;
        }
        match part_of(row)? {
            Part::Capture(c) => captures.push(c),
            Part::Void(v) => voids.push(v),
        }
        members.push(member_json(row, false));
    }
    let (kind, call, calldata) = match first.kind {
        TxKind::Capture => (
            TxKind::CaptureBatch,
            "captureBatch",
            Escrow::captureBatchCall { requests: captures }.abi_encode(),
        ),
        TxKind::Void => (
            TxKind::VoidBatch,
            "voidBatch",
            Escrow::voidBatchCall {
                paymentInfos: voids,
            }
            .abi_encode(),
        ),
        _ => return None,
    };
    Some(NewChainTx {
        chain_id,
        signer,
        kind,
        payment_id: None,
        request: json!({ "call": call, "members": members }),
        to: first.to,
        calldata: Bytes::from(calldata),
        value: U256::ZERO,
        gas_limit: None,
    })
}

/// The gas limit a call needs, from the gas a run of it used: a third more, for what the gas
/// used leaves out. Storage refunds are subtracted from it after the call, but the gas must be
/// there while it runs (at most a fifth of the gas used, EIP-3529: +25 %), and each nested
/// call keeps back 1/64 of what is left (EIP-150: ~6 % over the executor → escrow → collector
/// → token → signature-wallet chain). Only the gas used is paid; the relayer's margin comes on
/// top, and the block gas limit caps the sum ([`Relayer::within_block`]).
fn limit_from_gas_used(gas_used: u64) -> u64 {
    gas_used.saturating_add(gas_used / 3)
}

/// What a simulated call says.
enum Simulated {
    /// It would succeed, using at most this much gas (`None`: not measured).
    Ok(Option<u64>),
    /// It would revert (the decoded reason).
    Reverts(String),
    /// An `executeAll` would revert because member `index` reverted without revert data: out of
    /// gas, most likely, when the whole batch met the gas cap of the simulation (a node caps a
    /// call at the block gas limit) — or a member that reverts so on its own.
    MemberOutOfGas {
        /// The member's position.
        index: usize,
        /// The decoded reason, as for [`Simulated::Reverts`].
        reason: String,
    },
    /// The node did not answer; assume it would succeed (the gas estimate checks again).
    Unknown,
}

impl Relayer {
    /// `eth_call` of `calldata` to `to` from the signer.
    async fn simulate(&self, to: Address, calldata: &Bytes) -> Simulated {
        let request = self.request_to(to, calldata);
        match self.provider.call(request).await {
            Ok(_) => Simulated::Ok(None),
            Err(e) => Self::simulation_failed(e),
        }
    }

    /// A simulation of `calldata` to `to` from the signer that also tells the gas limit the
    /// call needs (what a batch row is then signed with, see [`Relayer::viable`]).
    ///
    /// `eth_createAccessList` runs the call once or twice and reports the gas it used;
    /// `eth_estimateGas` searches for the lowest limit that passes, running a batch of tens of
    /// calls some ten times (44 ms a batch on anvil at 64 buyers, against a few for the call
    /// itself). The limit is the gas used plus a third ([`limit_from_gas_used`]); a node that
    /// does not answer `eth_createAccessList` is asked for an estimate.
    async fn simulate_with_gas(&self, to: Address, calldata: &Bytes) -> Simulated {
        let request = self.request_to(to, calldata);
        match self.provider.create_access_list(&request).await {
            Ok(result) => match result.error {
                None => Simulated::Ok(Some(limit_from_gas_used(
                    u64::try_from(result.gas_used).unwrap_or(u64::MAX),
                ))),
                Some(error) => Simulated::Reverts(error),
            },
            Err(e) => match revert_reason_of(&e) {
                Some(reason) => match member_out_of_gas(&e) {
                    Some(index) => Simulated::MemberOutOfGas { index, reason },
                    None => Simulated::Reverts(reason),
                },
                None => match self.provider.estimate_gas(request).await {
                    Ok(gas) => Simulated::Ok(Some(gas)),
                    Err(e) => Self::simulation_failed(e),
                },
            },
        }
    }

    /// A call of `calldata` to `to` from the signer.
    fn request_to(&self, to: Address, calldata: &Bytes) -> TransactionRequest {
        TransactionRequest::default()
            .with_from(self.address())
            .with_to(to)
            .with_input(calldata.clone())
    }

    /// What a failed simulation says: a revert (decoded), or no answer.
    fn simulation_failed(e: alloy::transports::TransportError) -> Simulated {
        match revert_reason_of(&e) {
            Some(reason) => Simulated::Reverts(reason),
            None => {
                tracing::debug!(error = %e, "batch simulation failed");
                Simulated::Unknown
            }
        }
    }

    /// Splits `rows` (one would-be batch) into those that can go together and those whose own
    /// call would revert, with the gas the whole batch needs when it was measured. Only when
    /// the whole batch's simulation reverts are members simulated one by one.
    ///
    /// The batch is simulated by [`Relayer::simulate_with_gas`], whose gas limit the batch row
    /// is then signed with, so the claim step does not estimate it again (that estimate sat
    /// between one mined batch and the next: 44 of every 106 ms at 64 buyers). The simulation
    /// may run while the previous transaction is in flight, on a state that transaction then
    /// changes: calls of one payment never share a batch or overlap (one action in flight per
    /// payment), the headroom absorbs the rest, and a member that runs out of gas anyway is
    /// sent again alone (`engine/batch.rs`), never failed.
    /// With `whole_only`, a batch that would revert is not looked into: every row comes back
    /// as would-revert.
    ///
    /// `None`: the batch is too big — it ran out of gas in company (a member reverted without
    /// revert data in the batch and passes alone), so it is to be split rather than sent.
    async fn viable(
        &self,
        rows: &[ChainTx],
        to: Address,
        simulation: &Bytes,
        whole_only: bool,
    ) -> Option<(Vec<ChainTx>, Vec<ChainTx>, Option<u64>)> {
        let reason = match self.simulate_with_gas(to, simulation).await {
            Simulated::Ok(gas) => return Some((rows.to_vec(), Vec::new(), gas)),
            Simulated::Unknown => return Some((rows.to_vec(), Vec::new(), None)),
            Simulated::MemberOutOfGas { index, reason } => {
                // Halves of at least two each; a member that reverts so alone is not it.
                if rows.len() >= 4
                    && let Some(row) = rows.get(index)
                    && !matches!(
                        self.simulate(row.to, &row.calldata).await,
                        Simulated::Reverts(_) | Simulated::MemberOutOfGas { .. }
                    )
                {
                    return None;
                }
                reason
            }
            Simulated::Reverts(reason) => reason,
        };
        if whole_only {
            return Some((Vec::new(), rows.to_vec(), None));
        }
        tracing::info!(%reason, members = rows.len(), "batch would revert: checking its members one by one");
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for row in rows {
            match self.simulate(row.to, &row.calldata).await {
                Simulated::Reverts(reason) | Simulated::MemberOutOfGas { reason, .. } => {
                    tracing::info!(chain_tx = %row.id, payment = ?row.payment_id, %reason, "left out of the batch: sent alone");
                    bad.push(row.clone());
                }
                Simulated::Ok(_) | Simulated::Unknown => good.push(row.clone()),
            }
        }
        // The rebuilt batch is estimated when it is claimed.
        Some((good, bad, None))
    }

    /// Batching from now on (see the module docs); [`BatchOptions::DISABLED`] by default.
    pub fn with_batching(mut self, batch: BatchOptions) -> Relayer {
        self.batch = batch;
        self
    }

    /// Merges due groups of queued single rows into batch rows: every escrow call into
    /// `execute` rows once the signer delegates to the executor (see `execute.rs`), else
    /// captures / voids of our escrows into `captureBatch` / `voidBatch`. Returns which single
    /// rows the claim step holds back (those waiting for company), and notes in
    /// `self.batch_due` when the next group falls due. `unmined` is how many of the signer's
    /// transactions are not mined yet: with the executor, rows wait for company only then.
    pub(super) async fn batch_queued(&mut self, unmined: usize) -> Result<Hold, RelayerError> {
        self.batch_due = None;
        if !self.batch.enabled() {
            return Ok(Hold::from(i64::MAX));
        }
        if self.ensure_delegation().await? {
            return self.batch_execute(unmined).await;
        }
        if matches!(self.delegation, Delegation::Pending(_)) {
            // The delegation is on its way: escrow calls wait for it (up to `max_wait`), to go
            // out together once it is in place rather than one by one now.
            let now = self.store.now_ms();
            let wait_ms = i64::try_from(self.batch.max_wait.as_millis()).unwrap_or(i64::MAX);
            self.batch_due = Some(now.saturating_add(wait_ms));
            return Ok(Hold {
                after: now.saturating_sub(wait_ms),
                kinds: BatchKinds::EscrowCalls,
            });
        }
        let now = self.store.now_ms();
        let wait_ms = i64::try_from(self.batch.max_wait.as_millis()).unwrap_or(i64::MAX);
        let hold_after = now.saturating_sub(wait_ms);
        let rows = self
            .store
            .batch_candidates(self.opts.chain_id, self.address(), SCAN)
            .await?;
        // Groups by (kind, escrow), each in creation order; only escrows with batch calls.
        let mut groups: BTreeMap<(&'static str, Address), Vec<ChainTx>> = BTreeMap::new();
        for row in rows {
            if self.batch.batch_escrows.contains(&row.to) {
                groups
                    .entry((row.kind.as_str(), row.to))
                    .or_default()
                    .push(row);
            }
        }
        for ((kind, escrow), rows) in groups {
            let oldest = rows.first().map_or(now, |r| r.created_at);
            let due = rows.len() >= self.batch.max_size || oldest <= hold_after;
            if !due {
                let at = oldest.saturating_add(wait_ms);
                self.batch_due = Some(self.batch_due.map_or(at, |d: i64| d.min(at)));
                continue;
            }
            // Chunks of `max_size`, in order; one whose gas would not fit in a block is halved.
            let mut chunks: Vec<&[ChainTx]> = rows.chunks(self.batch.max_size).rev().collect();
            while let Some(chunk) = chunks.pop() {
                if chunk.len() < 2 {
                    continue;
                }
                let chain_id = self.opts.chain_id;
                let signer = self.address();
                let Some(batch) = batch_row(chain_id, signer, chunk) else {
                    tracing::warn!(kind, %escrow, "queued rows that do not decode as single calls: sent one by one");
                    continue;
                };
                let simulation = batch.calldata.clone();
                let merged = self
                    .merge_chunk(chunk, batch, escrow, &simulation, false, |good| {
                        batch_row(chain_id, signer, good)
                    })
                    .await?;
                if merged == Merge::TooBig {
                    let (first, second) = chunk.split_at(chunk.len() / 2);
                    chunks.push(second);
                    chunks.push(first);
                }
            }
        }
        Ok(Hold::from(hold_after))
    }

    /// The executor path of [`Relayer::batch_queued`]: the signer's queued escrow calls, any
    /// kind and escrow, go out together in `execute` rows of up to `max_size`.
    ///
    /// The next batch is formed as soon as no batch waits for its turn: at once when nothing of
    /// the signer is in flight (it is claimed in the same pass), otherwise while the previous
    /// transaction is in flight, so that its simulation (the gas estimate it is signed with,
    /// see [`Relayer::viable`]) overlaps the wait for that receipt, and it goes out the moment
    /// the receipt is in. Calls queued after it wait for the batch after. On a chain whose
    /// flights are slow ([`SLOW_FLIGHT`]: blocks on an interval) the simulation is small beside
    /// the flight, and a batch formed at its start would leave out every call queued during
    /// it (a third block for them): there the batch is formed when the receipt is in.
    /// (`max_wait` plays no part here: a delegated account has one transaction in flight, so
    /// calls wait for company exactly as long as the chain makes them wait anyway.)
    async fn batch_execute(&mut self, unmined: usize) -> Result<Hold, RelayerError> {
        let hold_all = Hold {
            after: i64::MIN,
            kinds: BatchKinds::EscrowCalls,
        };
        if unmined == 0 {
            self.pipeline_paused = false;
        }
        let chain_id = self.opts.chain_id;
        let signer = self.address();
        // A batch formed earlier waits for its turn, or another row (the refund float's
        // `approve`, …, which later calls may depend on) goes first: escrow calls wait for the
        // next pass, which the next receipt starts (or at once, when that row is claimed in
        // this pass).
        if self
            .store
            .oldest_queued_outside(chain_id, signer, BatchKinds::EscrowCalls)
            .await?
            .is_some()
        {
            if unmined == 0 {
                self.batch_due = Some(self.store.now_ms());
            }
            return Ok(hold_all);
        }
        if unmined > 0 && (self.pipeline_paused || self.slow_flights) {
            return Ok(hold_all);
        }
        let rows = self
            .store
            .batch_candidates_of(chain_id, signer, BatchKinds::EscrowCalls, SCAN)
            .await?;
        // One call alone goes as it is (an `execute` of one costs ~1,800 gas more). Calls
        // queued after the scan are always the next batch's: claimed in this pass, each would
        // go out alone beside the batch (under load, a third of the calls did). They are told
        // apart by the scan, not by time: a row's `created_at` is taken before its transaction
        // commits, so one that commits just after the scan can be older than the newest row
        // the scan saw.
        if let [row] = rows.as_slice() {
            return Ok(Hold {
                after: row.created_at,
                kinds: BatchKinds::EscrowCalls,
            });
        }
        // Chunks of `max_size`, in order; one whose gas would not fit in a block is halved.
        let mut chunks: Vec<&[ChainTx]> = rows.chunks(self.batch.max_size).rev().collect();
        while let Some(chunk) = chunks.pop() {
            // The last of many waits for the next batch.
            if chunk.len() < 2 {
                continue;
            }
            let (batch, simulation) = execute_row(chain_id, signer, chunk);
            let merged = self
                .merge_chunk(chunk, batch, signer, &simulation, unmined > 0, |good| {
                    Some(execute_row(chain_id, signer, good).0)
                })
                .await?;
            match merged {
                Merge::Done => {}
                Merge::TooBig => {
                    let (first, second) = chunk.split_at(chunk.len() / 2);
                    chunks.push(second);
                    chunks.push(first);
                }
                Merge::Paused => {
                    // A member would revert on the state before the transaction in flight:
                    // this is sorted out once it is mined (members checked one by one then),
                    // not retried on every pass meanwhile.
                    self.pipeline_paused = true;
                    return Ok(hold_all);
                }
            }
        }
        Ok(hold_all)
    }

    /// Times the signer's flights from the passes' view of them (`unmined`: its transactions
    /// not mined yet): a flight starts when a pass first sees one and ends when a pass sees none;
    /// whether it took [`SLOW_FLIGHT`] decides where the next batch is formed.
    pub(super) fn time_flight(&mut self, unmined: usize) {
        match (unmined, self.flight_started) {
            (0, Some(started)) => {
                self.slow_flights = started.elapsed() >= SLOW_FLIGHT;
                self.flight_started = None;
            }
            (1.., None) => self.flight_started = Some(std::time::Instant::now()),
            _ => {}
        }
    }

    /// Simulates `chunk`'s batch (`simulation` sent to `to`); members whose own call would
    /// revert are claimed and sent alone at once (they fail with their own error), and the
    /// others are merged into `batch` (rebuilt by `rebuild` when some were left out; with fewer
    /// than two left, they are sent alone too). `in_flight`: a transaction of the signer is not
    /// mined yet, so nothing may be sent now; a batch that would revert is then left as it is
    /// ([`Merge::Paused`]). A batch whose gas limit would not fit in a block is not merged
    /// ([`Merge::TooBig`]: the caller splits it).
    async fn merge_chunk(
        &mut self,
        chunk: &[ChainTx],
        batch: NewChainTx,
        to: Address,
        simulation: &Bytes,
        in_flight: bool,
        rebuild: impl Fn(&[ChainTx]) -> Option<NewChainTx>,
    ) -> Result<Merge, RelayerError> {
        let Some((good, mut alone, gas)) = self.viable(chunk, to, simulation, in_flight).await
        else {
            return Ok(Merge::TooBig);
        };
        if in_flight && good.len() < chunk.len() {
            return Ok(Merge::Paused);
        }
        if let Some(limit) = gas
            && chunk.len() >= 2
            && good.len() == chunk.len()
            && self.block_gas_limit().await.is_some_and(|cap| limit > cap)
        {
            return Ok(Merge::TooBig);
        }
        if good.len() == 1 {
            // Its group is due; no company left: it goes now too.
            alone.extend(good.iter().cloned());
        }
        for row in alone {
            self.check_lease().await?;
            if let Some(row) = self
                .store
                .claim_tx(self.opts.chain_id, self.address(), &self.owner, row.id)
                .await?
            {
                tracing::info!(chain_tx = %row.id, nonce = ?row.nonce, kind = %row.kind, "claimed (left out of a batch)");
                self.drive_row(row).await?;
            }
        }
        let batch = if good.len() == chunk.len() {
            let limit =
                gas.map(|gas| super::fees::with_margin(gas, self.opts.gas_limit_margin_percent));
            NewChainTx {
                gas_limit: match limit {
                    Some(limit) => Some(self.within_block(limit).await),
                    None => None,
                },
                ..batch
            }
        } else if good.len() >= 2 {
            match rebuild(&good) {
                Some(b) => b,
                None => return Ok(Merge::Done),
            }
        } else {
            return Ok(Merge::Done);
        };
        let ids: Vec<_> = good.iter().map(|r| r.id).collect();
        self.check_lease().await?;
        match self.store.merge_batch(&batch, &ids).await {
            Ok(row) => {
                tracing::info!(chain_tx = %row.id, kind = %row.kind, members = ids.len(), "batched");
            }
            // Someone acted on a member meanwhile: the next pass looks again.
            Err(e) => tracing::warn!(error = %e, kind = %batch.kind, "merging a batch failed"),
        }
        Ok(Merge::Done)
    }

    /// `limit`, or the chain's block gas limit when it is lower: the third and the margin a
    /// simulated batch gets on top of its gas used must not make a large batch (a raised
    /// `max_size`) a transaction no block can hold, which the node would refuse on every
    /// attempt. Uncapped when the block cannot be read.
    async fn within_block(&mut self, limit: u64) -> u64 {
        self.block_gas_limit()
            .await
            .map_or(limit, |cap| limit.min(cap))
    }

    /// The chain's block gas limit, read once (`None` while it cannot be read).
    async fn block_gas_limit(&mut self) -> Option<u64> {
        if self.block_gas_limit.is_none() {
            match self
                .provider
                .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
                .await
            {
                Ok(Some(block)) => self.block_gas_limit = Some(block.header.gas_limit),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "reading the block gas limit failed"),
            }
        }
        self.block_gas_limit
    }

    /// Whether the signer's account delegates to the executor, so `execute` batches may go
    /// out. Looks at the signer's code until it does, and writes the `delegate` row (once, by
    /// its intent key) when it does not; `false` without an executor.
    async fn ensure_delegation(&mut self) -> Result<bool, RelayerError> {
        let Some(executor) = self.batch.executor else {
            return Ok(false);
        };
        match self.delegation {
            Delegation::Active => return Ok(true),
            Delegation::Unavailable => return Ok(false),
            Delegation::Unknown | Delegation::Pending(_) => {}
        }
        let signer = self.address();
        let code = self.provider.get_code_at(signer).await?;
        if delegated_to(&code) == Some(executor) {
            tracing::info!(%executor, "the signer delegates to the batch executor: escrow calls are batched with execute");
            self.delegation = Delegation::Active;
            return Ok(true);
        }
        let key = delegate_key(self.opts.chain_id, signer, executor);
        let (row, written) = self
            .store
            .enqueue_keyed_tx(&key, &delegate_row(self.opts.chain_id, signer, executor))
            .await?;
        if written {
            tracing::info!(chain_tx = %row.id, %executor, "delegating the signer to the batch executor (EIP-7702)");
        }
        self.delegation = if row.status.is_terminal() {
            tracing::warn!(chain_tx = %row.id, status = %row.status, %executor, code = %code, "the signer does not delegate to the batch executor although its delegate transaction settled: escrow calls are not batched with execute");
            Delegation::Unavailable
        } else {
            Delegation::Pending(row.id)
        };
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_unless_more_than_one() {
        assert!(!BatchOptions::DISABLED.enabled());
        assert!(
            !BatchOptions {
                max_size: 1,
                max_wait: Duration::from_millis(50),
                ..BatchOptions::DISABLED
            }
            .enabled()
        );
        let mut config = Config::default();
        config.batch.max_size = 10;
        config.batch.max_wait_ms = 7;
        let mut deployment = x402_escrow_bindings::Deployment {
            chain_id: 31337,
            version: EscrowVersion::V1_0,
            auth_capture_escrow: Address::repeat_byte(1),
            batch_calls: true,
            token_store_implementation: None,
            erc3009_payment_collector: Address::repeat_byte(2),
            pre_approval_payment_collector: None,
            operator_refund_collector: Address::repeat_byte(3),
            permit2_payment_collector: None,
            multicall3: Address::repeat_byte(4),
            batch_executor: Some(Address::repeat_byte(5)),
            token: None,
        };
        // The executor is on by default.
        let b = BatchOptions::from_config(&config, &deployment);
        assert_eq!(b.executor, Some(Address::repeat_byte(5)));
        assert_eq!(b.batch_escrows, vec![Address::repeat_byte(1)]);
        config.batch.use_executor = false;
        assert_eq!(
            BatchOptions::from_config(&config, &deployment).executor,
            None
        );
        config.batch.use_executor = true;
        config.batch.executor = Some(Address::repeat_byte(6));
        assert_eq!(
            BatchOptions::from_config(&config, &deployment).executor,
            Some(Address::repeat_byte(6))
        );
        assert!(b.enabled());
        assert_eq!(b.max_wait, Duration::from_millis(7));

        // An escrow without the batch calls (the canonical ones), or a v1.1 one (its captures
        // take a fee amount, `captureBatch` a rate), never gets `captureBatch` / `voidBatch`.
        deployment.batch_calls = false;
        assert!(
            BatchOptions::from_config(&config, &deployment)
                .batch_escrows
                .is_empty()
        );
        deployment.batch_calls = true;
        deployment.version = EscrowVersion::V1_1;
        assert!(
            BatchOptions::from_config(&config, &deployment)
                .batch_escrows
                .is_empty()
        );
    }
}
