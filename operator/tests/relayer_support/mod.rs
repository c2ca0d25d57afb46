//! Helpers shared by the `relayer_*` suites: a fresh anvil with the contracts deployed, relayers
//! on a store (system clock, so leases expire in real time), bounded polling.
#![allow(dead_code)]

use std::collections::HashSet;
use std::time::Duration;

use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use uuid::Uuid;
use x402_escrow_bindings::{AuthCaptureEscrow, PaymentInfo, TestUSDC};
use x402_escrow_operator::relayer::{Relayer, RelayerOptions, http_provider};
use x402_escrow_operator::store::{ChainTx, NewChainTx, Store, TxKind, TxStatus};

pub const CHAIN: u64 = 31337;

/// A fresh anvil with every contract deployed (by key 0; the testkit's
/// [`x402_escrow_testkit::Chain`], which it derefs to: `anvil`, `admin`, `deployment`); the
/// relayer signs with key 1.
pub struct Chain {
    kit: x402_escrow_testkit::Chain,
    /// A provider without fillers (what the relayer uses; also for anvil_* calls).
    pub plain: DynProvider,
    pub key: PrivateKeySigner,
}

impl std::ops::Deref for Chain {
    type Target = x402_escrow_testkit::Chain;

    fn deref(&self) -> &Self::Target {
        &self.kit
    }
}

impl Chain {
    pub async fn start() -> Chain {
        let kit = x402_escrow_testkit::Chain::start().await.expect("chain");
        let plain = http_provider(kit.anvil.endpoint_url());
        let key = kit.key(1).expect("key 1");
        Chain { kit, plain, key }
    }

    pub fn address(&self) -> Address {
        self.key.address()
    }

    pub fn token(&self) -> Address {
        self.kit.token().expect("test token")
    }

    /// `TestUSDC.approve(spender(i), i)`: always succeeds; plumbing for the pipeline.
    pub fn approve(&self, i: u64) -> NewChainTx {
        let calldata = TestUSDC::approveCall {
            spender: Address::with_last_byte(u8::try_from(i % 250).unwrap() + 1),
            amount: U256::from(i + 1),
        }
        .abi_encode();
        NewChainTx {
            chain_id: CHAIN,
            signer: self.address(),
            kind: TxKind::Capture,
            payment_id: None,
            request: serde_json::json!({ "test": "approve", "i": i }),
            to: self.token(),
            calldata: Bytes::from(calldata),
            value: U256::ZERO,
            gas_limit: None,
        }
    }

    /// `escrow.void(info)` of a payment that was never authorized: reverts with a custom error.
    pub fn void_unknown(&self, gas_limit: Option<u64>) -> NewChainTx {
        let info = PaymentInfo {
            operator: self.address(),
            payer: Address::repeat_byte(0x11),
            receiver: Address::repeat_byte(0x22),
            token: self.token(),
            maxAmount: U120::from(1_000_000u64),
            preApprovalExpiry: U48::from(4_000_000_000u64),
            authorizationExpiry: U48::from(4_000_000_001u64),
            refundExpiry: U48::from(4_000_000_002u64),
            minFeeBps: 0,
            maxFeeBps: 0,
            feeReceiver: Address::ZERO,
            salt: U256::from(7),
        };
        let calldata = AuthCaptureEscrow::voidCall { paymentInfo: info }.abi_encode();
        NewChainTx {
            chain_id: CHAIN,
            signer: self.address(),
            kind: TxKind::Void,
            payment_id: None,
            request: serde_json::json!({ "test": "void" }),
            to: self.deployment.auth_capture_escrow,
            calldata: Bytes::from(calldata),
            value: U256::ZERO,
            gas_limit,
        }
    }

    pub async fn nonce_latest(&self) -> u64 {
        self.plain
            .get_transaction_count(self.address())
            .latest()
            .await
            .expect("nonce")
    }

    pub async fn mine(&self, blocks: u64) {
        use alloy::providers::ext::AnvilApi;
        self.plain
            .anvil_mine(Some(blocks), None)
            .await
            .expect("mine");
    }
}

/// Options for tests: fast polls, short leases.
pub fn opts(confirmations: u64) -> RelayerOptions {
    RelayerOptions {
        chain_id: CHAIN,
        confirmations,
        poll_interval: Duration::from_millis(100),
        bump_after: Duration::from_secs(30),
        fee_bump_percent: 12,
        max_fee_per_gas: None,
        lease_ttl: Duration::from_secs(3),
        gas_limit_margin_percent: 20,
        max_claims_per_tick: 16,
        max_backoff: Duration::from_secs(1),
    }
}

/// A store on the test database with the system clock (leases expire in real time).
pub async fn system_store(url: &str) -> Store {
    Store::connect(url).await.expect("connect")
}

pub fn relayer(store: &Store, chain: &Chain, owner: &str, opts: RelayerOptions) -> Relayer {
    Relayer::new(
        store.clone(),
        chain.plain.clone(),
        chain.key.clone(),
        owner,
        opts,
    )
}

/// Ticks `relayer` (mining a block per round when `mine`) until every row in `ids` is settled.
pub async fn tick_until_settled(
    relayer: &mut Relayer,
    chain: &Chain,
    store: &Store,
    ids: &[Uuid],
    mine: bool,
) -> Vec<ChainTx> {
    for _ in 0..300 {
        relayer.tick().await.expect("tick");
        let rows = rows(store, ids).await;
        if rows.iter().all(|r| r.status.is_terminal()) {
            return rows;
        }
        if mine {
            chain.mine(1).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not settled: {:?}", rows(store, ids).await);
}

/// Polls until every row is settled (someone else drives them).
pub async fn wait_settled(store: &Store, ids: &[Uuid], timeout: Duration) -> Vec<ChainTx> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let rows = rows(store, ids).await;
        if rows.iter().all(|r| r.status.is_terminal()) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not settled in time: {:?}",
            rows.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn rows(store: &Store, ids: &[Uuid]) -> Vec<ChainTx> {
    let mut out = Vec::new();
    for id in ids {
        out.push(store.get_tx(*id).await.expect("row"));
    }
    out
}

/// Every mined row of the signer (final or reverted with a receipt) holds a distinct nonce, they
/// are exactly `0..n` and the chain's nonce is `n`: no gap, no duplicate, each executed once.
pub async fn assert_nonces_clean(store: &Store, chain: &Chain) {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT nonce, status, mined_tx_hash FROM chain_txs WHERE signer = $1 AND nonce IS NOT NULL \
         AND status IN ('final', 'reverted') ORDER BY nonce",
    )
    .bind(format!("{:#x}", chain.address()))
    .fetch_all(store.pool())
    .await
    .expect("rows");
    let nonces: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("nonce").unwrap())
        .collect();
    let n = nonces.len() as i64;
    assert_eq!(nonces, (0..n).collect::<Vec<_>>(), "nonces of settled rows");
    let distinct: HashSet<i64> = nonces.iter().copied().collect();
    assert_eq!(distinct.len() as i64, n);
    assert_eq!(
        chain.nonce_latest().await as i64,
        n,
        "on-chain nonce = settled rows"
    );
    let in_flight = store.txs_in_flight(CHAIN, chain.address()).await.unwrap();
    assert!(in_flight.is_empty(), "left in flight: {in_flight:?}");
}

pub fn all_status(rows: &[ChainTx], status: TxStatus) -> bool {
    rows.iter().all(|r| r.status == status)
}

pub fn hash_of(row: &ChainTx) -> B256 {
    row.mined_tx_hash.expect("mined hash")
}
