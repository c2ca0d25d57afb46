//! The chain indexer against a real anvil, on SQLite and PostgreSQL: a full payment lifecycle
//! (authorize, capture, refund, void; authorize then the payer's reclaim after expiry) indexed
//! exactly once with every field, restart from the stored cursor, a reorg through
//! `anvil_reorg`, and an RPC outage.

mod operator_support;
mod store_support;

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::network::TransactionBuilder;
use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::rpc::types::anvil::{ReorgOptions, TransactionData};
use alloy::sol_types::SolCall;
use operator_support::{mined, mined_tx};
use store_support::*;
use x402_escrow_bindings::eip3009::Authorization;
use x402_escrow_bindings::{
    AuthCaptureEscrow, PaymentInfo, ReceiveWithAuthorization, TestUSDC, payment_info_hash,
};
use x402_escrow_operator::indexer::{
    DepositWatch, EscrowEvent, EventEffect, EventFee, Indexer, IndexerConfig, IndexerError,
    IndexerUpdate,
    OnChainPaymentState, Origin, ReadMode, event_effect,
};
use x402_escrow_operator::lifecycle::PaymentEvent;
use x402_escrow_operator::store::{
    ChainEvent, DEPOSIT_EVENT, DepositOutcome, IndexerCursor, ReserveReason, Store,
};
use x402_escrow_testkit::Proxy;

store_tests!(
    lifecycle_indexed_once_and_resumes,
    reorg_replaces_events,
    reorg_deeper_than_the_window,
    rpc_outage_then_resume,
    safe_mode_stays_behind_the_head,
    two_instances_index_concurrently,
    reserve_deposit_credited_once_and_reorged_away,
);

/// A provider without a wallet on `url` (what the indexer reads through).
fn reader(url: &str) -> DynProvider {
    ProviderBuilder::new()
        .connect_http(url.parse().expect("url"))
        .erased()
}

/// The shared test chain (derefs to it: dev key 1 is the operator, key 2 the funded payer,
/// address 3 the receiver), calling the escrow directly as the operator and the payer.
struct Chain {
    kit: operator_support::Chain,
    /// Signs with the operator's key.
    op: DynProvider,
    /// Signs with the payer's key.
    payer_p: DynProvider,
    salt: u64,
}

impl std::ops::Deref for Chain {
    type Target = operator_support::Chain;

    fn deref(&self) -> &operator_support::Chain {
        &self.kit
    }
}

impl Chain {
    async fn start() -> Chain {
        let kit = operator_support::Chain::start().await;
        Chain {
            op: kit.provider_for(&kit.operator),
            payer_p: kit.provider_for(&kit.payer),
            kit,
            salt: 0,
        }
    }

    fn config(&self) -> IndexerConfig {
        IndexerConfig {
            chain_id: self.deployment.chain_id,
            escrow: self.escrow(),
            start_block: 0,
            mode: ReadMode::Latest,
            max_range: 5, // small, so catching up takes several ranges
            window: 64,
            reorg_depth: 64,
            poll_interval: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        }
    }

    fn indexer(&self, store: &Store) -> Indexer {
        self.indexer_with(store, self.config())
    }

    fn indexer_with(&self, store: &Store, config: IndexerConfig) -> Indexer {
        Indexer::new(store.clone(), self.plain.clone(), config)
    }

    async fn payment(&mut self, max: u64) -> (PaymentInfo, B256) {
        self.salt += 1;
        let now = self.now().await;
        let info = PaymentInfo {
            operator: self.operator.address(),
            payer: self.payer.address(),
            receiver: self.receiver,
            token: self.token(),
            maxAmount: U120::from(max),
            preApprovalExpiry: U48::from(now + 600),
            authorizationExpiry: U48::from(now + 3600),
            refundExpiry: U48::from(now + 86_400),
            minFeeBps: 0,
            maxFeeBps: 100,
            feeReceiver: Address::ZERO,
            salt: U256::from(self.salt),
        };
        let hash = payment_info_hash(&info, self.deployment.chain_id, self.escrow());
        (info, hash)
    }

