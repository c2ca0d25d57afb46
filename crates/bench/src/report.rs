//! What `x402-escrow bench` reports, and its text rendering.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::{BenchCaptureMode, BenchMode, BenchScheme, BenchSynchronous};

// ------------------------------------------------------------------------------ the report

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    pub(crate) fn of(samples: &mut [Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            ms(samples[rank - 1])
        };
        Percentiles {
            count: samples.len(),
            mean: samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: ms(samples[samples.len() - 1]),
        }
    }
}

/// One transaction kind's totals from the operator's outbox.
#[derive(Debug, Clone, Serialize)]
pub struct TxKindReport {
    /// `authorize`, `capture`, …
    pub kind: String,
    /// Final (succeeded) rows.
    pub final_count: i64,
    /// Reverted rows.
    pub reverted: i64,
    /// Other rows (still in flight, or abandoned without being merged into a batch).
    pub other: i64,
    /// Single rows merged into a batch row (`capture_batch`, `void_batch`, `execute`: sent as
    /// part of it).
    pub merged: i64,
    /// Of `merged`, the rows whose batch's outcome was written back on them as succeeded (an
    /// `exact` transfer carried by an `execute`): done, but not a transaction of their own.
    pub merged_final: i64,
    /// Payment operations the final rows carried: one per single row, one per member of a batch.
    pub operations: i64,
    /// Mean gas used of the final rows.
    pub gas_mean: f64,
    /// Gas used of the final rows per payment operation (a batch's gas shared by its members).
    pub gas_per_operation: f64,
    /// Mean time from outbox row to final, ms.
    pub queued_to_final_ms: f64,
}

/// What one captured paid request cost, on average, from the start of the paid phase until
/// the last capture was final.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerPaidRequest {
    /// SQL write transactions the operator committed (`x402_store_write_transactions_total`;
    /// `None` when the operator does not export it). Includes its idle loops over the period.
    pub sql_writes: Option<f64>,
    /// Chain transactions final (a batch counts once, however many payments it carried).
    pub transactions: f64,
    /// Gas used by those transactions (authorize + capture, each transaction's base cost
    /// included, a batch's gas shared among its members).
    pub gas: f64,
}

impl PerPaidRequest {
    /// The costs of `captured` requests, from the writes counter before and after and the
    /// per-kind transaction totals.
    pub fn of(
        captured: u64,
        writes: Option<(u64, u64)>,
        transactions: &[TxKindReport],
    ) -> PerPaidRequest {
        if captured == 0 {
            return PerPaidRequest::default();
        }
        let n = captured as f64;
        let txs: i64 = transactions.iter().map(|t| t.final_count).sum();
        let gas: f64 = transactions
            .iter()
            .map(|t| t.gas_mean * t.final_count as f64)
            .sum();
        PerPaidRequest {
            sql_writes: writes.map(|(before, after)| after.saturating_sub(before) as f64 / n),
            transactions: txs as f64 / n,
            gas: gas / n,
        }
    }
}

/// The node's own rate for the same transactions (`--anvil-ceiling`).
#[derive(Debug, Clone, Serialize)]
pub struct CeilingReport {
    /// Transactions per phase.
    pub count: u64,
    /// `authorize` transactions mined per second.
    pub authorize_tx_per_sec: f64,
    /// `capture` transactions mined per second.
    pub capture_tx_per_sec: f64,
    /// authorize + capture pairs per second (the bound on paid requests per second).
    pub pairs_per_sec: f64,
}

/// The paid mode's numbers (`--mode paid`), written at the top level of the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct PaidReport {
    /// Free requests answered 200.
    pub baseline_ok: u64,
    /// Free requests per second.
    pub baseline_rps: f64,
    /// Latency of the free route.
    pub baseline_latency_ms: Percentiles,
    /// Paid requests answered 200 with a payment.
    pub paid_ok: u64,
    /// Paid requests that failed (any other outcome).
    pub paid_failed: u64,
    /// Wall time of the paid phase, s.
    pub paid_secs: f64,
    /// Paid requests answered per second.
    pub paid_rps: f64,
    /// Latency of the paid route (whole buyer round trip: 402, sign, paid request).
    pub paid_latency_ms: Percentiles,
    /// paid − baseline at p50 / p95 / p99.
    pub added_latency_ms: Percentiles,
    /// Bench payments captured with a final capture at the end.
    pub captured: u64,
    /// From the start of the paid phase until the last capture was final, s.
    pub settled_secs: f64,
    /// Captured payments per second over `settled_secs`.
    pub settled_per_sec: f64,
    /// What one paid request cost the operator, over the paid phase and its settlement.
    pub per_paid_request: PerPaidRequest,
}

