//! Helpers shared by the suites that run on a chain (`operator_*`, `relayer_*`, `engine_e2e`,
//! `facilitator_api`, `indexer_anvil`, `batching`, `fault_*`, …): the testkit's anvil with the
//! contracts deployed and the deployments file written, a fresh database (SQLite temp file or
//! PostgreSQL database), the operator's `Config` for them, an HTTP client for the merchant API,
//! buyer payloads built with the SDK, a webhook receiver verifying with the SDK, relayers on a
//! store with outbox rows to feed them, and bounded polling.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::anvil::ReorgOptions;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use uuid::Uuid;
use x402_escrow_bindings::{AuthCaptureEscrow, PaymentInfo, TestUSDC};
use x402_escrow_operator::config::{Config, ReceiptSource, Secret};
use x402_escrow_operator::lifecycle::PaymentStatus;
use x402_escrow_operator::relayer::{CrashPoint, Relayer, RelayerOptions, http_provider};
use x402_escrow_operator::runtime::{self, RunningOperator};
use x402_escrow_operator::store::{
    ChainTx, Merchant, NewChainTx, NewMerchant, PaymentFilter, Store, TxKind, TxStatus,
};
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::webhooks::{self as sdk_hooks, WebhookEvent, WebhookSecret};
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements};
use x402_escrow_sdk::{EscrowDeployment, EscrowRegistry, random_b256};

pub const USDC: u64 = 1_000_000;
pub const FEE_BPS: u64 = 100;

/// How long the chain suites wait for a payment to reach a status or the outbox to settle.
pub const WAIT: Duration = Duration::from_secs(40);

/// The operator's fee on `amount` (at [`FEE_BPS`]).
pub fn fee(amount: u128) -> u128 {
    amount * FEE_BPS as u128 / 10_000
}

// ---- database ------------------------------------------------------------------------------

/// Runs `body` with the URL of a fresh database of `backend`, then removes the database (also
/// when the body panics): the store suites' harness; and their row count.
#[allow(unused_imports)]
pub use crate::store_support::{column, count, rendered_rows, with_db};

mod shop;
/// The merchant shop helper; not every suite that includes this module uses it.
#[allow(unused_imports)]
pub use shop::*;

/// How many outbox rows of the single calls `kinds` (an SQL list, `'capture', 'void'`) went
/// out on their own: all but the abandoned ones (a batch took those over).
pub async fn sent_alone(store: &Store, kinds: &str) -> i64 {
    count(
        store,
        &format!("chain_txs WHERE kind IN ({kinds}) AND status <> 'abandoned'"),
    )
    .await
}

/// Declares each listed `async fn(Backend)` as `sqlite::<name>` and `postgres::<name>`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(x402_escrow_operator::store::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(x402_escrow_operator::store::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A test-side store on the operator's database (migrated, wall clock).
pub async fn test_store(url: &str) -> Store {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

// ---- chain ---------------------------------------------------------------------------------

/// A fresh anvil with every contract deployed by key 0 and the deployments file written (the
/// testkit's [`x402_escrow_testkit::Chain`], which it derefs to: `anvil`, `url`, `admin`,
/// `plain`, `deployment`). Key 1 is the operator's signer, key 2 the buyer; address 3 the
/// merchant's receiver, 4 the fee receiver, 6 another merchant's receiver.
pub struct Chain {
    kit: x402_escrow_testkit::Chain,
    pub deployments_file: PathBuf,
    _dir: tempfile::TempDir,
    pub operator: PrivateKeySigner,
    pub payer: PrivateKeySigner,
    pub receiver: Address,
    pub fee_receiver: Address,
    pub other_receiver: Address,
}

impl std::ops::Deref for Chain {
    type Target = x402_escrow_testkit::Chain;

    fn deref(&self) -> &Self::Target {
        &self.kit
    }
}

/// Which escrow a test chain's deployments file (and so the operator) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestEscrow {
    /// Ours (`AuthCaptureEscrow`, v1.0 interface, with the batch calls).
    Ours,
    /// The public Commerce Payments v1.0 contracts themselves (`../shared/canonical/v1.0/`).
    ReferenceV1_0,
    /// Our `AuthCaptureEscrowV1_1`, recorded as a v1.1 deployment.
    OursV1_1,
}

