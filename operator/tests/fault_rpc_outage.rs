//! RPC outage: the chain endpoint disappears for 10 s in the middle of a load of paid requests.
//! The operator (the real `x402-escrow serve` process) talks to anvil through a TCP proxy
//! (`fault_support::Proxy`). Two ways to disappear:
//!
//! - `chain_endpoint_gone_for_ten_seconds`: every open connection is cut and new ones are reset;
//! - `chain_endpoint_blackholed_for_ten_seconds`: connections are accepted and never answered,
//!   and those caught in it stay silent for good. Before `chain.rpc_timeout_secs` existed this
//!   one never recovered: a relayer request waited forever on a silent connection, the signer
//!   lease ran out and `/readyz` stayed 503 (`no instance holds the lease`) long after the
//!   endpoint was back.
//!
//! During the outage `/readyz` answers 503 with the `rpc` check failing, the process stays up
//! and does not spin (connection attempts are counted), and after it every payment finishes:
//! the ledger check of `fault_support::assert_ledger` (database == chain, balances exact, nonces
//! without gaps, `x402-escrow reconcile` clean).
//!
//! `X402_FAULT_N` (default 150) payments; `X402_FAULT_OUTAGE_SECS` (default 10) outage length:
//!
//! ```sh
//! X402_FAULT_N=1000 X402_FAULT_OUTAGE_SECS=60 cargo test -p x402-escrow-operator --test fault_rpc_outage -- --nocapture
//! ```

mod fault_support;
mod operator_support;
mod store_support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fault_support::*;
use operator_support::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use x402_escrow_operator::store::Backend;

async fn readyz(http: &reqwest::Client, addr: SocketAddr) -> Option<(u16, Value)> {
    let resp = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_endpoint_gone_for_ten_seconds() {
    outage_run("fault_rpc_outage", ProxyMode::Refuse).await
}

/// The endpoint becomes a black hole instead: connections are accepted and never answered, and
/// the ones caught in it stay silent for good (a peer or middlebox that lost their state), so
/// only an RPC call that gives up on its own gets the operator going again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_endpoint_blackholed_for_ten_seconds() {
    outage_run("fault_rpc_blackhole", ProxyMode::Blackhole).await
}

async fn outage_run(test: &'static str, mode: ProxyMode) {
    let n: usize = knob("X402_FAULT_N", 150);
    let m: usize = knob("X402_FAULT_EXACT", n / 4);
    let outage = Duration::from_secs(knob("X402_FAULT_OUTAGE_SECS", 10));
    let seed = seed(test, 0x07A6E);
    with_db(Backend::Sqlite, move |url| async move {
        let started = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let chain = Chain::start().await;
        let upstream: SocketAddr = format!("127.0.0.1:{}", chain.anvil.port())
            .parse()
            .expect("anvil addr");
        let proxy = Proxy::start(upstream).await.expect("start proxy");
        // A short RPC timeout, so calls caught in a black hole give up soon after it ends.
        let setup = OperatorSetup::new(test, &url, &chain, &proxy.url(), |t| {
            set(t, "chain", "rpc_timeout_secs", toml::Value::Integer(5));
        });
        let (key, _) = setup.add_merchant("shop", chain.receiver, None).await;
        let store = test_store(&url).await;
        let orders = orders(&chain, chain.operator.address(), "rpc", n, &mut rng, 0.7).await;
        let before = balances(&chain).await;
        let mut exact = ExactLoad::prepare(&setup, &chain, "rpc", m, &mut rng).await;

        let mut op = setup.start().await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        // Ready once the relayer has registered the signer and taken its lease.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = readyz(&http, setup.addr).await.expect("readyz");
            if status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not ready before the outage: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let client = Client::new(setup.addr, &key, Duration::from_secs(180));
        let (done, load) = spawn_orders(&client, orders, 12);
        let exact_load = exact.spawn(4, done.clone(), n);
        let deadline = Instant::now() + Duration::from_secs(120);
        while done.load(Ordering::SeqCst) < n as u64 / 3 {
            assert!(
                Instant::now() < deadline && !load.is_finished(),
                "no progress"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // The endpoint disappears.
        let done_at_outage = done.load(Ordering::SeqCst);
        let (acc0, ref0) = (
            proxy.accepted.load(Ordering::Relaxed),
            proxy.refused.load(Ordering::Relaxed) + proxy.swallowed.load(Ordering::Relaxed),
        );
        proxy.set_mode(mode).await;
        let down_at = Instant::now();
        let mut not_ready = None;
        let mut ready_during = 0;
        while down_at.elapsed() < outage {
            if let Some((status, body)) = readyz(&http, setup.addr).await {
                if status == 503 {
                    assert_eq!(body["status"], "not_ready", "{body}");
                    assert!(
                        body["checks"]["rpc"]
                            .as_str()
                            .is_some_and(|s| s.starts_with("error")),
                        "the rpc check names the outage: {body}"
                    );
                    assert_eq!(body["checks"]["database"], "ok", "{body}");
                    not_ready.get_or_insert(body);
                } else {
                    ready_during += 1;
                }
            }
            assert!(
                op.exited().is_none(),
                "the operator died in the outage:\n{}",
                setup.log_tail(50)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let during = done.load(Ordering::SeqCst) - done_at_outage;
        let refused =
            proxy.refused.load(Ordering::Relaxed) + proxy.swallowed.load(Ordering::Relaxed) - ref0;
        let not_ready = not_ready.expect("/readyz never reported the outage");
        assert!(
            ready_during <= 1,
            "/readyz said ready {ready_during} times while the chain was gone"
        );

        // Back.
        proxy.set_mode(ProxyMode::Up).await;
        let up_at = Instant::now();
        loop {
            let answer = readyz(&http, setup.addr).await;
            if let Some((200, _)) = answer {
                break;
            }
            assert!(
                up_at.elapsed() < Duration::from_secs(60),
                "not ready again 60 s after the outage: {answer:?}\n{}",
                setup.log_tail(20)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ready_again = up_at.elapsed();
        let paid = setup.joined(load).await;
        let transferred = setup.joined(exact_load).await;
        settle_all(&store, Duration::from_secs(60)).await;
        eprintln!(
            "[{test}] {n} payments in {:.1} s; {mode:?} {outage:?} after {done_at_outage} done: \
             {during} finished during it, {refused} connections refused ({:.1}/s; {} held silent), \
             {} accepted before; /readyz during: {not_ready}; ready again {ready_again:?} after; \
             client saw {:?}; txs {:?}",
            started.elapsed().as_secs_f64(),
            refused as f64 / outage.as_secs_f64(),
            proxy.held().await,
            acc0,
            client.stats.summary(),
            tx_statuses(&store).await
        );
        assert_eq!(paid.len(), n);
        // Backing off, not spinning: every component together (relayer, indexer, engine sweeps,
        // the readiness probe, the clients' own retries) stays far below what a loop without
        // backoff would make (thousands per second on loopback).
        assert!(
            (refused as f64) < 40.0 * outage.as_secs_f64(),
            "{refused} connection attempts in the {outage:?} outage"
        );
        assert_ledger(&setup, &chain, &store, &paid, before).await;
        exact.check(test, &chain, &store, &transferred).await;
        op.terminate().await;
        store.close().await;
    })
    .await
}
