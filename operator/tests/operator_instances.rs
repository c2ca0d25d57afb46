//! Two operator instances (different instance ids and ports) on ONE PostgreSQL database with
//! the same signer key: both serve the API, exactly one holds the signer lease and sends; a
//! payment authorized through the other is sent by the lease holder and seen authorized by the
//! instance that took it (its wait falls back to polling the row). When the holder dies the other
//! takes the lease over and finishes the queued work.

mod operator_support;
mod store_support;

use std::time::{Duration, Instant};

use alloy::primitives::B256;
use operator_support::*;
use x402_escrow_operator::store::{Backend, Store};

const AMOUNT: u64 = 3 * USDC;

async fn lease_owner(store: &Store) -> Option<String> {
    use sqlx::Row;
    sqlx::query("SELECT lease_owner FROM signers")
        .fetch_optional(store.pool())
        .await
        .expect("signers")
        .and_then(|r| r.try_get::<Option<String>, _>("lease_owner").ok().flatten())
}

async fn wait_owner(store: &Store, want: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let owner = lease_owner(store).await;
        if owner.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "lease owner {owner:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_database() {
    with_db(Backend::Postgres, |url| async move {
        let (chain, store, _m, key) = open_shop(&url, None).await;
        let mut cfg_a = config(&url, &chain);
        cfg_a.instance_id = Some("op-a".into());
        let mut cfg_b = config(&url, &chain);
        cfg_b.instance_id = Some("op-b".into());
        let ttl = Duration::from_secs(cfg_a.relayer.lease_ttl_secs);
        let payer0 = chain.balance(chain.payer.address()).await;

        let a = start(&cfg_a).await;
        wait_owner(&store, "op-a", WAIT).await;
        let b = start(&cfg_b).await;
        assert_ne!(a.address, b.address);
        let api_a = Api::new(&a, &key);
        let api_b = Api::new(&b, &key);

        // Through B: the hold is sent by A's relayer; B's wait sees it authorized.
        let req = chain.requirements(AMOUNT, b.signer, chain.receiver).await;
        let body = chain.authorize_body(req, &chain.payer, "via-b").await;
        let (status, p1) = api_b.post("/v1/payments/authorize", &body, "b-1").await;
        assert_eq!(status, 201, "{p1}");
        assert_eq!(p1["status"], "authorized", "{p1}");
        let id1 = p1["id"].as_str().unwrap().to_owned();
        // Through A, and each instance sees the other's payments.
        let req = chain.requirements(AMOUNT, a.signer, chain.receiver).await;
        let body = chain.authorize_body(req, &chain.payer, "via-a").await;
        let (status, p2) = api_a.post("/v1/payments/authorize", &body, "a-1").await;
        assert_eq!(status, 201, "{p2}");
        let id2 = p2["id"].as_str().unwrap().to_owned();
        assert_eq!(api_a.payment(&id1).await["status"], "authorized");
        assert_eq!(api_b.payment(&id2).await["status"], "authorized");
        // A capture through B.
        let (status, c) = api_b
            .act(&id2, "capture", &serde_json::json!({}), "b-cap")
            .await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["status"], "captured", "{c}");
        // Only A ever held the lease (B's relayer sent nothing).
        assert_eq!(lease_owner(&store).await.as_deref(), Some("op-a"));

        // Queue work through B, then the lease holder dies.
        let mut queued: Vec<(String, B256)> = Vec::new();
        for i in 0..4 {
            let req = chain.requirements(AMOUNT, b.signer, chain.receiver).await;
            let body = chain
                .authorize_body(req, &chain.payer, &format!("queued-{i}"))
                .await;
            let (status, p) = api_b
                .post("/v1/payments/authorize?wait=0", &body, &format!("q-{i}"))
                .await;
            assert!(status == 201 || status == 202, "{p}");
            queued.push((
                p["id"].as_str().unwrap().to_owned(),
                p["paymentHash"].as_str().unwrap().parse().unwrap(),
            ));
        }
        a.abort();
        // B takes the lease over once A's runs out (bounded, generously above the ttl).
        wait_owner(&store, "op-b", ttl * 2 + Duration::from_secs(5)).await;
        for (id, hash) in &queued {
            let p = api_b.wait_status(id, &["authorized", "failed"], WAIT).await;
            assert_eq!(p["status"], "authorized", "{p}");
            assert_eq!(chain.state(*hash).await, (true, AMOUNT as u128, 0));
        }
        settle(&store, WAIT).await;
        chain.assert_payer_spent(payer0, 6 * AMOUNT as u128).await;
        wind_down(b, store, &chain).await;
    })
    .await
}