    /// The calldata of `authorize(info, amount)` with the payer's signature.
    fn authorize_call(&self, info: &PaymentInfo, amount: u64) -> Bytes {
        let d = &self.deployment;
        let domain = d.token.as_ref().expect("token").domain(d.chain_id);
        let sig = ReceiveWithAuthorization::for_payment(
            info,
            d.erc3009_payment_collector,
            d.chain_id,
            self.escrow(),
        )
        .sign(&self.payer, &domain)
        .expect("sign");
        AuthCaptureEscrow::authorizeCall {
            paymentInfo: info.clone(),
            amount: U256::from(amount),
            tokenCollector: d.erc3009_payment_collector,
            collectorData: sig,
        }
        .abi_encode()
        .into()
    }

    /// Sends `input` to the escrow as the operator; returns (tx hash, block number, block hash).
    async fn send(&self, input: Bytes) -> (B256, u64, B256) {
        let tx = TransactionRequest::default()
            .with_to(self.escrow())
            .with_input(input);
        let receipt = mined_tx(&self.op, tx).await;
        assert!(receipt.status(), "escrow call reverted");
        (
            receipt.transaction_hash,
            receipt.block_number.expect("block number"),
            receipt.block_hash.expect("block hash"),
        )
    }

    async fn authorize(&self, info: &PaymentInfo, amount: u64) -> (B256, u64, B256) {
        self.send(self.authorize_call(info, amount)).await
    }

    async fn capture(&self, info: &PaymentInfo, amount: u64) -> (B256, u64, B256) {
        let call = AuthCaptureEscrow::captureCall {
            paymentInfo: info.clone(),
            amount: U256::from(amount),
            feeBps: 100,
            feeReceiver: self.fee_receiver,
        };
        self.send(call.abi_encode().into()).await
    }

    async fn refund(&self, info: &PaymentInfo, amount: u64) -> (B256, u64, B256) {
        self.mint(self.operator.address(), amount).await;
        mined(TestUSDC::new(self.token(), &self.op).approve(
            self.deployment.operator_refund_collector,
            U256::from(amount),
        ))
        .await;
        let call = AuthCaptureEscrow::refundCall {
            paymentInfo: info.clone(),
            amount: U256::from(amount),
            tokenCollector: self.deployment.operator_refund_collector,
            collectorData: Bytes::new(),
        };
        self.send(call.abi_encode().into()).await
    }

    async fn void(&self, info: &PaymentInfo) -> (B256, u64, B256) {
        let call = AuthCaptureEscrow::voidCall {
            paymentInfo: info.clone(),
        };
        self.send(call.abi_encode().into()).await
    }

    async fn reclaim_after_expiry(&self, info: &PaymentInfo) -> (B256, u64, B256) {
        let expiry: u64 = info.authorizationExpiry.to();
        self.op
            .anvil_set_next_block_timestamp(expiry)
            .await
            .expect("set time");
        self.op.anvil_mine(Some(1), None).await.expect("mine");
        let receipt =
            mined(AuthCaptureEscrow::new(self.escrow(), &self.payer_p).reclaim(info.clone())).await;
        assert!(receipt.status());
        (
            receipt.transaction_hash,
            receipt.block_number.expect("n"),
            receipt.block_hash.expect("h"),
        )
    }

    /// The indexer's stored cursor for the escrow (`None` before its first range).
    async fn cursor(&self, store: &Store) -> Option<IndexerCursor> {
        store.cursor(31337, self.escrow()).await.expect("cursor")
    }

    /// The cursor stands right after the head, whose hash it remembers; the head.
    async fn assert_cursor_at_head(&self, store: &Store) -> u64 {
        let head = self.head().await;
        let cursor = self.cursor(store).await.expect("set");
        assert_eq!(cursor.next_block, head + 1);
        assert_eq!(cursor.last_block_hash, Some(self.hash_of(head).await));
        head
    }

    async fn head(&self) -> u64 {
        self.op.get_block_number().await.expect("head")
    }

    async fn hash_of(&self, n: u64) -> B256 {
        self.op
            .get_block_by_number(BlockNumberOrTag::Number(n))
            .await
            .expect("block")
            .expect("exists")
            .header
            .hash
    }
}

/// Ticks until the indexer reached the head (bounded: fails after 200 passes).
async fn catch_up(indexer: &Indexer) -> Vec<ChainEvent> {
    let mut stored = Vec::new();
    for _ in 0..200 {
        let outcome = indexer.tick().await.expect("tick");
        stored.extend(outcome.new_events.iter().cloned());
        if outcome.caught_up() {
            return stored;
        }
    }
    panic!("indexer did not catch up in 200 passes");
}