/// The facilitator mode's numbers (`--mode facilitator`).
#[derive(Debug, Clone, Serialize)]
pub struct FacilitatorReport {
    /// The payloads' scheme.
    pub scheme: BenchScheme,
    /// Payloads signed (and posted).
    pub requests: u64,
    /// Seconds spent signing them, before the timed phase.
    pub signing_secs: f64,
    /// Settles answered `success: true` with a transaction.
    pub ok: u64,
    /// Settles that failed (any other answer, `settlement_pending` included).
    pub failed: u64,
    /// Wall time of the settle phase, s.
    pub secs: f64,
    /// Successful settles per second.
    pub settles_per_sec: f64,
    /// Latency of one `POST /settle` round trip.
    pub latency_ms: Percentiles,
    /// Settles the database confirms: `auth-capture` payments `authorized`, `exact` `transfer`
    /// rows final.
    pub confirmed: u64,
    /// What one successful settle cost the operator (writes over the settle phase).
    pub per_settle: PerPaidRequest,
}

/// One operator process (`--instances`).
#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    /// Its instance id (`instance_id` in its config).
    pub instance_id: String,
    /// Its API.
    pub url: String,
    /// Whether it held the (first) signer lease at the end of the run.
    pub holds_signer_lease: bool,
    /// How many signer lanes it held at the end of the run (`--signers`).
    pub lanes_held: usize,
    /// Paid requests / settles the bench sent through it that succeeded (client `b` uses
    /// instance `b % instances`).
    pub ok: u64,
    /// POST requests its HTTP metrics counted during the timed phase (`x402_http_requests_total`:
    /// the REST API; the facilitator routes are not behind that layer, so `/settle` is not
    /// counted).
    pub posts: Option<u64>,
    /// SQL write transactions it committed from the start of the timed phase to the end.
    pub sql_writes: Option<u64>,
    /// Its CPU time over the same period, s (user + system).
    pub cpu_secs: f64,
    /// Its CPU use, % of one core.
    pub cpu_percent: f64,
    /// SQLite: how much of the period it held the database's single write turn, %
    /// (`x402_store_writer_busy_seconds_total`); near 100, its writes queued for the turn.
    pub writer_busy_percent: Option<f64>,
    /// Its peak resident set (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// Its resident set at the end, MiB.
    pub rss_mib: f64,
    /// Its resident set after start-up, MiB.
    pub idle_rss_mib: f64,
}

/// The key numbers of a run, the same for every mode (the `summary` object of `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct BenchSummary {
    /// `paid` or `facilitator`.
    pub mode: BenchMode,
    /// The facilitator mode's scheme.
    pub scheme: Option<BenchScheme>,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Operator processes.
    pub instances: usize,
    /// Signer lanes.
    pub signers: usize,
    /// Concurrent clients.
    pub buyers: usize,
    /// Pre-stored payments.
    pub seed_payments: u64,
    /// Paid requests answered / settles succeeded.
    pub ok: u64,
    /// Failed requests / settles.
    pub failed: u64,
    /// `ok` per second of the timed phase.
    pub per_sec: f64,
    /// Latency p50, ms.
    pub p50_ms: f64,
    /// Latency p95, ms.
    pub p95_ms: f64,
    /// Latency p99, ms.
    pub p99_ms: f64,
    /// SQL write transactions per paid request / settle (every instance's).
    pub sql_writes_per_op: Option<f64>,
    /// Chain transactions per paid request / settle.
    pub transactions_per_op: f64,
    /// Gas per paid request / settle.
    pub gas_per_op: f64,
    /// The operator's CPU use (all instances), % of one core.
    pub operator_cpu_percent: f64,
    /// SQLite: the share of the measured window the operator held the single write turn, %
    /// (the busiest instance's; `None` on PostgreSQL).
    pub writer_busy_percent: Option<f64>,
    /// The operator's peak RSS (all instances), MiB.
    pub operator_peak_rss_mib: f64,
    /// Load averages at the start.
    pub load_before: String,
    /// Load averages at the end.
    pub load_after: String,
}