impl Chain {
    pub async fn start() -> Chain {
        Chain::start_with(TestEscrow::Ours).await
    }

    /// A fresh chain whose deployments file names `escrow` (deployed next to ours; the token,
    /// Multicall3 and batch executor are shared).
    pub async fn start_with(escrow: TestEscrow) -> Chain {
        let mut kit = x402_escrow_testkit::Chain::start().await.expect("chain");
        match escrow {
            TestEscrow::Ours => {}
            TestEscrow::ReferenceV1_0 => {
                kit.deployment = x402_escrow_testkit::deploy_reference_v1_0(&kit)
                    .await
                    .expect("reference v1.0 contracts");
            }
            TestEscrow::OursV1_1 => {
                kit.deployment = x402_escrow_testkit::deploy_ours_v1_1(&kit)
                    .await
                    .expect("v1.1 escrow");
            }
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let deployments_file = kit.save_deployment(dir.path()).expect("save deployment");
        let address = |i: usize| kit.address(i).expect("dev address");
        let chain = Chain {
            receiver: address(3),
            fee_receiver: address(4),
            other_receiver: address(6),
            operator: kit.key(1).expect("key 1"),
            payer: kit.key(2).expect("key 2"),
            kit,
            deployments_file,
            _dir: dir,
        };
        chain.mint(chain.payer.address(), 10_000 * USDC).await;
        chain
    }

    pub fn token(&self) -> Address {
        self.kit.token().expect("test token")
    }

    pub async fn mint(&self, to: Address, amount: u64) {
        self.kit.mint(to, U256::from(amount)).await.expect("mint");
    }

    pub async fn balance(&self, who: Address) -> u128 {
        self.kit.balance(who).await.expect("balanceOf").to::<u128>()
    }

    /// The balances of the payer, the merchant's receiver, the fee receiver and `float` (the
    /// operator's signer, whose tokens fund refunds), in that order.
    pub async fn balances(&self, float: Address) -> [u128; 4] {
        [
            self.balance(self.payer.address()).await,
            self.balance(self.receiver).await,
            self.balance(self.fee_receiver).await,
            self.balance(float).await,
        ]
    }

    /// The payer's balance is `before - spent`.
    pub async fn assert_payer_spent(&self, before: u128, spent: u128) {
        let now = self.balance(self.payer.address()).await;
        assert_eq!(now, before - spent, "payer: {before} before, {spent} spent");
    }

    /// `paymentState(hash)`: (hasCollectedPayment, capturable, refundable).
    pub async fn state(&self, hash: B256) -> (bool, u128, u128) {
        let s = AuthCaptureEscrow::new(self.escrow(), self.plain.clone())
            .paymentState(hash)
            .call()
            .await
            .expect("paymentState");
        (
            s.hasCollectedPayment,
            s.capturableAmount.to::<u128>(),
            s.refundableAmount.to::<u128>(),
        )
    }

    /// The signer's on-chain nonce (latest block).
    pub async fn nonce(&self, who: Address) -> u64 {
        self.plain.get_transaction_count(who).await.expect("nonce")
    }

    pub async fn now(&self) -> u64 {
        self.kit.now().await.expect("latest block")
    }

    /// The merchant's requirements for `amount` to `pay_to`, naming `authorizer` as the
    /// `captureAuthorizer` (JSON, so tests can alter them).
    pub async fn requirements(&self, amount: u64, authorizer: Address, pay_to: Address) -> Value {
        let now = self.now().await;
        self.token_requirements(
            "auth-capture",
            amount,
            pay_to,
            900,
            json!({
                "captureAuthorizer": authorizer,
                "captureDeadline": now + 7200,
                "refundDeadline": now + 30 * 86400,
                "feeRecipient": self.fee_receiver,
                "minFeeBps": 0,
                "maxFeeBps": 500,
                "authCaptureEscrow": self.escrow(),
            }),
        )
    }

    /// `exact` requirements (an ERC-3009 transfer of the test token) for `amount` to `pay_to`,
    /// valid for `max_timeout_secs` (JSON, so tests can alter them).
    pub fn exact_requirements(&self, amount: u64, pay_to: Address, max_timeout_secs: u64) -> Value {
        self.token_requirements("exact", amount, pay_to, max_timeout_secs, json!({}))
    }

    /// Requirements of `scheme` for `amount` of the test token to `pay_to`: the token's EIP-712
    /// `name` and `version` in `extra`, beside the scheme's own `extra` fields.
    fn token_requirements(
        &self,
        scheme: &str,
        amount: u64,
        pay_to: Address,
        max_timeout_secs: u64,
        mut extra: Value,
    ) -> Value {
        let token = self.deployment.token.as_ref().expect("token");
        extra["name"] = json!(token.name);
        extra["version"] = json!(token.version);
        json!({
            "scheme": scheme,
            "network": format!("eip155:{}", self.deployment.chain_id),
            "amount": amount.to_string(),
            "asset": token.address,
            "payTo": pay_to,
            "maxTimeoutSeconds": max_timeout_secs,
            "extra": extra,
        })
    }

    /// The body of `POST /v1/payments/authorize`: the buyer's payload built with the SDK for
    /// `requirements`, signed by `payer`.
    pub async fn authorize_body(
        &self,
        requirements: Value,
        payer: &PrivateKeySigner,
        request_id: &str,
    ) -> Value {
        let requirements: PaymentRequirements =
            serde_json::from_value(requirements).expect("requirements");
        let registry = EscrowRegistry::only(EscrowDeployment::from(&self.deployment));
        let now = self.now().await;
        let payload =
            auth_capture::build_payload(&requirements, payer, now, random_b256(), &registry)
                .expect("buyer payload");
        json!({
            "paymentPayload": PaymentPayload::new(requirements.clone(), payload),
            "paymentRequirements": requirements,
            "requestId": request_id,
        })
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
            signer: self.operator.address(),
            kind: TxKind::Capture,
            payment_id: None,
            request: serde_json::json!({ "test": "approve", "i": i }),
            to: self.token(),
            calldata: alloy::primitives::Bytes::from(calldata),
            value: U256::ZERO,
            gas_limit: None,
        }
    }