fn live(events: &[ChainEvent]) -> Vec<&ChainEvent> {
    events.iter().filter(|e| !e.removed).collect()
}

fn check(e: &ChainEvent, name: &str, amount: u128, at: (B256, u64, B256)) {
    assert_eq!(e.event_name, name);
    assert_eq!(e.amount, Some(amount), "{name}");
    assert_eq!((e.tx_hash, e.block_number, e.block_hash), at, "{name}");
    assert!(!e.removed);
    let typed = EscrowEvent::from_stored(e).expect("typed");
    assert_eq!(typed.amount(), Some(amount));
    assert_eq!(typed.payment_hash(), e.payment_hash);
}

async fn lifecycle_indexed_once_and_resumes(ctx: Ctx) {
    let store = ctx.store.clone();
    let mut chain = Chain::start().await;
    let indexer = chain.indexer(&store);
    let mut updates = indexer.subscribe();
    let notify = indexer.notifier();

    // Payment 1: authorize -> capture (1% fee) -> refund -> void.
    let (info1, h1) = chain.payment(1_000_000).await;
    let auth1 = chain.authorize(&info1, 1_000_000).await;
    let cap1 = chain.capture(&info1, 600_000).await;
    let ref1 = chain.refund(&info1, 100_000).await;
    let void1 = chain.void(&info1).await;
    // Payment 2: authorize part, then the payer reclaims after expiry.
    let (info2, h2) = chain.payment(500_000).await;
    let auth2 = chain.authorize(&info2, 300_000).await;
    let recl2 = chain.reclaim_after_expiry(&info2).await;

    let stored = catch_up(&indexer).await;
    // A wake-up is pending for the engine, and updates were broadcast.
    tokio::time::timeout(Duration::from_secs(5), notify.notified())
        .await
        .expect("notified");
    let mut seen = 0;
    while let Ok(u) = updates.try_recv() {
        if let IndexerUpdate::NewEvents { count, .. } = u {
            seen += count;
        }
    }
    assert_eq!(seen, stored.len());

    let p1 = store.events_for_payment(h1).await.expect("events");
    assert_eq!(p1.len(), 4, "{p1:#?}");
    check(&p1[0], "PaymentAuthorized", 1_000_000, auth1);
    check(&p1[1], "PaymentCaptured", 600_000, cap1);
    check(&p1[2], "PaymentRefunded", 100_000, ref1);
    check(&p1[3], "PaymentVoided", 400_000, void1);
    match EscrowEvent::from_stored(&p1[0]).expect("typed") {
        EscrowEvent::Authorized {
            payment_info,
            token_collector,
            ..
        } => {
            assert_eq!(payment_info, info1);
            assert_eq!(token_collector, chain.deployment.erc3009_payment_collector);
        }
        other => panic!("{other:?}"),
    }
    match EscrowEvent::from_stored(&p1[1]).expect("typed") {
        EscrowEvent::Captured {
            fee, fee_receiver, ..
        } => assert_eq!(
            (fee, fee_receiver),
            (EventFee::Bps(100), chain.fee_receiver)
        ),
        other => panic!("{other:?}"),
    }
    match EscrowEvent::from_stored(&p1[2]).expect("typed") {
        EscrowEvent::Refunded {
            token_collector, ..
        } => assert_eq!(token_collector, chain.deployment.operator_refund_collector),
        other => panic!("{other:?}"),
    }
    assert_eq!(p1[1].data["feeBps"], 100);

    let p2 = store.events_for_payment(h2).await.expect("events");
    assert_eq!(p2.len(), 2, "{p2:#?}");
    check(&p2[0], "PaymentAuthorized", 300_000, auth2);
    check(&p2[1], "PaymentReclaimed", 300_000, recl2);
    assert_eq!(
        event_effect(&EscrowEvent::from_stored(&p2[1]).expect("typed")),
        EventEffect::Payment {
            payment_hash: h2,
            event: PaymentEvent::ReclaimObserved { amount: 300_000 },
            origin: Origin::Payer,
        }
    );

    // Everything stored once: 6 payment events plus the operator's TokenStoreCreated.
    let unprocessed = store
        .unprocessed_events(31337, 100)
        .await
        .expect("unprocessed");
    assert_eq!(unprocessed.len(), 7, "{unprocessed:#?}");
    assert_eq!(stored.len(), 7);
    assert_eq!(
        unprocessed
            .iter()
            .filter(|e| e.event_name == "TokenStoreCreated")
            .count(),
        1
    );
    let head = chain.assert_cursor_at_head(&store).await;

    // Idempotent: passes with nothing new store nothing; re-reading from scratch neither.
    for _ in 0..3 {
        let o = indexer.tick().await.expect("tick");
        assert!(o.new_events.is_empty() && o.reorg.is_none());
    }
    store
        .set_cursor(31337, chain.escrow(), 0, None)
        .await
        .expect("reset cursor");
    assert!(catch_up(&indexer).await.is_empty(), "re-read adds nothing");

    // The chain state agrees.
    assert_eq!(
        indexer.read_payment_state(h1).await.expect("state"),
        OnChainPaymentState {
            has_collected_payment: true,
            capturable: 0,
            refundable: 500_000
        }
    );
    let (_, h_unknown) = chain.payment(1).await;
    assert_eq!(
        indexer
            .read_payment_states(&[h2, h_unknown, h1])
            .await
            .expect("states"),
        vec![
            OnChainPaymentState {
                has_collected_payment: true,
                capturable: 0,
                refundable: 0
            },
            OnChainPaymentState::default(),
            OnChainPaymentState {
                has_collected_payment: true,
                capturable: 0,
                refundable: 500_000
            },
        ]
    );

    // Restart: a new indexer (second instance, own pool) continues from the stored cursor.
    drop(indexer);
    let (info3, h3) = chain.payment(200_000).await;
    let auth3 = chain.authorize(&info3, 200_000).await;
    let store2 = ctx.second_instance().await;
    let restarted = chain.indexer(&store2);
    let first = restarted.tick().await.expect("tick");
    assert_eq!(
        first.range.map(|r| r.0),
        Some(head + 1),
        "starts at the cursor"
    );
    let new = catch_up(&restarted).await;
    let all_new: Vec<_> = first.new_events.iter().chain(new.iter()).collect();
    assert_eq!(all_new.len(), 1);
    check(all_new[0], "PaymentAuthorized", 200_000, auth3);
    assert_eq!(all_new[0].payment_hash, Some(h3));
    assert_eq!(
        store.unprocessed_events(31337, 100).await.expect("u").len(),
        8
    );
    store2.close().await;
}

