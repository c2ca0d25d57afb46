//! The node disappears: passes fail with RPC errors, the loop keeps going with backoff and
//! reports it in `RelayerHealth`; nothing in the database changes; when the node is back the
//! queued work goes through.

mod operator_support;
mod store_support;

use std::time::Duration;

use operator_support::*;
use x402_escrow_operator::relayer::{Relayer, http_provider};
use x402_escrow_operator::store::{Backend, TxStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_node_is_reported_and_retried() {
    store_support::run(Backend::Sqlite, |ctx| async move {
        let chain = Chain::start().await;
        let store = system_store(&ctx.url).await;
        let id = store.enqueue_tx(&chain.approve(1)).await.unwrap().id;
        // A port nothing listens on.
        let dead = http_provider("http://127.0.0.1:9".parse().unwrap());
        let down = Relayer::new(store.clone(), dead, chain.operator.clone(), "op-a", opts(1));
        let handle = down.handle();
        let (stop, task) = spawn_relayer(down);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let h = handle.health();
            if h.consecutive_failures >= 3 {
                assert!(!h.rpc_ok && h.last_error.is_some(), "{h:?}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no failures reported: {h:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.send(()).unwrap();
        task.await.unwrap();
        assert_eq!(
            store.get_tx(id).await.unwrap().status,
            TxStatus::Queued,
            "state kept"
        );

        // The node is reachable again (a relayer on the real endpoint): the work goes through.
        let mut r = relayer(&store, &chain, "op-a", opts(1));
        let rows = tick_until_settled(&mut r, &chain, &store, &[id], true).await;
        assert_eq!(rows[0].status, TxStatus::Final);
        assert!(r.handle().health().rpc_ok);
    })
    .await;
}