    /// `escrow.void(info)` of a payment that was never authorized: reverts with a custom error.
    pub fn void_unknown(&self, gas_limit: Option<u64>) -> NewChainTx {
        let info = PaymentInfo {
            operator: self.operator.address(),
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
            signer: self.operator.address(),
            kind: TxKind::Void,
            payment_id: None,
            request: serde_json::json!({ "test": "void" }),
            to: self.deployment.auth_capture_escrow,
            calldata: alloy::primitives::Bytes::from(calldata),
            value: U256::ZERO,
            gas_limit,
        }
    }

    /// Replaces the newest `depth` blocks with as many empty ones (`anvil_reorg`).
    pub async fn reorg(&self, depth: u64) {
        self.plain
            .anvil_reorg(ReorgOptions {
                depth,
                tx_block_pairs: vec![],
            })
            .await
            .expect("anvil_reorg");
    }

    /// The operator signer's nonce at the latest block.
    pub async fn nonce_latest(&self) -> u64 {
        self.plain
            .get_transaction_count(self.operator.address())
            .latest()
            .await
            .expect("nonce")
    }
}

/// Sends a contract call and waits for its receipt (a revert is the caller's to check).
pub async fn mined<P: Provider, D: CallDecoder>(call: CallBuilder<P, D>) -> TransactionReceipt {
    call.send()
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("receipt")
}

/// Sends `tx` through `provider` and waits for its receipt (a revert is the caller's to check).
pub async fn mined_tx(provider: &impl Provider, tx: TransactionRequest) -> TransactionReceipt {
    provider
        .send_transaction(tx)
        .await
        .expect("send")
        .get_receipt()
        .await
        .expect("receipt")
}