async fn reorg_replaces_events(ctx: Ctx) {
    reorg_scenario(ctx, 64).await
}

/// Only the last 2 block hashes remembered: a depth-3 reorg replaced all of them, so the
/// indexer cannot find the common ancestor and rewinds `reorg_depth` blocks; events of the
/// unchanged blocks come back (revived), the replaced ones stay removed.
async fn reorg_deeper_than_the_window(ctx: Ctx) {
    reorg_scenario(ctx, 2).await
}

async fn reorg_scenario(ctx: Ctx, window: u32) {
    let store = ctx.store.clone();
    let mut chain = Chain::start().await;
    let indexer = chain.indexer_with(
        &store,
        IndexerConfig {
            window,
            reorg_depth: 8,
            ..chain.config()
        },
    );
    let mut updates = indexer.subscribe();

    // A first payment so the TokenStore exists before the blocks that get replaced.
    let (info0, h0) = chain.payment(10).await;
    chain.authorize(&info0, 10).await;
    catch_up(&indexer).await;

    // Blocks N, N+1, N+2: authorize A, capture A, authorize B.
    let (info_a, h_a) = chain.payment(100_000).await;
    let (info_b, h_b) = chain.payment(50_000).await;
    let (info_c, h_c) = chain.payment(70_000).await;
    let nonce_at_fork = chain
        .op
        .get_transaction_count(chain.operator.address())
        .await
        .expect("nonce");
    let a = chain.authorize(&info_a, 100_000).await;
    chain.capture(&info_a, 40_000).await;
    chain.authorize(&info_b, 50_000).await;
    let head = chain.head().await;
    assert_eq!(a.1, head - 2);
    let stored = catch_up(&indexer).await;
    // A's authorize and capture, B's authorize (plus the operator's TokenStoreCreated, which
    // the escrow emits when the store is first needed).
    let payment_events = |v: &[ChainEvent]| v.iter().filter(|e| e.payment_hash.is_some()).count();
    assert_eq!(payment_events(&stored), 3, "{stored:#?}");
    let old_hashes = [
        chain.hash_of(head - 2).await,
        chain.hash_of(head - 1).await,
        chain.hash_of(head).await,
    ];

    // Replace the last 3 blocks: the new chain has only an authorize of C, in its second block.
    let tx = TransactionRequest::default()
        .with_from(chain.operator.address())
        .with_to(chain.escrow())
        .with_input(chain.authorize_call(&info_c, 70_000))
        .with_nonce(nonce_at_fork)
        .with_gas_limit(1_000_000)
        .with_max_fee_per_gas(20_000_000_000)
        .with_max_priority_fee_per_gas(1_000_000_000);
    chain
        .op
        .anvil_reorg(ReorgOptions {
            depth: 3,
            tx_block_pairs: vec![(TransactionData::JSON(tx), 1)],
        })
        .await
        .expect("anvil_reorg");
    let new_head = chain.head().await;
    assert_eq!(new_head, head, "same height, different blocks");
    for (i, old) in old_hashes.iter().enumerate() {
        assert_ne!(chain.hash_of(head - 2 + i as u64).await, *old);
    }

    let first = indexer.tick().await.expect("tick after reorg");
    let reorg = first.reorg.clone().expect("reorg detected");
    if window > 3 {
        assert_eq!(reorg.from_block, head - 2, "rewound to the common ancestor");
        assert_eq!(reorg.ancestor_hash, Some(chain.hash_of(head - 3).await));
        assert_eq!(payment_events(&reorg.removed), 3);
        assert_eq!(reorg.removed.len(), stored.len());
    } else {
        assert_eq!(
            reorg.from_block,
            head + 1 - 8,
            "blind rewind by reorg_depth"
        );
        assert_eq!(reorg.ancestor_hash, None);
        assert!(payment_events(&reorg.removed) >= 3);
    }
    let mut all_new = first.new_events.clone();
    all_new.extend(catch_up(&indexer).await);

    // A and B's events are removed, C's is stored in its canonical block.
    for h in [h_a, h_b] {
        let events = store.events_for_payment(h).await.expect("events");
        assert!(
            !events.is_empty() && events.iter().all(|e| e.removed),
            "{events:#?}"
        );
    }
    let c = store.events_for_payment(h_c).await.expect("events");
    assert_eq!(live(&c).len(), 1, "{c:#?}");
    assert_eq!(c[0].event_name, "PaymentAuthorized");
    assert_eq!(c[0].amount, Some(70_000));
    assert_eq!(c[0].block_hash, chain.hash_of(c[0].block_number).await);
    assert_eq!(
        all_new
            .iter()
            .filter(|e| e.payment_hash.is_some() && e.payment_hash != Some(h0))
            .count(),
        1
    );
    assert_eq!(
        live(&store.events_for_payment(h0).await.expect("e")).len(),
        1
    );
    // The engine's view: only live events, and a Reorg update naming A and B.
    let unprocessed = store.unprocessed_events(31337, 100).await.expect("u");
    assert!(
        unprocessed
            .iter()
            .all(|e| e.payment_hash != Some(h_a) && e.payment_hash != Some(h_b))
    );
    let mut reorg_hashes = None;
    while let Ok(u) = updates.try_recv() {
        if let IndexerUpdate::Reorg { payment_hashes, .. } = u {
            reorg_hashes = Some(payment_hashes);
        }
    }
    let reorg_hashes = reorg_hashes.expect("a Reorg update");
    if window > 3 {
        let mut expected = vec![h_a, h_b];
        expected.sort();
        assert_eq!(reorg_hashes, expected);
    } else {
        // The blind rewind also touched payment 0 (its event is back, unprocessed).
        assert!(reorg_hashes.contains(&h_a) && reorg_hashes.contains(&h_b));
    }
    // The cursor is on the new chain; the chain agrees.
    let cursor = chain.cursor(&store).await.expect("set");
    let head = chain.head().await;
    assert_eq!(cursor.next_block, head + 1);
    assert_eq!(cursor.last_block_hash, Some(chain.hash_of(head).await));
    assert!(
        !indexer
            .read_payment_state(h_a)
            .await
            .expect("s")
            .has_collected_payment
    );
    assert_eq!(
        indexer.read_payment_state(h_c).await.expect("s").capturable,
        70_000
    );

    // A second, empty reorg (no transactions) removes C's event too; nothing is left live above
    // the ancestor and the next passes are quiet.
    chain
        .op
        .anvil_reorg(ReorgOptions {
            depth: 3,
            tx_block_pairs: vec![],
        })
        .await
        .expect("anvil_reorg");
    let o = indexer.tick().await.expect("tick");
    let removed = o.reorg.expect("reorg").removed;
    assert!(removed.iter().any(|e| e.payment_hash == Some(h_c)));
    if window > 3 {
        assert_eq!(payment_events(&removed), 1, "only C's block was replaced");
    }
    catch_up(&indexer).await;
    assert!(live(&store.events_for_payment(h_c).await.expect("e")).is_empty());
    let o = indexer.tick().await.expect("tick");
    assert!(o.reorg.is_none() && o.new_events.is_empty());
}

