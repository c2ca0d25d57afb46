//! The indexer's store operations (migration 0003): compare-and-set cursor moves with their
//! events and block-hash window, reorg rewinds, and two instances racing. SQLite and PostgreSQL.

mod store_support;

use alloy::primitives::{Address, B256};
use store_support::*;
use x402_escrow_operator::store::{
    CursorPosition, IndexedBlock, IndexerAdvance, NewChainEvent, Store,
};

store_tests!(
    advance_and_rewind,
    concurrent_advances_one_wins,
    a_range_of_many_events
);

const CHAIN: u64 = 31337;

fn escrow() -> Address {
    Address::repeat_byte(0xE5)
}

fn hash(n: u64) -> B256 {
    B256::left_padding_from(&n.to_be_bytes())
}

fn event(block: u64, log_index: u64) -> NewChainEvent {
    NewChainEvent {
        chain_id: CHAIN,
        address: escrow(),
        block_number: block,
        block_hash: hash(block),
        log_index,
        tx_hash: B256::repeat_byte(block as u8),
        event_name: "PaymentVoided".to_owned(),
        payment_hash: Some(B256::repeat_byte(0x77)),
        amount: Some(5),
        data: serde_json::json!({"event": "PaymentVoided"}),
    }
}

fn pos(next_block: u64, last: Option<u64>) -> CursorPosition {
    CursorPosition {
        next_block,
        last_block_hash: last.map(hash),
    }
}

fn blocks(range: std::ops::RangeInclusive<u64>) -> Vec<IndexedBlock> {
    range
        .map(|n| IndexedBlock {
            number: n,
            hash: hash(n),
        })
        .collect()
}

/// The block numbers of the remembered window, newest first.
async fn window(store: &Store) -> Vec<u64> {
    store
        .recent_indexed_blocks(CHAIN, escrow(), 100)
        .await
        .unwrap()
        .iter()
        .map(|b| b.number)
        .collect()
}

async fn advance(
    store: &Store,
    expected: CursorPosition,
    to: u64,
    events: &[NewChainEvent],
) -> Option<usize> {
    let bl = blocks(expected.next_block..=to);
    store
        .advance_indexer(IndexerAdvance {
            chain_id: CHAIN,
            address: escrow(),
            expected,
            next: pos(to + 1, Some(to)),
            events,
            blocks: &bl,
            keep: 4,
        })
        .await
        .expect("advance")
        .map(|v| v.len())
}

async fn advance_and_rewind(ctx: Ctx) {
    let store = ctx.store;
    // First range creates the cursor.
    assert_eq!(
        advance(&store, pos(10, None), 14, &[event(11, 0), event(13, 2)]).await,
        Some(2)
    );
    let c = store.cursor(CHAIN, escrow()).await.unwrap().unwrap();
    assert_eq!((c.next_block, c.last_block_hash), (15, Some(hash(14))));
    // A stale expectation writes nothing (not even its events).
    assert_eq!(
        advance(&store, pos(10, None), 16, &[event(16, 0)]).await,
        None
    );
    assert_eq!(
        advance(&store, pos(15, Some(99)), 16, &[event(16, 0)]).await,
        None
    );
    assert!(store.unprocessed_events(CHAIN, 10).await.unwrap().len() == 2);
    // The window keeps the newest 4 hashes.
    assert_eq!(
        advance(&store, pos(15, Some(14)), 17, &[event(16, 0)]).await,
        Some(1)
    );
    assert_eq!(window(&store).await, vec![17, 16, 15, 14]);
    // Re-reading stored events returns nothing new.
    store
        .set_cursor(CHAIN, escrow(), 15, Some(hash(14)))
        .await
        .unwrap();
    assert_eq!(
        advance(&store, pos(15, Some(14)), 17, &[event(16, 0)]).await,
        Some(0)
    );

    // Rewind to 13: a stale expectation is refused; the right one marks 13+ removed.
    assert!(
        store
            .rewind_indexer(CHAIN, escrow(), pos(17, Some(16)), 13, Some(hash(12)))
            .await
            .unwrap()
            .is_none()
    );
    let removed = store
        .rewind_indexer(CHAIN, escrow(), pos(18, Some(17)), 13, Some(hash(12)))
        .await
        .unwrap()
        .expect("rewound");
    assert_eq!(
        removed.iter().map(|e| e.block_number).collect::<Vec<_>>(),
        vec![13, 16]
    );
    let c = store.cursor(CHAIN, escrow()).await.unwrap().unwrap();
    assert_eq!((c.next_block, c.last_block_hash), (13, Some(hash(12))));
    let window = window(&store).await;
    assert_eq!(window, Vec::<u64>::new(), "14..17 were all at or above 13");
    assert!(window.iter().all(|n| *n < 13));
    assert_eq!(store.unprocessed_events(CHAIN, 10).await.unwrap().len(), 1);
    // The same block coming back revives its event.
    assert_eq!(
        advance(&store, pos(13, Some(12)), 14, &[event(13, 2)]).await,
        Some(1)
    );
    assert_eq!(store.unprocessed_events(CHAIN, 10).await.unwrap().len(), 2);
}

async fn concurrent_advances_one_wins(ctx: Ctx) {
    let store = ctx.store.clone();
    let other = ctx.second_instance().await;
    advance(&store, pos(0, None), 4, &[]).await.expect("start");
    for round in 0..5u64 {
        let from = 5 + round * 5;
        let expected = pos(from, Some(from - 1));
        let ev = [event(from + 1, 0)];
        let (a, b) = tokio::join!(
            advance(&store, expected, from + 4, &ev),
            advance(&other, expected, from + 4, &ev)
        );
        assert!(a.is_some() != b.is_some(), "exactly one wins: {a:?} {b:?}");
        assert_eq!(a.or(b), Some(1));
    }
    assert_eq!(store.unprocessed_events(CHAIN, 100).await.unwrap().len(), 5);
    other.close().await;
}

/// A range with more events than one statement carries (500), one of them listed twice: each
/// is stored and returned once, and reading the range again stores nothing.
async fn a_range_of_many_events(ctx: Ctx) {
    let store = ctx.store;
    let mut events: Vec<_> = (0..1203u64).map(|i| event(20 + i / 100, i % 100)).collect();
    events.push(event(25, 7));
    assert_eq!(
        advance(&store, pos(20, None), 32, &events).await,
        Some(1203)
    );
    let stored = store.unprocessed_events(CHAIN, 5000).await.unwrap();
    let keys: Vec<_> = stored
        .iter()
        .map(|e| (e.block_number, e.log_index))
        .collect();
    // Generated in chain order already (block, then log index).
    let expected: Vec<_> = (0..1203u64).map(|i| (20 + i / 100, i % 100)).collect();
    assert_eq!(keys, expected);
    store.set_cursor(CHAIN, escrow(), 20, None).await.unwrap();
    assert_eq!(advance(&store, pos(20, None), 32, &events).await, Some(0));
    assert_eq!(
        store.unprocessed_events(CHAIN, 5000).await.unwrap().len(),
        1203
    );
}