// ---- operator ------------------------------------------------------------------------------

/// The operator's configuration for `db_url` and `chain`, with short intervals.
pub fn config(db_url: &str, chain: &Chain) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    c.database.url = db_url.to_owned();
    c.chain.rpc_url = chain.url.clone();
    c.chain.chain_id = chain.deployment.chain_id;
    c.chain.deployments = Some(chain.deployments_file.clone());
    c.chain.confirmations = 1;
    c.chain.poll_interval_ms = 100;
    c.chain.start_block = 0;
    c.signer.private_key = Some(Secret::new(alloy::hex::encode(chain.operator.to_bytes())));
    c.relayer.lease_ttl_secs = 3;
    c.relayer.bump_after_secs = 5;
    c.webhooks.poll_interval_ms = 100;
    c.webhooks.retry_schedule_secs = vec![1];
    c.auto_void.sweep_interval_secs = 1;
    c.fees.bps = FEE_BPS as u16;
    c.fees.receiver = Some(chain.fee_receiver);
    c
}

pub async fn start(config: &Config) -> RunningOperator {
    runtime::start(config.clone())
        .await
        .expect("start operator")
}

/// A merchant paid to `receiver`, its API key, with webhooks to `hooks` (if any).
pub async fn merchant(
    store: &Store,
    name: &str,
    receiver: Address,
    hooks: Option<&Hooks>,
) -> (Merchant, String) {
    let (m, key) = store
        .create_merchant(&NewMerchant {
            name: name.to_owned(),
            receivers: vec![receiver],
            webhook_url: hooks.map(|h| h.url.clone()),
            webhook_secret: hooks.map(|h| Secret::new(h.secret.expose_secret())),
            capture_deadline_secs: 3600,
        })
        .await
        .expect("create merchant");
    (m, key.expose().to_owned())
}

/// What [`credit_reserve`] gives a test merchant: refunds are charged to the merchant's refund
/// reserve, so the suites that refund start with one (the refund account's tokens are minted
/// separately by each suite, as before).
pub const TEST_RESERVE: u64 = 1_000 * USDC;

/// Credits the merchant's refund reserve in the chain's test token ([`TEST_RESERVE`]).
pub async fn credit_reserve(store: &Store, merchant: Uuid, chain: &Chain) {
    store
        .reserve_credit(&x402_escrow_operator::store::ReserveCredit {
            merchant_id: merchant,
            asset: chain.token(),
            amount: u128::from(TEST_RESERVE),
            note: Some("test merchant's reserve".into()),
        })
        .await
        .expect("credit reserve");
}

/// A fresh chain, a test-side store on `url`'s database, and the merchant "shop" paid to the
/// chain's receiver (webhooks to `hooks`, if any): its record and API key.
pub async fn open_shop(url: &str, hooks: Option<&Hooks>) -> (Chain, Store, Merchant, String) {
    shop_named(url, "shop", hooks).await
}

/// [`open_shop`] on a chain whose deployments file names `escrow`.
pub async fn open_shop_on(
    url: &str,
    hooks: Option<&Hooks>,
    escrow: TestEscrow,
) -> (Chain, Store, Merchant, String) {
    shop_on(url, "shop", hooks, escrow).await
}

async fn shop_named(
    url: &str,
    name: &str,
    hooks: Option<&Hooks>,
) -> (Chain, Store, Merchant, String) {
    shop_on(url, name, hooks, TestEscrow::Ours).await
}

async fn shop_on(
    url: &str,
    name: &str,
    hooks: Option<&Hooks>,
    escrow: TestEscrow,
) -> (Chain, Store, Merchant, String) {
    let chain = Chain::start_with(escrow).await;
    let store = test_store(url).await;
    let (merchant, key) = merchant(&store, name, chain.receiver, hooks).await;
    credit_reserve(&store, merchant.id, &chain).await;
    (chain, store, merchant, key)
}

