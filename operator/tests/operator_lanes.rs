//! Signer lanes: two `x402-escrow serve` processes on ONE fresh PostgreSQL database, configured
//! with the same two signer keys (`X402_SIGNER_KEYS`). Each instance leases one lane (its fair
//! share); payments naming either lane's address as `captureAuthorizer` are accepted by either
//! instance and every call of a payment (authorize, capture, void) is sent, on chain, from the
//! key its `operator` names. A new outbox row is announced on PostgreSQL (`NOTIFY x402_outbox`
//! with the lane's address). When one instance is killed (SIGKILL), its lane's lease expires and
//! the other takes it over: payments queued for that lane meanwhile complete.
//!
//! Also: a malformed `X402_SIGNER_KEYS` stops every command with its own error, and a signer
//! key that live payments still name cannot be retired (`retired_lane_with_live_payments…`).

mod fault_support;
mod operator_support;
mod store_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use fault_support::*;
use operator_support::*;
use serde_json::{Value, json};
use sqlx::Row;
use x402_escrow_operator::store::{Backend, OUTBOX_CHANNEL, PAYMENT_CHANNEL, Store};

const AMOUNT: u64 = 2 * USDC;

/// The lane keys: the chain's operator key (1) and key 7 (funded dev accounts, used by no
/// other role).
fn lane_keys(chain: &Chain) -> Vec<alloy::signers::local::PrivateKeySigner> {
    vec![chain.operator.clone(), chain.key(7).expect("key 7")]
}

fn keys_env(keys: &[alloy::signers::local::PrivateKeySigner]) -> String {
    keys.iter()
        .map(|k| format!("0x{}", alloy::hex::encode(k.to_bytes())))
        .collect::<Vec<_>>()
        .join(",")
}

/// A setup for instance `id` on `url` with the lane keys instead of the single key.
fn instance(test: &str, id: &str, url: &str, chain: &Chain, keys: &str) -> OperatorSetup {
    let mut setup = OperatorSetup::new(&format!("{test}-{id}"), url, chain, &chain.url, |t| {
        t.insert("instance_id".into(), toml::Value::String(id.into()));
    });
    setup.env.retain(|(k, _)| k != "X402_SIGNER_KEY");
    setup.env.push(("X402_SIGNER_KEYS".into(), keys.into()));
    setup
}

/// Lane address → lease owner (live leases only).
async fn owners(store: &Store) -> BTreeMap<Address, String> {
    let now = store.now_ms();
    sqlx::query("SELECT address, lease_owner, lease_expires_at FROM signers")
        .fetch_all(store.pool())
        .await
        .expect("signers")
        .into_iter()
        .filter_map(|r| {
            let owner: Option<String> = r.try_get("lease_owner").ok().flatten();
            let until: Option<i64> = r.try_get("lease_expires_at").ok().flatten();
            let address: String = r.try_get("address").expect("address");
            match (owner, until) {
                (Some(owner), Some(until)) if until > now => {
                    Some((address.parse().expect("address"), owner))
                }
                _ => None,
            }
        })
        .collect()
}