async fn rpc_outage_then_resume(ctx: Ctx) {
    let store = ctx.store.clone();
    let mut chain = Chain::start().await;
    let anvil = format!("127.0.0.1:{}", chain.anvil.port());
    let proxy = Proxy::start(anvil.parse().expect("anvil's address"))
        .await
        .expect("proxy");
    let indexer = Indexer::new(store.clone(), reader(&proxy.url()), chain.config());

    // A closed port from the start: a typed, transient error and nothing written.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        Indexer::new(
            store.clone(),
            reader(&format!("http://127.0.0.1:{port}")),
            chain.config(),
        )
    };
    let err = closed.tick().await.expect_err("no rpc");
    assert!(matches!(err, IndexerError::Rpc(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(chain.cursor(&store).await.is_none());

    let (info1, h1) = chain.payment(1_000).await;
    chain.authorize(&info1, 1_000).await;
    catch_up(&indexer).await;
    let before = chain.cursor(&store).await.expect("set");

    // The RPC goes away; the chain moves on meanwhile.
    proxy.set_down(true).await;
    let (info2, h2) = chain.payment(2_000).await;
    chain.authorize(&info2, 2_000).await;
    chain.capture(&info1, 500).await;
    for _ in 0..3 {
        let err = indexer.tick().await.expect_err("rpc down");
        assert!(err.is_transient(), "{err:?}");
    }
    assert_eq!(
        chain.cursor(&store).await,
        Some(before.clone()),
        "no progress recorded while down"
    );

    // `run` keeps retrying with backoff, and resumes when the RPC is back.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let indexer = Arc::new(indexer);
    let runner = {
        let indexer = indexer.clone();
        tokio::spawn(async move { indexer.run(stop_rx).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set_down(false).await;
    let head = chain.head().await;
    let mut ok = false;
    for _ in 0..200 {
        let c = chain.cursor(&store).await.expect("set");
        if c.next_block > head {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "indexer resumed after the outage");
    stop_tx.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .expect("run stops on shutdown")
        .expect("joined");
    let p1 = store.events_for_payment(h1).await.expect("e");
    assert_eq!(
        p1.iter().map(|e| e.event_name.as_str()).collect::<Vec<_>>(),
        ["PaymentAuthorized", "PaymentCaptured"]
    );
    assert_eq!(store.events_for_payment(h2).await.expect("e").len(), 1);
}

async fn safe_mode_stays_behind_the_head(ctx: Ctx) {
    let store = ctx.store.clone();
    let mut chain = Chain::start().await;
    let indexer = chain.indexer_with(
        &store,
        IndexerConfig {
            mode: ReadMode::Safe { confirmations: 2 },
            ..chain.config()
        },
    );
    let (info, h) = chain.payment(1_000).await;
    chain.authorize(&info, 1_000).await;
    catch_up(&indexer).await;
    let head = chain.head().await;
    let cursor = chain.cursor(&store).await.expect("set");
    assert_eq!(cursor.next_block, head - 1, "reads up to head - 2");
    assert!(store.events_for_payment(h).await.expect("e").is_empty());
    chain.op.anvil_mine(Some(2), None).await.expect("mine");
    catch_up(&indexer).await;
    assert_eq!(store.events_for_payment(h).await.expect("e").len(), 1);
}

/// Two operator instances (own pools) index the same escrow at once: cursor moves are
/// compare-and-set, so each range is recorded once and every event stored once.
async fn two_instances_index_concurrently(ctx: Ctx) {
    let store = ctx.store.clone();
    let other = ctx.second_instance().await;
    let mut chain = Chain::start().await;
    let mut hashes = Vec::new();
    for i in 0..4u64 {
        let (info, h) = chain.payment(1_000 + i).await;
        chain.authorize(&info, 1_000 + i).await;
        hashes.push(h);
    }
    let (a, b) = (chain.indexer(&store), chain.indexer(&other));
    let (sa, sb) = tokio::join!(catch_up(&a), catch_up(&b));
    chain.assert_cursor_at_head(&store).await;
    let payment_events = sa
        .iter()
        .chain(sb.iter())
        .filter(|e| e.payment_hash.is_some())
        .count();
    assert_eq!(
        payment_events, 4,
        "each event reported by exactly one instance"
    );
    for h in hashes {
        assert_eq!(store.events_for_payment(h).await.expect("e").len(), 1);
    }
    other.close().await;
}

/// A refund-reserve deposit on a real chain: the merchant's registered address transfers tokens
/// to the operator's refund account; the indexer stores the `Transfer` (and not one to anyone
/// else), the store credits it once (processing it again credits nothing), and a reorg that
/// drops its block takes the credit back in the rewind's transaction.
async fn reserve_deposit_credited_once_and_reorged_away(ctx: Ctx) {
    let store = ctx.store.clone();
    let chain = Chain::start().await;
    let m = merchant(&store).await;
    let refund_account = chain.operator.address();
    store
        .add_deposit_address(m, chain.payer.address())
        .await
        .expect("deposit address");
    let indexer = chain.indexer(&store).with_deposits(DepositWatch {
        refund_account,
        tokens: vec![chain.token()],
    });
    let usdc = TestUSDC::new(chain.token(), chain.payer_p.clone());
    // Not to the refund account: not a deposit.
    mined(usdc.transfer(chain.receiver, U256::from(11u64))).await;
    let receipt = mined(usdc.transfer(refund_account, U256::from(750_000u64))).await;
    let deposit_block = receipt.block_number.expect("block");
    let stored = catch_up(&indexer).await;
    let deposits: Vec<&ChainEvent> = stored
        .iter()
        .filter(|e| e.event_name == DEPOSIT_EVENT)
        .collect();
    assert_eq!(deposits.len(), 1, "{stored:#?}");
    let event = deposits[0];
    assert_eq!(event.tx_hash, receipt.transaction_hash);
    assert_eq!(
        (event.address, event.amount),
        (chain.token(), Some(750_000))
    );
    assert_eq!(event.block_number, deposit_block);

    match store.process_deposit_event(event).await.expect("process") {
        DepositOutcome::Credited(entry) => {
            assert_eq!(entry.amount, 750_000);
            assert_eq!(entry.tx_hash, Some(receipt.transaction_hash));
            assert_eq!(entry.merchant_id, m);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.process_deposit_event(event).await.expect("again"),
        DepositOutcome::AlreadyCredited
    );
    // Re-reading the range stores nothing new.
    assert!(catch_up(&indexer).await.is_empty());
    let token = chain.token();
    let balance = |store: Store| async move {
        store
            .reserve_balance(m, token)
            .await
            .expect("balance")
            .balance
    };
    assert_eq!(balance(store.clone()).await, 750_000);

    // The deposit's block leaves the chain: the credit is taken back.
    let depth = chain.head().await - deposit_block + 1;
    chain
        .op
        .anvil_reorg(ReorgOptions {
            depth,
            tx_block_pairs: vec![],
        })
        .await
        .expect("anvil_reorg");
    let outcome = indexer.tick().await.expect("tick after reorg");
    let reorg = outcome.reorg.expect("reorg detected");
    assert!(
        reorg.removed.iter().any(|e| e.event_name == DEPOSIT_EVENT),
        "{reorg:#?}"
    );
    assert_eq!(balance(store.clone()).await, 0);
    let newest = &store
        .reserve_statement(m, None, None, 1)
        .await
        .expect("statement")[0];
    assert_eq!(newest.reason, ReserveReason::DepositReorged);
    assert!(
        store
            .standing_deposits()
            .await
            .expect("standing")
            .is_empty()
    );
}