/// Everything `x402-escrow bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The key numbers (also in the fields below).
    pub summary: BenchSummary,
    /// UTC time of the run (RFC 3339).
    pub started_at: String,
    /// `uptime`'s load averages at the start.
    pub load_before: String,
    /// `uptime`'s load averages at the end.
    pub load_after: String,
    /// CPUs.
    pub nproc: usize,
    /// What was driven.
    pub mode: BenchMode,
    /// `sqlite` or `postgres`: the operator's database.
    pub database: String,
    /// The PostgreSQL database created for the run (dropped at its end).
    pub database_name: Option<String>,
    /// Operator processes on the database.
    pub instances: usize,
    /// Signer lanes (`--signers`).
    pub signers: usize,
    /// Concurrent buyers (facilitator mode: concurrent clients).
    pub buyers: usize,
    /// 0 = automine.
    pub block_time: u64,
    /// Pre-stored payments.
    pub seed_payments: u64,
    /// Sync or queued capture.
    pub capture_mode: BenchCaptureMode,
    /// Operator poll interval, ms.
    pub poll_interval_ms: u64,
    /// The operator's SQLite `synchronous` setting.
    pub sqlite_synchronous: BenchSynchronous,
    /// Seconds spent seeding the database.
    pub seed_secs: f64,
    /// The settled `execute` rows the seed wrote (their nonces are the signer's first ones).
    pub seed_batches: u64,
    /// The paid mode's numbers.
    #[serde(flatten)]
    pub paid: Option<PaidReport>,
    /// The facilitator mode's numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facilitator: Option<FacilitatorReport>,
    /// The first few failures.
    pub failures: Vec<String>,
    /// Payment statuses of the bench's merchant at the end.
    pub statuses: BTreeMap<String, i64>,
    /// The operator's CPU time during the timed phase (and, paid mode, until settled), seconds
    /// (user + system, all instances).
    pub operator_cpu_secs: f64,
    /// The operator's CPU use over that period, % of one core (all instances).
    pub operator_cpu_percent: f64,
    /// The operator's peak resident set (`VmHWM`, summed over instances), MiB.
    pub operator_peak_rss_mib: f64,
    /// The operator's resident set at the end (`VmRSS`, summed over instances), MiB.
    pub operator_rss_mib: f64,
    /// The operator's RSS after start-up, before any load (summed over instances), MiB.
    pub operator_idle_rss_mib: f64,
    /// Each operator process.
    pub operator_instances: Vec<InstanceReport>,
    /// The instance holding the (first) signer lease at the end.
    pub signer_lease_owner: Option<String>,
    /// Every signer lane: holder, transactions sent, payments pinned.
    pub lanes: Vec<crate::LaneReport>,
    /// Whether escrow calls went through the EIP-7702 batch executor.
    pub executor: bool,
    /// Per transaction kind.
    pub transactions: Vec<TxKindReport>,
    /// Anvil's own ceiling, when measured.
    pub anvil_ceiling: Option<CeilingReport>,
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The current UTC time, RFC 3339 (seconds).
pub(crate) fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