/// Waits (bounded) until the leases are exactly `want`.
async fn wait_owners(store: &Store, want: &BTreeMap<Address, String>, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = owners(store).await;
        if &now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: leases {now:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Authorizes a payment of `AMOUNT` naming `lane` through `api` (waiting for its hold).
async fn pay(api: &Api, chain: &Chain, lane: Address, rid: &str) -> Value {
    let req = chain.requirements(AMOUNT, lane, chain.receiver).await;
    let body = chain.authorize_body(req, &chain.payer, rid).await;
    let (status, view) = api.post("/v1/payments/authorize", &body, rid).await;
    assert!(status == 201 || status == 202, "{rid}: {status} {view}");
    let id = view["id"].as_str().expect("id").to_owned();
    api.wait_status(&id, &["authorized"], WAIT).await
}

/// Every transaction of the payment `id` (as its view lists them) was sent on chain from its
/// `operator` (`lane`); answers their hashes.
async fn assert_sent_by_lane(api: &Api, chain: &Chain, id: &str, lane: Address) -> Vec<B256> {
    let view = api.payment(id).await;
    let operator: Address = view["paymentInfo"]["operator"]
        .as_str()
        .expect("operator")
        .parse()
        .expect("address");
    assert_eq!(operator, lane, "{view}");
    let txs = view["transactions"].as_array().expect("transactions");
    assert!(!txs.is_empty(), "{view}");
    let mut hashes = Vec::new();
    for tx in txs {
        let Some(hash) = tx["hash"].as_str() else {
            panic!("a transaction without a hash: {view}");
        };
        let hash: B256 = hash.parse().expect("hash");
        let sent = chain
            .plain
            .get_transaction_by_hash(hash)
            .await
            .expect("eth_getTransactionByHash")
            .unwrap_or_else(|| panic!("{hash} not on chain"));
        assert_eq!(
            sent.inner.signer(),
            lane,
            "{} of payment {id} came from another key",
            tx["kind"]
        );
        hashes.push(hash);
    }
    hashes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_two_lanes() {
    store_support::with_db(Backend::Postgres, |url| async move {
        let chain = Chain::start().await;
        let keys = lane_keys(&chain);
        let lanes: Vec<Address> = keys.iter().map(|k| k.address()).collect();
        let keys = keys_env(&keys);
        let setup_a = instance("lanes", "op-a", &url, &chain, &keys);
        let setup_b = instance("lanes", "op-b", &url, &chain, &keys);
        let (api_key, _) = setup_a.add_merchant("shop", chain.receiver, None).await;
        let store = test_store(&url).await;

        // Alone, A holds both lanes.
        let mut a = setup_a.start().await;
        let both_a: BTreeMap<Address, String> =
            lanes.iter().map(|l| (*l, "op-a".to_owned())).collect();
        wait_owners(&store, &both_a, "A alone").await;
        // B joins: A gives one lane back, B takes it (one each).
        let mut b = setup_b.start().await;
        let deadline = Instant::now() + WAIT;
        let split = loop {
            let now = owners(&store).await;
            let holders: BTreeSet<&String> = now.values().collect();
            if now.len() == 2 && holders.len() == 2 {
                break now;
            }
            assert!(Instant::now() < deadline, "no fair split: {now:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let lane_of = |owner: &str| {
            *split
                .iter()
                .find(|(_, o)| o.as_str() == owner)
                .expect("owner")
                .0
        };
        let lane_b = lane_of("op-b");
        assert_ne!(lane_of("op-a"), lane_b);
        let api_a = Api::at(setup_a.addr, &api_key);
        let api_b = Api::at(setup_b.addr, &api_key);
        // Ready: every lane is held by some instance.
        for api in [&api_a, &api_b] {
            let (status, body) = api.get("/readyz").await;
            assert_eq!(status, 200, "{body}");
        }

        // A new outbox row is announced on PostgreSQL with its lane's address.
        let mut listener = sqlx::postgres::PgListener::connect(&url)
            .await
            .expect("listen");
        listener
            .listen_all([OUTBOX_CHANNEL, PAYMENT_CHANNEL])
            .await
            .expect("listen");

        // Payments of both lanes through both instances: each lane's rows are sent by the
        // instance holding it, whichever instance took the request.
        let mut paid: Vec<(String, Address)> = Vec::new();
        for i in 0..8usize {
            let lane = lanes[i % 2];
            let api = if (i / 2) % 2 == 0 { &api_a } else { &api_b };
            let view = pay(api, &chain, lane, &format!("lane-{i}")).await;
            paid.push((view["id"].as_str().expect("id").to_owned(), lane));
        }
        // Each lane's rows were announced, and so was each payment leaving `authorizing`.
        let mut announced = BTreeSet::new();
        let mut settled = BTreeSet::new();
        while announced.len() < 2 || settled.len() < paid.len() {
            let n = tokio::time::timeout(WAIT, listener.recv())
                .await
                .unwrap_or_else(|_| panic!("lanes {announced:?}, payments {settled:?}"))
                .expect("notification");
            if n.channel() == PAYMENT_CHANNEL {
                settled.insert(n.payload().to_owned());
            } else {
                announced.insert(n.payload().parse::<Address>().expect("lane address"));
            }
        }
        assert_eq!(announced, lanes.iter().copied().collect::<BTreeSet<_>>());
        let ids: BTreeSet<String> = paid.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(settled, ids);
        // Capture the even ones, void the odd ones, through the other instance.
        for (i, (id, _)) in paid.iter().enumerate() {
            let api = if (i / 2) % 2 == 0 { &api_b } else { &api_a };
            let (action, want) = if i % 4 < 2 {
                ("capture", "captured")
            } else {
                ("void", "voided")
            };
            let (status, view) = api.act(id, action, &json!({}), &format!("{action}-{i}")).await;
            assert!(status == 200 || status == 202, "{action} {id}: {status} {view}");
            api.wait_status(id, &[want], WAIT).await;
        }
        // Every call of every payment came from its own lane's key; both lanes sent.
        let mut senders = BTreeSet::new();
        for (id, lane) in &paid {
            assert_sent_by_lane(&api_a, &chain, id, *lane).await;
            senders.insert(*lane);
        }
        assert_eq!(senders.len(), 2);
        for lane in &lanes {
            let sent = count(
                &store,
                &format!(
                    "chain_txs WHERE signer = '{}' AND status = 'final' AND kind <> 'delegate'",
                    alloy::hex::encode_prefixed(lane.as_slice())
                ),
            )
            .await;
            assert!(sent > 0, "lane {lane} sent nothing");
        }

        // Kill B: its lane is held by nobody until the lease expires. Payments of that lane
        // wait, then A takes it over and they complete; a hold of B's lane from before the
        // kill is captured through A.
        let held_before = paid
            .iter()
            .find(|(_, lane)| *lane == lane_b)
            .map(|(id, _)| id.clone())
            .expect("a payment of B's lane");
        let extra = pay(&api_a, &chain, lane_b, "before-kill").await;
        let extra_id = extra["id"].as_str().expect("id").to_owned();
        b.kill();
        let mut pending = Vec::new();
        for i in 0..3 {
            let rid = format!("after-kill-{i}");
            let req = chain.requirements(AMOUNT, lane_b, chain.receiver).await;
            let body = chain.authorize_body(req, &chain.payer, &rid).await;
            // Answered at once (`authorizing`): nobody holds the lane yet.
            let (status, view) = api_a
                .post("/v1/payments/authorize?wait=0", &body, &rid)
                .await;
            assert!(status == 201 || status == 202, "{rid}: {status} {view}");
            pending.push(view["id"].as_str().expect("id").to_owned());
        }
        let (status, view) = api_a
            .act(&extra_id, "capture", &json!({}), "capture-after-kill")
            .await;
        assert!(status == 200 || status == 202, "{status} {view}");
        let both_a_again: BTreeMap<Address, String> =
            lanes.iter().map(|l| (*l, "op-a".to_owned())).collect();
        wait_owners(&store, &both_a_again, "A took B's lane over").await;
        api_a.wait_status(&extra_id, &["captured"], WAIT).await;
        for id in &pending {
            api_a.wait_status(id, &["authorized"], WAIT).await;
            assert_sent_by_lane(&api_a, &chain, id, lane_b).await;
        }
        assert_sent_by_lane(&api_a, &chain, &extra_id, lane_b).await;
        assert_sent_by_lane(&api_a, &chain, &held_before, lane_b).await;

        // Nothing left in flight; each lane's nonces were used without a gap.
        settle(&store, WAIT).await;
        for lane in &lanes {
            let signer = alloy::hex::encode_prefixed(lane.as_slice());
            let used = count(
                &store,
                &format!(
                    "chain_txs WHERE signer = '{signer}' AND status IN ('final', 'reverted') AND mined_tx_hash IS NOT NULL"
                ),
            )
            .await
                + count(
                    &store,
                    &format!(
                        "chain_txs WHERE signer = '{signer}' AND kind = 'delegate' AND status IN ('final', 'reverted')"
                    ),
                )
                .await;
            assert_eq!(chain.nonce(*lane).await, used as u64, "lane {lane}");
        }
        a.terminate().await;
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_signer_keys_stop_every_command() {
    let chain = Chain::start().await;
    let keys = keys_env(&lane_keys(&chain));
    let url = "sqlite::memory:";
    for (value, want) in [
        (
            format!("{keys},"),
            "X402_SIGNER_KEYS entry 2 is empty".to_owned(),
        ),
        (
            format!("{keys},0x1234"),
            "X402_SIGNER_KEYS entry 2 is not a 32-byte hex private key".to_owned(),
        ),
        (
            format!("{keys},{}", keys.split(',').next().expect("key")),
            "X402_SIGNER_KEYS entries 0 and 2 are the same key".to_owned(),
        ),
    ] {
        let setup = instance("lanes-bad", "op-x", url, &chain, &value);
        let out = setup.cli(&["migrate"]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted {want}");
        assert!(stderr.contains(&want), "want {want:?} in {stderr}");
        assert!(
            !stderr.contains(&keys[2..20]),
            "the error repeats a key: {stderr}"
        );
    }
    // Both variables at once.
    let mut setup = instance("lanes-bad", "op-y", url, &chain, &keys);
    setup.env.push((
        "X402_SIGNER_KEY".into(),
        alloy::hex::encode(chain.operator.to_bytes()),
    ));
    let out = setup.cli(&["migrate"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("X402_SIGNER_KEY and X402_SIGNER_KEYS are both set"),
        "{stderr}"
    );
}

/// Payments name their operator (`captureAuthorizer`) on chain: only that key can capture, void
/// or refund them until their `refundExpiry`. Starting without it is refused, naming the address
/// and the payments; payments whose windows closed, or that are settled, need no key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_lane_with_live_payments_stops_start_up() {
    use x402_escrow_operator::runtime::{self, RuntimeError};
    use x402_escrow_operator::store::PaymentInfoRecord;

    let chain = Chain::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/operator.db?mode=rwc", dir.path().display());
    let config = operator_support::config(&db_url, &chain);
    let core = runtime::open(&config).await.expect("one lane, no payments");
    let store = core.store.clone();
    let merchant = store_support::merchant(&store).await;
    let retired = chain.key(7).expect("key 7").address();
    let now = chain.now().await;
    let chain_id = chain.deployment.chain_id;
    let insert = |seed: u64, operator: Address, refund_expiry: u64| {
        let store = store.clone();
        async move {
            let mut new = store_support::new_payment(merchant, seed);
            new.chain_id = chain_id;
            new.info = PaymentInfoRecord {
                operator,
                pre_approval_expiry: refund_expiry.min(now + 60),
                authorization_expiry: refund_expiry,
                refund_expiry,
                ..new.info
            };
            store.insert_payment(&new, None).await.expect("insert")
        }
    };
    // The other key's payments, all windows closed: no key needed.
    insert(1, retired, now - 10).await;
    runtime::open(&config)
        .await
        .expect("closed payments need no key");
    // Two live payments naming it: refused, with the address, the count and the deadline.
    insert(2, retired, now + 86_400).await;
    insert(3, retired, now + 2 * 86_400).await;
    match runtime::open(&config).await {
        Err(RuntimeError::LaneRetired {
            operator,
            payments,
            until,
        }) => {
            assert_eq!(operator, retired);
            assert_eq!(payments, 2);
            assert_eq!(until, now + 2 * 86_400);
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("started without the key live payments need"),
    }
    // With its key back as a lane, it starts.
    let mut both = config.clone();
    both.signer.private_key = None;
    both.signer.private_keys = lane_keys(&chain)
        .iter()
        .map(|k| x402_escrow_operator::config::Secret::new(alloy::hex::encode(k.to_bytes())))
        .collect();
    runtime::open(&both).await.expect("both lanes");
}