/// A fresh chain, a test-side store on `url`'s database, and two merchants without webhooks:
/// "shop-a" paid to the chain's receiver and "shop-b" to the other receiver (their API keys).
pub async fn two_shops(url: &str) -> (Chain, Store, String, String) {
    let (chain, store, _, key_a) = shop_named(url, "shop-a", None).await;
    let (merchant_b, key_b) = merchant(&store, "shop-b", chain.other_receiver, None).await;
    credit_reserve(&store, merchant_b.id, &chain).await;
    (chain, store, key_a, key_b)
}

/// The end of a run: no nonce gap ([`assert_nonces`]), nothing to reconcile
/// ([`assert_reconciled`]), then `op` shut down and `store` closed.
pub async fn wind_down(op: RunningOperator, store: Store, chain: &Chain) {
    assert_nonces(&store, chain).await;
    assert_reconciled(&op).await;
    op.shutdown().await;
    store.close().await;
}

// ---- HTTP client ---------------------------------------------------------------------------

/// The merchant API of one operator instance, as one merchant.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    pub fn new(op: &RunningOperator, key: &str) -> Api {
        Api::at(op.address, key)
    }

    pub fn at(address: std::net::SocketAddr, key: &str) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            base: format!("http://{address}"),
            key: key.to_owned(),
        }
    }

    async fn decode(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    /// POST with the Bearer key and an `Idempotency-Key`; `Err` when the connection fails.
    pub async fn try_post(
        &self,
        path: &str,
        body: &Value,
        idem: &str,
    ) -> Result<(u16, Value), reqwest::Error> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("Idempotency-Key", idem)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(body).expect("json"))
            .send()
            .await?;
        Ok(Api::decode(resp).await)
    }

    pub async fn post(&self, path: &str, body: &Value, idem: &str) -> (u16, Value) {
        self.try_post(path, body, idem)
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        Api::decode(resp).await
    }

    /// `POST /v1/payments/{id}/{action}` (`capture`, `void`, `refund`) with `body` and the
    /// `Idempotency-Key` `idem`.
    pub async fn act(&self, id: &str, action: &str, body: &Value, idem: &str) -> (u16, Value) {
        self.post(&format!("/v1/payments/{id}/{action}"), body, idem)
            .await
    }

    /// [`Api::act`] with the body `{"amount": amount}` (a decimal string).
    pub async fn act_amount(
        &self,
        id: &str,
        action: &str,
        amount: impl ToString,
        idem: &str,
    ) -> (u16, Value) {
        let body = json!({ "amount": amount.to_string() });
        self.act(id, action, &body, idem).await
    }

    /// `POST /v1/payments/authorize` of the payer's payment of `amount` to the chain's receiver
    /// (`authorizer` its `captureAuthorizer`) as request `request_id`, which must answer 201:
    /// the request body (to replay) and the payment.
    pub async fn authorize_payment(
        &self,
        chain: &Chain,
        amount: u64,
        authorizer: Address,
        request_id: &str,
        idem: &str,
    ) -> (Value, Value) {
        let req = chain.requirements(amount, authorizer, chain.receiver).await;
        let body = chain.authorize_body(req, &chain.payer, request_id).await;
        let (status, payment) = self.post("/v1/payments/authorize", &body, idem).await;
        assert_eq!(status, 201, "{payment}");
        (body, payment)
    }

    /// `GET /v1/payments/{id}` (must be 200).
    pub async fn payment(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(status, 200, "GET payment {id}: {body}");
        body
    }

    /// Polls `GET /v1/payments/{id}` until its status is one of `want` (bounded).
    pub async fn wait_status(&self, id: &str, want: &[&str], timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let p = self.payment(id).await;
            if want.contains(&p["status"].as_str().unwrap_or_default()) {
                return p;
            }
            if Instant::now() > deadline {
                panic!("payment {id} not in {want:?} after {timeout:?}: {p}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An amount field of a payment view.
pub fn amount(view: &Value, field: &str) -> u128 {
    view["amounts"][field]
        .as_str()
        .unwrap_or_else(|| panic!("amounts.{field} in {view}"))
        .parse()
        .expect("amount")
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

// ---- settling and invariants ---------------------------------------------------------------

pub fn in_flight(status: PaymentStatus) -> bool {
    matches!(
        status,
        PaymentStatus::Authorizing
            | PaymentStatus::Charging
            | PaymentStatus::Capturing
            | PaymentStatus::Voiding
            | PaymentStatus::Refunding
    )
}

/// `chain_txs` rows by status.
pub async fn tx_statuses(store: &Store) -> HashMap<String, i64> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM chain_txs GROUP BY status")
        .fetch_all(store.pool())
        .await
        .expect("tx statuses");
    rows.into_iter()
        .map(|r| {
            (
                r.try_get::<String, _>("status").expect("status"),
                r.try_get::<i64, _>("n").expect("n"),
            )
        })
        .collect()
}

/// Waits (bounded) until no payment is in flight and every chain transaction is settled
/// (`final`, `reverted` or `abandoned`).
pub async fn settle(store: &Store, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let payments = store
            .list_payments(&PaymentFilter {
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .expect("list payments");
        let busy: Vec<_> = payments
            .iter()
            .filter(|p| in_flight(p.status))
            .map(|p| (p.id, p.status))
            .collect();
        let txs = tx_statuses(store).await;
        let open: i64 = txs
            .iter()
            .filter(|(s, _)| !matches!(s.as_str(), "final" | "reverted" | "abandoned"))
            .map(|(_, n)| *n)
            .sum();
        if busy.is_empty() && open == 0 {
            return;
        }
        if Instant::now() > deadline {
            panic!("not settled after {timeout:?}: payments in flight {busy:?}, txs {txs:?}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// No nonce gaps and nothing sent outside the outbox: the signer's on-chain nonce equals the
/// number of nonces the outbox rows consumed on chain (`final` + `reverted` rows that were mined,
/// fills included; a row refused at its gas estimate gave its nonce to a fill; a `delegate` row
/// takes two, its own and its EIP-7702 authorization's).
pub async fn assert_nonces(store: &Store, chain: &Chain) {
    let txs = tx_statuses(store).await;
    let used = count(
        store,
        "chain_txs WHERE status IN ('final', 'reverted') AND mined_tx_hash IS NOT NULL",
    )
    .await
        + count(
            store,
            "chain_txs WHERE kind = 'delegate' AND status IN ('final', 'reverted')",
        )
        .await;
    let on_chain = chain.nonce(chain.operator.address()).await;
    assert_eq!(
        on_chain, used as u64,
        "on-chain nonce {on_chain} vs final+reverted outbox rows {used} ({txs:?})"
    );
}

/// `reconcile_all` finds no difference between the database and the chain.
pub async fn assert_reconciled(op: &RunningOperator) {
    let diffs = op.engine.reconcile_all(1000).await.expect("reconcile");
    assert!(diffs.is_empty(), "reconcile differences: {diffs:#?}");
}

// ---- webhook receiver ----------------------------------------------------------------------

/// A local webhook endpoint that verifies every delivery with the SDK and keeps the verified
/// events deduplicated by id.
#[derive(Clone)]
pub struct Hooks {
    pub url: String,
    pub secret: WebhookSecret,
    state: Arc<HookState>,
}

struct HookState {
    secret: WebhookSecret,
    events: Mutex<HashMap<String, WebhookEvent>>,
    deliveries: Mutex<u64>,
    rejected: Mutex<Vec<String>>,
}

async fn receive(
    State(state): State<Arc<HookState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    *state.deliveries.lock().unwrap() += 1;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    match sdk_hooks::verify_event(
        std::slice::from_ref(&state.secret),
        &headers,
        &body,
        now,
        sdk_hooks::DEFAULT_TOLERANCE,
    ) {
        Ok((_, event)) => {
            state
                .events
                .lock()
                .unwrap()
                .entry(event.id.clone())
                .or_insert(event);
            StatusCode::NO_CONTENT
        }
        Err(e) => {
            state.rejected.lock().unwrap().push(e.to_string());
            StatusCode::BAD_REQUEST
        }
    }
}

impl Hooks {
    pub async fn start() -> Hooks {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let secret = WebhookSecret::generate();
        let state = Arc::new(HookState {
            secret: secret.clone(),
            events: Mutex::new(HashMap::new()),
            deliveries: Mutex::new(0),
            rejected: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hooks { url, secret, state }
    }

    /// Verified events (deduplicated by id).
    pub fn events(&self) -> Vec<WebhookEvent> {
        self.state
            .events
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect()
    }

    /// Requests received (every delivery, redeliveries included).
    pub fn deliveries(&self) -> u64 {
        *self.state.deliveries.lock().unwrap()
    }

    pub fn rejected(&self) -> Vec<String> {
        self.state.rejected.lock().unwrap().clone()
    }

    /// Types of the verified events of one payment, sorted by creation time.
    pub fn types_for(&self, payment_id: &str) -> Vec<String> {
        let mut evs: Vec<_> = self
            .events()
            .into_iter()
            .filter(|e| e.data.payment_id == payment_id)
            .collect();
        evs.sort_by_key(|e| e.created_at);
        evs.into_iter()
            .map(|e| e.event_type.as_str().to_owned())
            .collect()
    }

    /// Waits (bounded) until `payment_id` has at least `want` events of each listed type.
    pub async fn wait_for(&self, payment_id: &str, want: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.types_for(payment_id);
            let mut remaining = got.clone();
            let all = want.iter().all(|w| {
                if let Some(i) = remaining.iter().position(|g| g == w) {
                    remaining.remove(i);
                    true
                } else {
                    false
                }
            });
            if all {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "webhooks for {payment_id}: want {want:?}, got {got:?} (rejected: {:?})",
                    self.rejected()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ---- relayer -------------------------------------------------------------------------------

/// The chain id of anvil.
pub const CHAIN: u64 = 31337;

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
        // The polling monitor, step by step: these suites drive `tick` and assert the states
        // each step leaves. Pushed receipts have their own tests (`relayer_push.rs`) and are
        // what every operator process runs with (the default).
        receipts: ReceiptSource::Poll,
    }
}

/// Runs `relayer` in its own task until the returned sender is used (or dropped): the stop
/// sender and the task.
pub fn spawn_relayer(
    relayer: Relayer,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(relayer.run(async move {
        let _ = stop_rx.await;
    }));
    (stop, task)
}

/// A store on the test database with the system clock (leases expire in real time).
pub async fn system_store(url: &str) -> Store {
    Store::connect(url).await.expect("connect")
}

/// A relayer signing with the operator's key (dev key 1) through a provider without fillers,
/// as the operator runs it.
pub fn relayer(store: &Store, chain: &Chain, owner: &str, opts: RelayerOptions) -> Relayer {
    Relayer::new(
        store.clone(),
        http_provider(chain.anvil.endpoint_url()),
        chain.operator.clone(),
        owner,
        opts,
    )
}

/// Runs one pass of a relayer that crashes right after recording its signed attempt: the row
/// holds signed bytes nobody broadcast.
pub async fn sign_then_crash(store: &Store, chain: &Chain) {
    let mut crashing =
        relayer(store, chain, "op-a", opts(1)).with_crash_point(CrashPoint::AfterRecordAttempt);
    crashing.tick().await.expect_err("crash");
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
            chain.mine(1).await.expect("mine");
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
    .bind(format!("{:#x}", chain.operator.address()))
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
    let in_flight = store
        .txs_in_flight(CHAIN, chain.operator.address())
        .await
        .unwrap();
    assert!(in_flight.is_empty(), "left in flight: {in_flight:?}");
}

pub fn all_status(rows: &[ChainTx], status: TxStatus) -> bool {
    rows.iter().all(|r| r.status == status)
}

pub fn hash_of(row: &ChainTx) -> B256 {
    row.mined_tx_hash.expect("mined hash")
}