impl BenchReport {
    /// The readable table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let chain = if self.block_time == 0 {
            "automine".to_owned()
        } else {
            format!("{} s blocks", self.block_time)
        };
        let database = match &self.database_name {
            Some(name) => format!("{} ({name})", self.database),
            None if self.database == "sqlite" => {
                format!("sqlite synchronous {:?}", self.sqlite_synchronous)
            }
            None => self.database.clone(),
        };
        match &self.facilitator {
            Some(f) => line(format!(
                "x402-escrow bench — facilitator /settle, scheme {}, {} clients, {chain}, {} seeded payments, poll {} ms, {database}, {} operator instance(s), {} signer lane(s)",
                scheme_name(f.scheme),
                self.buyers,
                self.seed_payments,
                self.poll_interval_ms,
                self.instances,
                self.signers
            )),
            None => line(format!(
                "x402-escrow bench — {} buyers, {chain}, capture {:?}, {} seeded payments, poll {} ms, {database}, {} operator instance(s), {} signer lane(s)",
                self.buyers,
                self.capture_mode,
                self.seed_payments,
                self.poll_interval_ms,
                self.instances,
                self.signers
            )),
        }
        line(format!(
            "started {} on {} CPUs, load {} → {}",
            self.started_at, self.nproc, self.load_before, self.load_after
        ));
        if self.seed_payments > 0 {
            line(format!(
                "seeding took {:.1} s ({} settled batches)",
                self.seed_secs, self.seed_batches
            ));
        }
        line(String::new());
        line(format!(
            "{:<26} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "count", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms"
        ));
        let row = |name: &str, p: &Percentiles| {
            format!(
                "{name:<26} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                p.count, p.mean, p.p50, p.p95, p.p99, p.max
            )
        };
        let per = if let Some(paid) = &self.paid {
            line(row("free route (baseline)", &paid.baseline_latency_ms));
            line(row("paid route", &paid.paid_latency_ms));
            line(row("added by the payment path", &paid.added_latency_ms));
            line(String::new());
            line(format!(
                "baseline         {:>10.1} requests/s",
                paid.baseline_rps
            ));
            line(format!(
                "paid             {:>10.1} paid requests/s ({} ok, {} failed in {:.2} s)",
                paid.paid_rps, paid.paid_ok, paid.paid_failed, paid.paid_secs
            ));
            line(format!(
                "settled          {:>10.1} captures/s ({} captured, last final {:.2} s after the start)",
                paid.settled_per_sec, paid.captured, paid.settled_secs
            ));
            Some(("per paid request", paid.per_paid_request))
        } else if let Some(f) = &self.facilitator {
            line(row("POST /settle", &f.latency_ms));
            line(String::new());
            line(format!(
                "settles          {:>10.1} settles/s ({} ok, {} failed in {:.2} s; {} confirmed in the database)",
                f.settles_per_sec, f.ok, f.failed, f.secs, f.confirmed
            ));
            line(format!(
                "signing          {:>10.2} s for {} payloads, before the timed phase",
                f.signing_secs, f.requests
            ));
            Some(("per settle", f.per_settle))
        } else {
            None
        };
        line(format!(
            "operator CPU     {:>10.1} % of one core ({:.2} s user+sys over the timed phase{})",
            self.operator_cpu_percent,
            self.operator_cpu_secs,
            if self.paid.is_some() {
                " until settled"
            } else {
                ""
            }
        ));
        if let Some(busy) = self.summary.writer_busy_percent {
            line(format!(
                "SQLite writer    {busy:>10.1} % of the time its single write turn was held"
            ));
        }
        line(format!(
            "operator RSS     {:>10.1} MiB peak (VmHWM); {:.1} MiB at the end, {:.1} MiB idle after start",
            self.operator_peak_rss_mib, self.operator_rss_mib, self.operator_idle_rss_mib
        ));
        if self.operator_instances.len() > 1 {
            for i in &self.operator_instances {
                line(format!(
                    "  {:<14} {:>6} ok, {:>6.1} % CPU, {:>6.1} MiB peak RSS, {:>6} REST POSTs, {:>6} SQL writes{}",
                    i.instance_id,
                    i.ok,
                    i.cpu_percent,
                    i.peak_rss_mib,
                    i.posts.map_or_else(|| "n/a".to_owned(), |n| n.to_string()),
                    i.sql_writes
                        .map_or_else(|| "n/a".to_owned(), |n| n.to_string()),
                    match (self.signers, i.lanes_held) {
                        (1, 1) => ", holds the signer lease (sends every transaction)".to_owned(),
                        (1, _) => String::new(),
                        (_, n) => format!(", holds {n} signer lane(s)"),
                    }
                ));
            }
        }
        if self.lanes.len() > 1 {
            for l in &self.lanes {
                line(format!(
                    "  lane {} {:>6} transactions, {:>6} payments, held by {}",
                    l.signer,
                    l.transactions,
                    l.payments,
                    l.lease_owner.as_deref().unwrap_or("nobody")
                ));
            }
        }
        if let Some((what, per)) = per {
            line(format!(
                "{what:<16} {:>10} SQL writes, {:.2} transactions, {:.0} gas{}",
                per.sql_writes
                    .map_or_else(|| "n/a".to_owned(), |w| format!("{w:.1}")),
                per.transactions,
                per.gas,
                if self.executor {
                    " (through the EIP-7702 executor)"
                } else {
                    ""
                }
            ));
        }
        let statuses = self
            .statuses
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        line(format!(
            "statuses         {}",
            if statuses.is_empty() {
                "no payments (exact transfers are not payments)"
            } else {
                &statuses
            }
        ));
        line(String::new());
        line(format!(
            "{:<14} {:>7} {:>9} {:>7} {:>7} {:>6} {:>9} {:>9} {:>16}",
            "tx kind",
            "final",
            "reverted",
            "other",
            "merged",
            "ops",
            "gas/tx",
            "gas/op",
            "queued→final ms"
        ));
        for t in &self.transactions {
            line(format!(
                "{:<14} {:>7} {:>9} {:>7} {:>7} {:>6} {:>9.0} {:>9.0} {:>16.1}",
                t.kind,
                t.final_count,
                t.reverted,
                t.other,
                t.merged,
                t.operations,
                t.gas_mean,
                t.gas_per_operation,
                t.queued_to_final_ms
            ));
        }
        if let Some(c) = &self.anvil_ceiling {
            line(String::new());
            line(format!(
                "anvil alone      {:.0} authorize/s, {:.0} capture/s → {:.0} authorize+capture pairs/s ({} each, 8 in flight)",
                c.authorize_tx_per_sec, c.capture_tx_per_sec, c.pairs_per_sec, c.count
            ));
        }
        for f in &self.failures {
            line(format!("failure: {f}"));
        }
        out
    }
}

/// The scheme's x402 name.
pub(crate) fn scheme_name(scheme: BenchScheme) -> &'static str {
    match scheme {
        BenchScheme::Exact => "exact",
        BenchScheme::AuthCapture => "auth-capture",
    }
}
