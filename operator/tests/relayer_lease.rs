//! Two relayers on one database (SQLite file and PostgreSQL): only the lease holder claims and
//! sends; when it dies without releasing, the other takes over after expiry and finishes.

mod operator_support;
mod store_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use operator_support::*;
use store_support::*;
use x402_escrow_operator::store::TxStatus;

store_tests!(
    only_the_holder_sends_and_the_other_takes_over,
    a_relayer_whose_lease_was_taken_sends_nothing,
);

async fn only_the_holder_sends_and_the_other_takes_over(ctx: Ctx) {
    let chain = Chain::start().await;
    let store_a = system_store(&ctx.url).await;
    let store_b = system_store(&ctx.url).await;
    let a = relayer(&store_a, &chain, "op-a", opts(1));
    let ha = a.handle();
    // A takes the lease first.
    let task_a = tokio::spawn(a.run(std::future::pending()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ha.health().lease_held {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never took the lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = relayer(&store_b, &chain, "op-b", opts(1));
    let hb = b.handle();
    let (stop_b, task_b) = spawn_relayer(b);

    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(store_a.enqueue_tx(&chain.approve(i)).await.unwrap().id);
        ha.wake();
        hb.wake();
    }
    let rows = wait_settled(&store_a, &ids, Duration::from_secs(60)).await;
    assert!(all_status(&rows, TxStatus::Final), "{rows:?}");
    assert!(ha.metrics().broadcasts.load(Ordering::Relaxed) >= 4);
    assert_eq!(
        hb.metrics().claimed.load(Ordering::Relaxed),
        0,
        "B never claimed"
    );
    assert_eq!(
        hb.metrics().broadcasts.load(Ordering::Relaxed),
        0,
        "B never sent"
    );
    assert!(!hb.health().lease_held);

    // A dies without releasing its lease (no clean shutdown).
    task_a.abort();
    let _ = task_a.await;
    let died_at = tokio::time::Instant::now();
    let mut more = Vec::new();
    for i in 10..13 {
        more.push(store_b.enqueue_tx(&chain.approve(i)).await.unwrap().id);
        hb.wake();
    }
    let rows = wait_settled(&store_b, &more, Duration::from_secs(60)).await;
    assert!(all_status(&rows, TxStatus::Final), "{rows:?}");
    assert!(hb.health().lease_held);
    assert!(hb.metrics().broadcasts.load(Ordering::Relaxed) >= 3);
    // Not before A's lease ran out (3 s ttl, renewed at most 1 s before dying).
    assert!(died_at.elapsed() >= Duration::from_millis(1500));
    let signer = store_b
        .get_signer(CHAIN, chain.operator.address())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(signer.lease_owner.as_deref(), Some("op-b"));
    assert_nonces_clean(&store_b, &chain).await;
    stop_b.send(()).unwrap();
    task_b.await.unwrap();
}

/// Leases are fenced in the database: once another instance holds the lease (here: the old one
/// is forced to expire), the old holder's pass fails with `LeaseLost` and claims nothing.
async fn a_relayer_whose_lease_was_taken_sends_nothing(ctx: Ctx) {
    use x402_escrow_operator::relayer::RelayerError;
    let chain = Chain::start().await;
    let store = system_store(&ctx.url).await;
    let mut a = relayer(&store, &chain, "op-a", opts(1));
    let mut b = relayer(&store, &chain, "op-b", opts(1));
    assert!(a.tick().await.unwrap().lease_held);
    assert!(!b.tick().await.unwrap().lease_held, "A holds it");
    // A's lease runs out behind its back (e.g. a long GC pause); B takes it.
    sqlx::query("UPDATE signers SET lease_expires_at = 0")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(b.tick().await.unwrap().lease_held);
    let id = store.enqueue_tx(&chain.approve(1)).await.unwrap().id;
    let err = a.tick().await.expect_err("A must stop");
    assert!(matches!(err, RelayerError::LeaseLost { .. }), "{err}");
    assert!(!a.handle().health().lease_held);
    assert_eq!(a.handle().metrics().claimed.load(Ordering::Relaxed), 0);
    assert_eq!(store.get_tx(id).await.unwrap().status, TxStatus::Queued);
    // A now just watches; B sends.
    assert!(!a.tick().await.unwrap().lease_held);
    let rows = tick_until_settled(&mut b, &chain, &store, &[id], true).await;
    assert_eq!(rows[0].status, TxStatus::Final);
    assert_eq!(a.handle().metrics().broadcasts.load(Ordering::Relaxed), 0);
}
