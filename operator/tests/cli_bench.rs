//! `x402-escrow bench` end to end at a tiny size: 2 buyers × 5 paid requests on an automining
//! anvil, the operator as a child process. Checks the command exits 0, answers every paid
//! request, captures every payment and reports the operator's CPU, RSS, gas per operation and
//! the cost per paid request, one transaction per call (`--executor false`); the same through the
//! EIP-7702 executor (the default), on
//! PostgreSQL with two operator instances, and in the facilitator mode (`exact` and
//! `auth-capture` payloads posted to `POST /settle`). `--instances 2` on SQLite is refused
//! before anything starts.

use std::process::Command;

/// Runs `x402-escrow bench ARGS` (with `--json`) and returns its report: the one line it prints.
fn run_bench(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_x402-escrow"))
        .arg("bench")
        .args(args)
        .output()
        .expect("running x402-escrow bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "--json prints one line:\n{stdout}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// The PostgreSQL server the store tests use (`X402_TEST_POSTGRES_URL`).
fn postgres_url() -> String {
    std::env::var("X402_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether a database named `name` exists on the server of `url`.
async fn database_exists(url: &str, name: &str) -> bool {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .expect("connecting to PostgreSQL");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .expect("pg_database");
    conn.close().await.ok();
    n > 0
}

/// The escrow / token calls the final transactions carried (singly or as batch members), the
/// executor's one-time `delegate` left out; fails on anything reverted or left behind.
fn calls_made(report: &serde_json::Value) -> i64 {
    report["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .filter(|t| t["kind"] != "delegate")
        .map(|t| {
            assert_eq!(t["reverted"], 0, "{t}");
            assert_eq!(t["other"], 0, "{t}");
            t["operations"].as_i64().unwrap_or(-1)
        })
        .sum()
}

/// A transaction kind's row of the report.
fn tx_kind<'a>(report: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    report["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .find(|t| t["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} transactions: {report:#}"))
}

/// One transaction per escrow call (`--executor false`): every kind counted on its own.
#[test]
fn bench_runs_two_buyers_five_requests_and_captures_all() {
    let report = run_bench(&[
        "--buyers",
        "2",
        "--requests",
        "10",
        "--anvil-ceiling",
        "4",
        "--executor",
        "false",
        "--json",
    ]);
    assert_eq!(report["buyers"], 2);
    assert_eq!(report["mode"], "paid");
    assert_eq!(report["database"], "sqlite");
    assert_eq!(report["instances"], 1);
    assert_eq!(report["paid_ok"], 10, "{report:#}");
    assert_eq!(report["paid_failed"], 0, "{report:#}");
    assert_eq!(report["captured"], 10, "{report:#}");
    assert_eq!(report["baseline_ok"], 10, "{report:#}");
    assert_eq!(report["statuses"]["captured"], 10, "{report:#}");
    assert_eq!(report["paid_latency_ms"]["count"], 10);
    assert!(report["paid_rps"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["operator_peak_rss_mib"].as_f64().unwrap_or(0.0) > 1.0);
    assert!(report["operator_cpu_secs"].as_f64().unwrap_or(0.0) > 0.0);
    let txs = report["transactions"].as_array().expect("transactions");
    let kind = |k: &str| {
        txs.iter()
            .find(|t| t["kind"] == k)
            .unwrap_or_else(|| panic!("no {k} transactions: {report:#}"))
    };
    let authorize = kind("authorize");
    assert_eq!(authorize["final_count"], 10, "authorize: {authorize}");
    assert_eq!(authorize["reverted"], 0, "authorize: {authorize}");
    assert_eq!(authorize["other"], 0, "authorize: {authorize}");
    let gas = authorize["gas_per_operation"].as_f64().unwrap_or(0.0);
    assert!(gas > 21_000.0 && gas < 500_000.0, "authorize gas {gas}");
    // Captures go out singly or merged into capture batches (`[batch]`): either way, ten
    // capture operations final, nothing reverted or left behind, and every merged single row
    // accounted for by a batch member.
    let ops = |k: &str| {
        txs.iter()
            .find(|t| t["kind"] == k)
            .map(|t| {
                assert_eq!(t["reverted"], 0, "{k}: {t}");
                assert_eq!(t["other"], 0, "{k}: {t}");
                (
                    t["operations"].as_i64().unwrap_or(-1),
                    t["merged"].as_i64().unwrap_or(-1),
                )
            })
            .unwrap_or((0, 0))
    };
    let (single, merged) = ops("capture");
    let (batched, _) = ops("capture_batch");
    assert_eq!(single + batched, 10, "capture operations: {report:#}");
    assert_eq!(
        merged, batched,
        "merged singles = batch members: {report:#}"
    );
    for k in ["capture", "capture_batch"] {
        if let Some(t) = txs
            .iter()
            .find(|t| t["kind"] == k && t["operations"].as_i64() > Some(0))
        {
            let gas = t["gas_per_operation"].as_f64().unwrap_or(0.0);
            assert!(
                gas > 10_000.0 && gas < 500_000.0,
                "{k} gas per capture {gas}"
            );
        }
    }
    let ceiling = &report["anvil_ceiling"];
    assert_eq!(ceiling["count"], 4);
    assert!(ceiling["pairs_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    // What a paid request cost: SQL writes (from the operator's counter), an authorize and a
    // capture (fewer when captures shared a batch), and their gas.
    let per = &report["per_paid_request"];
    let writes = per["sql_writes"].as_f64().unwrap_or(-1.0);
    assert!(
        writes >= 1.0 && writes < 200.0,
        "writes per paid request: {per}"
    );
    let per_txs = per["transactions"].as_f64().unwrap_or(-1.0);
    assert!(
        per_txs > 1.0 && per_txs <= 2.0,
        "transactions per paid request: {per}"
    );
    let per_gas = per["gas"].as_f64().unwrap_or(-1.0);
    assert!(
        per_gas > 60_000.0 && per_gas < 1_000_000.0,
        "gas per paid request: {per}"
    );
    assert_eq!(report["executor"], false);
    // The one-line summary carries the same numbers.
    let summary = &report["summary"];
    assert_eq!(summary["mode"], "paid");
    assert_eq!(summary["database"], "sqlite");
    assert_eq!(summary["ok"], 10);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["per_sec"], report["paid_rps"]);
    assert_eq!(summary["p95_ms"], report["paid_latency_ms"]["p95"]);
    assert_eq!(summary["sql_writes_per_op"], per["sql_writes"]);
    assert_eq!(summary["transactions_per_op"], per["transactions"]);
    assert_eq!(summary["gas_per_op"], per["gas"]);
    // One instance, reported on its own too, holding the signer lease.
    let instances = report["operator_instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 1, "{report:#}");
    assert_eq!(instances[0]["holds_signer_lease"], true, "{report:#}");
    assert_eq!(report["signer_lease_owner"], instances[0]["instance_id"]);
    // SQLite's write turn was held for part of the window (every paid request wrote), never
    // for more than all of it; the summary carries the instance's figure.
    let busy = summary["writer_busy_percent"].as_f64().unwrap_or(-1.0);
    assert!(busy > 0.0 && busy <= 100.0, "writer busy {busy} %");
    assert_eq!(
        summary["writer_busy_percent"],
        instances[0]["writer_busy_percent"]
    );
    assert_eq!(
        instances[0]["peak_rss_mib"], report["operator_peak_rss_mib"],
        "{report:#}"
    );
}

/// The default (the operator's): the signer delegates to the EIP-7702 batch executor once,
/// every paid request is still answered and captured, nothing reverts.
#[test]
fn bench_through_the_executor_captures_all() {
    let report = run_bench(&["--buyers", "2", "--requests", "10", "--json"]);
    assert_eq!(report["executor"], true);
    assert_eq!(report["paid_ok"], 10, "{report:#}");
    assert_eq!(report["paid_failed"], 0, "{report:#}");
    assert_eq!(report["captured"], 10, "{report:#}");
    assert_eq!(report["statuses"]["captured"], 10, "{report:#}");
    let txs = report["transactions"].as_array().expect("transactions");
    for t in txs {
        assert_eq!(t["reverted"], 0, "{t}");
        assert_eq!(t["other"], 0, "{t}");
    }
    let final_of = |k: &str| {
        txs.iter()
            .find(|t| t["kind"] == k)
            .map_or(0, |t| t["final_count"].as_i64().unwrap_or(-1))
    };
    assert_eq!(final_of("delegate"), 1, "one delegation: {report:#}");
    // Ten authorizations and ten captures, sent alone or as members of `execute` batches
    // (which depends on how the buyers' requests happened to meet).
    let operations: i64 = txs
        .iter()
        .filter(|t| t["kind"] != "delegate")
        .map(|t| t["operations"].as_i64().unwrap_or(-1))
        .sum();
    assert_eq!(operations, 20, "{report:#}");
    let per_txs = report["per_paid_request"]["transactions"]
        .as_f64()
        .unwrap_or(-1.0);
    assert!(per_txs > 0.0 && per_txs <= 2.1, "{report:#}");
}

/// `--instances 2` without PostgreSQL: refused with its reason before anything starts.
#[test]
fn bench_refuses_two_instances_on_sqlite() {
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_x402-escrow"))
        .args(["bench", "--instances", "2", "--requests", "4", "--json"])
        .output()
        .expect("running x402-escrow bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted: {stderr}");
    assert!(
        stderr.contains("--instances 2 needs --database postgres://"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no report");
    // Refused before anvil or an operator started.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// `--database postgres://… --instances 2`: two operator processes on a fresh PostgreSQL
/// database, buyers spread over both; every payment captured (read back from PostgreSQL), both
/// instances answered POSTs, exactly one held the signer lease, and the database is dropped
/// at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_on_postgres_with_two_instances_captures_all() {
    let url = postgres_url();
    let report = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            run_bench(&[
                "--database",
                &url,
                "--instances",
                "2",
                "--buyers",
                "2",
                "--requests",
                "10",
                "--seed-payments",
                "20",
                "--json",
            ])
        }
    })
    .await
    .expect("bench");
    assert_eq!(report["database"], "postgres", "{report:#}");
    assert_eq!(report["summary"]["database"], "postgres");
    // PostgreSQL's writers take no turns: nothing to report.
    assert!(
        report["summary"]["writer_busy_percent"].is_null(),
        "{report:#}"
    );
    assert_eq!(report["instances"], 2);
    assert_eq!(report["paid_ok"], 10, "{report:#}");
    assert_eq!(report["paid_failed"], 0, "{report:#}");
    assert_eq!(report["captured"], 10, "{report:#}");
    // Read back from the PostgreSQL database the operators wrote.
    assert_eq!(report["statuses"]["captured"], 10, "{report:#}");
    // Ten authorizations and ten captures, alone or in batches.
    assert_eq!(calls_made(&report), 20, "{report:#}");
    let name = report["database_name"].as_str().expect("database name");
    assert!(name.starts_with("x402_bench_"), "{name}");
    assert!(!database_exists(&url, name).await, "{name} is left behind");
    let instances = report["operator_instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 2, "{report:#}");
    assert_ne!(instances[0]["url"], instances[1]["url"]);
    let mut posts = 0;
    let mut ok = 0;
    for i in instances {
        // Buyer 0 paid through bench-0, buyer 1 through bench-1.
        assert!(i["ok"].as_u64().unwrap_or(0) >= 1, "{i}");
        ok += i["ok"].as_u64().unwrap_or(0);
        // Each took at least one buyer's authorize and capture.
        let n = i["posts"].as_u64().unwrap_or(0);
        assert!(n >= 2, "{i}");
        posts += n;
        assert!(i["peak_rss_mib"].as_f64().unwrap_or(0.0) > 1.0, "{i}");
        assert!(i["cpu_secs"].as_f64().unwrap_or(0.0) > 0.0, "{i}");
    }
    // An authorize and a capture per paid request, nothing lost between the instances.
    assert!(posts >= 20, "{report:#}");
    assert_eq!(ok, 10, "{report:#}");
    let holders: Vec<&serde_json::Value> = instances
        .iter()
        .filter(|i| i["holds_signer_lease"] == true)
        .collect();
    assert_eq!(holders.len(), 1, "one signer lease: {report:#}");
    assert_eq!(report["signer_lease_owner"], holders[0]["instance_id"]);
    assert_eq!(report["seed_payments"], 20);
    // Sixteen seeded payments to an `execute`; none of the seed's rows is counted as the run's
    // (the calls above are exactly the run's twenty).
    assert_eq!(report["seed_batches"], 2, "{report:#}");
}

/// `--signers 2` with two instances on PostgreSQL: the merchant's challenges name the two lanes
/// in turn, every payment is captured, both lanes carry payments and sent transactions, and the
/// report lists each lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_with_two_signer_lanes_uses_both() {
    let url = postgres_url();
    let report = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            run_bench(&[
                "--database",
                &url,
                "--instances",
                "2",
                "--signers",
                "2",
                "--buyers",
                "2",
                "--requests",
                "10",
                "--json",
            ])
        }
    })
    .await
    .expect("bench");
    assert_eq!(report["signers"], 2, "{report:#}");
    assert_eq!(report["summary"]["signers"], 2, "{report:#}");
    assert_eq!(report["paid_ok"], 10, "{report:#}");
    assert_eq!(report["captured"], 10, "{report:#}");
    assert_eq!(calls_made(&report), 20, "{report:#}");
    let lanes = report["lanes"].as_array().expect("lanes");
    assert_eq!(lanes.len(), 2, "{report:#}");
    let mut payments = 0;
    for lane in lanes {
        let n = lane["payments"].as_i64().unwrap_or(0);
        assert!(n >= 1, "a lane without payments: {report:#}");
        assert!(
            lane["transactions"].as_i64().unwrap_or(0) >= 1,
            "a lane that sent nothing: {report:#}"
        );
        payments += n;
    }
    assert_eq!(payments, 10, "{report:#}");
    let name = report["database_name"].as_str().expect("database name");
    assert!(!database_exists(&url, name).await, "{name} is left behind");
}

/// `--signers` beyond the funded development keys is refused before anything starts.
#[test]
fn bench_refuses_too_many_signers() {
    let out = Command::new(env!("CARGO_BIN_EXE_x402-escrow"))
        .args(["bench", "--signers", "7", "--json"])
        .output()
        .expect("run bench");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no report");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--signers must be between 1 and 6"),
        "{stderr}"
    );
}

/// `--mode facilitator --scheme exact`: pre-signed ERC-3009 transfers posted to `/settle`;
/// every settle succeeds, each transfer is final (alone or inside an `execute`), and the seed
/// is stored beside them.
#[test]
fn bench_facilitator_exact_settles_all() {
    let report = run_bench(&[
        "--mode",
        "facilitator",
        "--scheme",
        "exact",
        "--buyers",
        "2",
        "--requests",
        "6",
        "--seed-payments",
        "50",
        "--json",
    ]);
    assert_eq!(report["mode"], "facilitator");
    let f = &report["facilitator"];
    assert_eq!(f["scheme"], "exact", "{report:#}");
    assert_eq!(f["requests"], 6, "{report:#}");
    assert_eq!(f["ok"], 6, "{report:#}");
    assert_eq!(f["failed"], 0, "{report:#}");
    assert_eq!(f["confirmed"], 6, "{report:#}");
    assert_eq!(f["latency_ms"]["count"], 6);
    assert!(f["settles_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    // Each transfer is final either as its own transaction or carried by a final `execute`
    // (whichever the queue made of it): six in all, none lost or doubled.
    let transfer = tx_kind(&report, "transfer");
    let alone = transfer["final_count"].as_i64().unwrap_or(-1);
    let carried = transfer["merged_final"].as_i64().unwrap_or(-1);
    assert_eq!(alone + carried, 6, "six transfers settled: {report:#}");
    assert_eq!(transfer["reverted"], 0, "{report:#}");
    assert_eq!(transfer["other"], 0, "{report:#}");
    assert_eq!(calls_made(&report), 6, "six transfers: {report:#}");
    let per = &f["per_settle"];
    // One transaction per transfer at most, plus the executor's delegation when it is on.
    let per_txs = per["transactions"].as_f64().unwrap_or(-1.0);
    assert!(per_txs > 0.0 && per_txs <= 7.0 / 6.0 + 1e-9, "{per}");
    let writes = per["sql_writes"].as_f64().unwrap_or(-1.0);
    assert!((1.0..100.0).contains(&writes), "writes per settle: {per}");
    // No paid-mode numbers in this mode.
    assert!(report.get("paid_ok").is_none(), "{report:#}");
    assert_eq!(report["seed_payments"], 50);
    // The seed's batches hold the signer's first nonces; the run's transfers went out after
    // them, and none of the seed's rows is counted as the run's (six calls above).
    assert_eq!(report["seed_batches"], 4, "{report:#}");
    let summary = &report["summary"];
    assert_eq!(summary["mode"], "facilitator");
    assert_eq!(summary["scheme"], "exact");
    assert_eq!(summary["ok"], 6);
    assert_eq!(summary["p99_ms"], f["latency_ms"]["p99"]);
}

/// `--mode facilitator --scheme auth-capture`: pre-signed escrow payments posted to `/settle`
/// by 8 clients at once; every settle succeeds (also when its authorize went out inside an
/// executor `execute` batch with others') and leaves its payment authorized.
#[test]
fn bench_facilitator_auth_capture_settles_all() {
    let report = run_bench(&[
        "--mode",
        "facilitator",
        "--scheme",
        "auth-capture",
        "--buyers",
        "8",
        "--requests",
        "16",
        "--json",
    ]);
    let f = &report["facilitator"];
    assert_eq!(f["scheme"], "auth-capture", "{report:#}");
    assert_eq!(f["ok"], 16, "{report:#}");
    assert_eq!(f["failed"], 0, "{report:#}");
    assert_eq!(f["confirmed"], 16, "{report:#}");
    assert_eq!(report["statuses"]["authorized"], 16, "{report:#}");
    assert_eq!(
        calls_made(&report),
        16,
        "sixteen authorizations: {report:#}"
    );
    let per_txs = f["per_settle"]["transactions"].as_f64().unwrap_or(-1.0);
    assert!(per_txs > 0.0 && per_txs <= 17.0 / 16.0 + 1e-9, "{report:#}");
    assert_eq!(report["summary"]["ok"], 16);
}
