//! End-to-end tests of the lifecycle engine against a local anvil deployment.
//!
//! The relayer is not used: a minimal test-only sender (below) claims queued `chain_txs` rows,
//! signs them with the operator key, sends them, and marks them mined and final through the
//! store, exactly as the outbox contract says. The engine learns outcomes only by reading the
//! store (its waiter applies them, or `process_outcomes` after a "restart").

mod operator_support;
mod store_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use operator_support::{Chain, USDC, mined};
use serde_json::json;
use store_support::{Ctx, count};
use tokio::sync::Notify;
use uuid::Uuid;
use x402_escrow_bindings::AuthCaptureEscrow::AuthCaptureEscrowInstance;
use x402_escrow_bindings::{AuthCaptureEscrow, PaymentInfo};
use x402_escrow_operator::engine::{Engine, EngineConfig, OutcomeApplied};
use x402_escrow_operator::lifecycle::PaymentStatus;
use x402_escrow_operator::service::{
    AuthorizeRequest, CaptureRequest, ErrorCode, PaymentService, PaymentView, RefundRequest,
    ServiceError,
};
use x402_escrow_operator::store::{
    Merchant, MinedReceipt, NewChainEvent, NewMerchant, NewTxAttempt, Payment, Store, TxStatus,
};
use x402_escrow_operator::verify::{Verifier, VerifierConfig};
use x402_escrow_sdk::schemes::auth_capture;
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements, SchemePayload};
use x402_escrow_sdk::{EscrowDeployment, EscrowRegistry, random_b256};

const AMOUNT: u64 = 10 * USDC;
const FEE_BPS: u16 = 100;

/// The testkit's chain (with the operator's roles: key 1 signs, key 2 pays, address 3 is the
/// merchant's receiver, 4 the fee receiver), an engine over the test's store, and the test-only
/// sender.
struct Env {
    chain: Chain,
    store: Store,
    ctx: Ctx,
    merchant: Merchant,
    other_merchant: Merchant,
    engine: Engine,
    wake: Arc<Notify>,
    sending: Arc<AtomicBool>,
    /// Held by the test sender while it works through the queue: pausing takes it, so no batch
    /// that started before the pause can still send afterwards.
    sender_gate: Arc<tokio::sync::Mutex<()>>,
    sender: tokio::task::JoinHandle<()>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

impl Env {
    async fn new(ctx: Ctx, fund_operator: bool, default_wait: Duration) -> Env {
        let chain = Chain::start().await;
        if fund_operator {
            chain.mint(chain.operator.address(), 50 * USDC).await;
        }
        let store = ctx.store.clone();
        let new_merchant = |name: &str, receiver: Address| NewMerchant {
            receivers: vec![receiver],
            ..store_support::new_merchant(name)
        };
        let (merchant, _) = store
            .create_merchant(&new_merchant("shop", chain.receiver))
            .await
            .unwrap();
        let (other_merchant, _) = store
            .create_merchant(&new_merchant("other", chain.other_receiver))
            .await
            .unwrap();
        operator_support::credit_reserve(&store, merchant.id, &chain).await;
        operator_support::credit_reserve(&store, other_merchant.id, &chain).await;
        let wake = Arc::new(Notify::new());
        let engine = make_engine(&store, &chain, default_wait, wake.clone());
        let sending = Arc::new(AtomicBool::new(true));
        let sender_gate = Arc::new(tokio::sync::Mutex::new(()));
        let sender = tokio::spawn(sender_loop(
            store.clone(),
            chain.plain.clone(),
            chain.operator.clone(),
            chain.deployment.chain_id,
            wake.clone(),
            sending.clone(),
            sender_gate.clone(),
        ));
        Env {
            chain,
            store,
            ctx,
            merchant,
            other_merchant,
            engine,
            wake,
            sending,
            sender_gate,
            sender,
        }
    }

    /// Stops the test sender and waits until a batch it may have started is done.
    async fn pause_sender(&self) {
        self.sending.store(false, Ordering::SeqCst);
        drop(self.sender_gate.lock().await);
    }

    /// A second engine on the same store, chain and wake-up (another instance, or a restart).
    fn engine_waiting(&self, default_wait: Duration) -> Engine {
        make_engine(&self.store, &self.chain, default_wait, self.wake.clone())
    }

    fn registry(&self) -> EscrowRegistry {
        EscrowRegistry::only(EscrowDeployment::from(&self.chain.deployment))
    }

    /// The escrow, called by the operator's key outside the outbox.
    fn escrow_as_operator(&self) -> AuthCaptureEscrowInstance<DynProvider> {
        AuthCaptureEscrow::new(
            self.chain.escrow(),
            self.chain.provider_for(&self.chain.operator),
        )
    }

    /// The merchant's requirements for `amount`, as JSON (tests mutate them).
    async fn requirements_json(&self, amount: u64) -> serde_json::Value {
        self.chain
            .requirements(amount, self.chain.operator.address(), self.chain.receiver)
            .await
    }

    /// A signed payment for `requirements` by `payer`.
    async fn pay(
        &self,
        requirements: serde_json::Value,
        payer: &PrivateKeySigner,
        registry: &EscrowRegistry,
    ) -> AuthorizeRequest {
        let requirements: PaymentRequirements =
            serde_json::from_value(requirements).expect("requirements");
        let now = self.chain.now().await;
        let payload =
            auth_capture::build_payload(&requirements, payer, now, random_b256(), registry)
                .expect("payload");
        AuthorizeRequest {
            payment_payload: PaymentPayload::new(requirements.clone(), payload),
            payment_requirements: requirements,
            request_id: Some(format!("req-{}", Uuid::now_v7())),
            wait: Some(Duration::from_secs(20)),
        }
    }

    /// The payer's signed payment of [`AMOUNT`] on the merchant's requirements.
    async fn pay_amount(&self, registry: &EscrowRegistry) -> AuthorizeRequest {
        self.pay(
            self.requirements_json(AMOUNT).await,
            &self.chain.payer,
            registry,
        )
        .await
    }

    /// The payer's payment of [`AMOUNT`], handed in without waiting for its outcome.
    async fn authorize_no_wait(
        &self,
        registry: &EscrowRegistry,
    ) -> (AuthorizeRequest, PaymentView) {
        let mut req = self.pay_amount(registry).await;
        req.wait = Some(Duration::ZERO);
        let view = self
            .engine
            .authorize(&self.merchant, req.clone(), None)
            .await
            .unwrap();
        assert_eq!(view.status, PaymentStatus::Authorizing);
        (req, view)
    }

    /// Sends the escrow's `authorize` of `req` with the operator's key outside the outbox (the
    /// relayer never hears of it); returns its `PaymentInfo`.
    async fn authorize_outside_outbox(
        &self,
        req: &AuthorizeRequest,
        registry: &EscrowRegistry,
    ) -> PaymentInfo {
        let SchemePayload::AuthCapture(p) = &req.payment_payload.payload else {
            panic!("an auth-capture payload")
        };
        let derived = auth_capture::derive_from_payment_payload(
            &req.payment_requirements,
            &req.payment_payload,
            registry,
        )
        .unwrap();
        mined(self.escrow_as_operator().authorize(
            derived.payment_info.clone(),
            U256::from(AMOUNT),
            self.chain.deployment.erc3009_payment_collector,
            p.signature.clone(),
        ))
        .await;
        derived.payment_info
    }

    /// The payment once no transaction of it is in flight (at most 20 s).
    async fn settled(&self, id: Uuid) -> Payment {
        self.engine
            .wait_settled(id, Duration::from_secs(20))
            .await
            .unwrap()
    }

    /// Why the engine refuses to authorize `req`.
    async fn refused(&self, req: AuthorizeRequest) -> ServiceError {
        self.engine
            .authorize(&self.merchant, req, None)
            .await
            .unwrap_err()
    }

    async fn authorize(&self, amount: u64) -> PaymentView {
        let req = self
            .pay(
                self.requirements_json(amount).await,
                &self.chain.payer,
                &self.registry(),
            )
            .await;
        let view = self
            .engine
            .authorize(&self.merchant, req, Some("idem-1"))
            .await
            .expect("authorize");
        assert_eq!(view.status, PaymentStatus::Authorized, "{view:?}");
        view
    }

    async fn capture(&self, id: Uuid, amount: Option<u64>) -> Result<PaymentView, ServiceError> {
        let request = CaptureRequest {
            amount: amount.map(u128::from),
        };
        self.engine.capture(&self.merchant, id, request).await
    }

    async fn refund(&self, id: Uuid, amount: u64) -> Result<PaymentView, ServiceError> {
        let request = RefundRequest {
            amount: u128::from(amount),
        };
        self.engine.refund(&self.merchant, id, request).await
    }

    /// The id of the outbox row a payment waits for.
    async fn pending_tx(&self, id: Uuid) -> Uuid {
        self.store
            .get_payment(id)
            .await
            .unwrap()
            .pending_tx_id
            .unwrap()
    }

    /// (capturable, refundable) on chain.
    async fn chain_state(&self, hash: B256) -> (u128, u128) {
        let (_, capturable, refundable) = self.chain.state(hash).await;
        (capturable, refundable)
    }

    async fn webhook_types(&self, payment: Uuid) -> Vec<String> {
        self.store
            .webhook_events_for_payment(payment)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    /// `reconcile_payment` finds no difference for `id`.
    async fn assert_reconciled(&self, id: Uuid) {
        let diffs = self.engine.reconcile_payment(id).await.unwrap();
        assert!(diffs.is_empty(), "{diffs:?}");
    }

    async fn warp_to(&self, timestamp: u64) {
        self.chain
            .plain
            .anvil_set_next_block_timestamp(timestamp)
            .await
            .unwrap();
        self.chain.mine(1).await.unwrap();
    }
}

fn make_engine(store: &Store, chain: &Chain, default_wait: Duration, wake: Arc<Notify>) -> Engine {
    let deployment = &chain.deployment;
    let registry = EscrowRegistry::only(EscrowDeployment::from(deployment));
    let verifier = Verifier::new(
        chain.plain.clone(),
        VerifierConfig {
            chain_id: deployment.chain_id,
            operator: chain.operator.address(),
            lanes: Vec::new(),
            registry,
            assets: vec![chain.token()],
            fee_bps: FEE_BPS,
            fee_receiver: chain.fee_receiver,
            expiry_margin_secs: 30,
            default_capture_deadline_secs: 3600,
        },
    );
    Engine::new(
        store.clone(),
        chain.plain.clone(),
        verifier,
        EngineConfig {
            chain_id: deployment.chain_id,
            signer: chain.operator.address(),
            refund_collector: deployment.operator_refund_collector,
            multicall3: deployment.multicall3,
            fee_bps: FEE_BPS,
            fee_receiver: chain.fee_receiver,
            default_wait,
            expiry_margin_secs: 30,
            auto_void: true,
            refund_allowance: U256::from(1_000 * USDC),
            poll_interval: Duration::from_millis(100),
            assets: Vec::new(),
        },
        wake,
    )
}

// ---- the test-only sender ------------------------------------------------------------------

async fn sender_loop(
    store: Store,
    provider: DynProvider,
    signer: PrivateKeySigner,
    chain_id: u64,
    wake: Arc<Notify>,
    sending: Arc<AtomicBool>,
    gate: Arc<tokio::sync::Mutex<()>>,
) {
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let _working = gate.lock().await;
        if !sending.load(Ordering::SeqCst) {
            continue;
        }
        if let Err(e) = send_queued(&store, &provider, &signer, chain_id).await {
            eprintln!("test sender: {e}");
        }
    }
}

async fn send_queued(
    store: &Store,
    provider: &DynProvider,
    signer: &PrivateKeySigner,
    chain_id: u64,
) -> eyre::Result<()> {
    let me = signer.address();
    let chain_nonce = provider.get_transaction_count(me).await?;
    store.upsert_signer(chain_id, me, chain_nonce).await?;
    store
        .acquire_lease(chain_id, me, "test-sender", 3_600_000_000)
        .await?;
    let wallet = EthereumWallet::from(signer.clone());
    while let Some(tx) = store.claim_next_tx(chain_id, me, "test-sender").await? {
        let nonce = tx.nonce.expect("reserved nonce");
        let base = TransactionRequest::default()
            .with_from(me)
            .with_to(tx.to)
            .with_input(tx.calldata.clone())
            .with_value(tx.value)
            .with_nonce(nonce)
            .with_chain_id(chain_id);
        let (gas, revert_reason) = match provider.estimate_gas(base.clone()).await {
            Ok(g) => (g * 12 / 10, None),
            Err(e) => {
                let data = e.as_error_resp().and_then(|r| r.as_revert_data());
                (
                    1_000_000,
                    Some(
                        data.map(|d| format!("0x{}", hex::encode(d)))
                            .unwrap_or_else(|| e.to_string()),
                    ),
                )
            }
        };
        let fees = provider.estimate_eip1559_fees().await?;
        let request = base
            .with_gas_limit(gas)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let envelope = request.build(&wallet).await?;
        let raw = envelope.encoded_2718();
        let hash = *envelope.tx_hash();
        store
            .record_attempt(
                tx.id,
                &NewTxAttempt {
                    tx_hash: hash,
                    raw_tx: Bytes::from(raw.clone()),
                    max_fee_per_gas: fees.max_fee_per_gas,
                    max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
                },
            )
            .await?;
        let receipt = provider
            .send_raw_transaction(&raw)
            .await?
            .get_receipt()
            .await?;
        store.mark_broadcast(tx.id, hash).await?;
        store
            .mark_mined(
                tx.id,
                &MinedReceipt {
                    tx_hash: hash,
                    block_number: receipt.block_number.unwrap_or_default(),
                    block_hash: receipt.block_hash.unwrap_or_default(),
                    gas_used: receipt.gas_used,
                    effective_gas_price: receipt.effective_gas_price,
                    succeeded: receipt.status(),
                    revert_reason: if receipt.status() {
                        None
                    } else {
                        revert_reason
                    },
                },
            )
            .await?;
        store.mark_final(tx.id).await?;
    }
    Ok(())
}

// ---- tests ---------------------------------------------------------------------------------

async fn authorize_capture_partial_then_rest(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_secs(20)).await;
    let payer_before = env.chain.balance(env.chain.payer.address()).await;
    let view = env.authorize(AMOUNT).await;
    assert_eq!(view.amounts.authorized, u128::from(AMOUNT));
    assert_eq!(
        env.chain_state(view.payment_hash).await,
        (u128::from(AMOUNT), 0)
    );
    assert_eq!(
        env.chain.balance(env.chain.payer.address()).await,
        payer_before - u128::from(AMOUNT)
    );

    let view = env
        .capture(view.id, Some(4 * USDC))
        .await
        .expect("capture 4");
    assert_eq!(view.status, PaymentStatus::PartiallyCaptured);
    assert_eq!(view.amounts.capturable, u128::from(6 * USDC));
    // Fee: 1% of 4 to the fee receiver.
    assert_eq!(env.chain.balance(env.chain.fee_receiver).await, 40_000);
    let view = env.capture(view.id, None).await.expect("capture rest");
    assert_eq!(view.status, PaymentStatus::Captured);
    assert_eq!(view.amounts.captured, u128::from(AMOUNT));
    assert_eq!(
        env.chain_state(view.payment_hash).await,
        (0, u128::from(AMOUNT))
    );
    assert_eq!(
        env.chain.balance(env.chain.receiver).await,
        u128::from(AMOUNT - AMOUNT / 100)
    );
    assert_eq!(
        env.webhook_types(view.id).await,
        ["payment.authorized", "payment.captured", "payment.captured"]
    );
    let events = env.store.webhook_events_for_payment(view.id).await.unwrap();
    assert_eq!(
        events[0].payload["data"]["requestId"],
        json!(view.request_id)
    );
    // Every payload is the SDK's published shape, so merchants' `verify_event` accepts it.
    for event in &events {
        let body: x402_escrow_sdk::webhooks::WebhookEvent =
            serde_json::from_value(event.payload.clone()).expect("SDK-shaped webhook body");
        assert_eq!(body.id, event.id.to_string());
        assert_eq!(Some(body.data.request_id.clone()), view.request_id);
        assert_eq!(body.data.payment_hash, view.payment_hash);
    }
    let captured: x402_escrow_sdk::webhooks::WebhookEvent =
        serde_json::from_value(events[2].payload.clone()).unwrap();
    assert!(
        captured.data.amount.is_some(),
        "a capture event says how much it moved"
    );
    assert_eq!(view.transactions.len(), 3);
    assert!(
        view.transactions
            .iter()
            .all(|t| t.status == "final" && t.hash.is_some())
    );
    env.assert_reconciled(view.id).await;
    assert!(env.engine.reconcile_all(100).await.unwrap().is_empty());
    // Lookups are scoped to the merchant.
    let list = env
        .engine
        .by_request_id(&env.merchant, view.request_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        env.engine
            .get(&env.other_merchant, view.id, None)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
}

async fn authorize_then_void(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_secs(20)).await;
    let payer_before = env.chain.balance(env.chain.payer.address()).await;
    let view = env.authorize(AMOUNT).await;
    let view = env.engine.void(&env.merchant, view.id).await.expect("void");
    assert_eq!(view.status, PaymentStatus::Voided);
    assert_eq!(
        env.chain.balance(env.chain.payer.address()).await,
        payer_before
    );
    assert_eq!(env.chain_state(view.payment_hash).await, (0, 0));
    assert_eq!(
        env.webhook_types(view.id).await,
        ["payment.authorized", "payment.voided"]
    );
    // Illegal afterwards.
    let err = env.capture(view.id, None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidState);
    let err = env.engine.void(&env.merchant, view.id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidState);
}

/// `GET /v1/payments/{id}?wait=`: the long poll answers once the hold is on chain (woken by the
/// engine applying the outcome), a plain get answers at once, and someone else's payment is
/// `not_found` before any wait.
async fn get_waits_for_an_authorizing_payment(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_secs(20)).await;
    let registry = env.registry();
    env.pause_sender().await;
    let (_, view) = env.authorize_no_wait(&registry).await;
    let now = env.engine.get(&env.merchant, view.id, None).await.unwrap();
    assert_eq!(now.status, PaymentStatus::Authorizing);
    let err = env
        .engine
        .get(&env.other_merchant, view.id, Some(Duration::from_secs(20)))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);

    let resume = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        env.sending.store(true, Ordering::SeqCst);
        env.wake.notify_waiters();
    };
    let (waited, ()) = tokio::join!(
        env.engine
            .get(&env.merchant, view.id, Some(Duration::from_secs(20))),
        resume
    );
    let waited = waited.unwrap();
    assert_eq!(waited.status, PaymentStatus::Authorized);
    assert_eq!(waited.amounts.authorized, u128::from(AMOUNT));
    assert_eq!(
        env.chain_state(waited.payment_hash).await,
        (u128::from(AMOUNT), 0)
    );
}

async fn capture_then_refund_with_float(ctx: Ctx) {
    let env = Env::new(ctx, true, Duration::from_secs(20)).await;
    let view = env.authorize(AMOUNT).await;
    let view = env.capture(view.id, Some(6 * USDC)).await.unwrap();
    let err = env.refund(view.id, 7 * USDC).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ExceedsRefundable);
    let payer_before = env.chain.balance(env.chain.payer.address()).await;
    let view = env.refund(view.id, 2 * USDC).await.expect("refund");
    assert_eq!(view.amounts.refunded, u128::from(2 * USDC));
    assert_eq!(view.status, PaymentStatus::PartiallyCaptured);
    assert_eq!(
        env.chain.balance(env.chain.payer.address()).await,
        payer_before + u128::from(2 * USDC)
    );
    assert_eq!(
        env.chain_state(view.payment_hash).await,
        (u128::from(4 * USDC), u128::from(4 * USDC))
    );
    // The approve went out first (kind `approve`, no payment), then the refund; a second refund
    // needs no new approve.
    assert_eq!(
        count(
            &env.store,
            "chain_txs WHERE kind = 'approve' AND payment_id IS NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &env.store,
            "chain_txs WHERE kind = 'refund' AND payment_id IS NULL"
        )
        .await,
        0
    );
    let rows_before = count(&env.store, "chain_txs").await;
    let view = env.refund(view.id, USDC).await.expect("refund again");
    assert_eq!(view.amounts.refunded, u128::from(3 * USDC));
    assert_eq!(count(&env.store, "chain_txs").await, rows_before + 1);
    assert!(
        env.webhook_types(view.id)
            .await
            .ends_with(&["payment.refunded".to_owned(), "payment.refunded".to_owned()])
    );
    env.assert_reconciled(view.id).await;
}

async fn refund_refused_without_float(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_secs(20)).await;
    let view = env.authorize(AMOUNT).await;
    let view = env.capture(view.id, None).await.unwrap();
    let rows = count(&env.store, "chain_txs").await;
    let err = env.refund(view.id, USDC).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::RefundFloatInsufficient);
    assert_eq!(count(&env.store, "chain_txs").await, rows);
    assert_eq!(
        env.engine
            .get(&env.merchant, view.id, None)
            .await
            .unwrap()
            .status,
        PaymentStatus::Captured
    );
}

async fn verification_rejections_write_nothing(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_secs(20)).await;
    let registry = env.registry();
    let stranger = Address::repeat_byte(0x77);
    type Mutate = Box<dyn Fn(&mut serde_json::Value) + Send + Sync>;
    let cases: Vec<(&str, ErrorCode, Mutate)> = vec![
        (
            "wrong chain",
            ErrorCode::WrongChain,
            Box::new(|r| r["network"] = json!("eip155:8453")),
        ),
        (
            "wrong operator",
            ErrorCode::WrongOperator,
            Box::new(move |r| r["extra"]["captureAuthorizer"] = json!(stranger)),
        ),
        (
            "payee not allowed",
            ErrorCode::PayeeNotAllowed,
            Box::new(move |r| r["payTo"] = json!(stranger)),
        ),
        (
            "unsupported asset",
            ErrorCode::UnsupportedAsset,
            Box::new(move |r| r["asset"] = json!(stranger)),
        ),
        (
            "zero amount",
            ErrorCode::InvalidAmount,
            Box::new(|r| r["amount"] = json!("0")),
        ),
        (
            "capture deadline before merchant deadline",
            ErrorCode::Expired,
            Box::new(|r| {
                let d = r["extra"]["captureDeadline"].as_u64().unwrap();
                r["extra"]["captureDeadline"] = json!(d - 7200 + 600);
            }),
        ),
        (
            "pre-approval too short",
            ErrorCode::Expired,
            Box::new(|r| r["maxTimeoutSeconds"] = json!(10)),
        ),
        (
            "fee range excludes ours",
            ErrorCode::InvalidFee,
            Box::new(|r| r["extra"]["maxFeeBps"] = json!(50)),
        ),
        (
            "min fee above ours",
            ErrorCode::InvalidFee,
            Box::new(|r| r["extra"]["minFeeBps"] = json!(200)),
        ),
        (
            "foreign fee receiver",
            ErrorCode::InvalidFee,
            Box::new(move |r| r["extra"]["feeRecipient"] = json!(stranger)),
        ),
    ];
    for (name, code, mutate) in cases {
        let mut requirements = env.requirements_json(AMOUNT).await;
        mutate(&mut requirements);
        let mut registry = registry.clone();
        if name == "wrong chain" {
            // The payer's side must still be able to build the payload.
            registry = EscrowRegistry::only(EscrowDeployment::from(&env.chain.deployment));
        }
        let req = env.pay(requirements, &env.chain.payer, &registry).await;
        let err = env.refused(req).await;
        assert_eq!(err.code, code, "{name}: {err}");
    }

    // Wrong escrow: a deployment the payer knows and we do not.
    let mut requirements = env.requirements_json(AMOUNT).await;
    requirements["extra"]["authCaptureEscrow"] = json!(stranger);
    let mut payer_registry = registry.clone();
    payer_registry.register(EscrowDeployment::v1_0_interface(
        "elsewhere",
        stranger,
        Address::repeat_byte(0x78),
        None,
    ));
    let req = env
        .pay(requirements, &env.chain.payer, &payer_registry)
        .await;
    assert_eq!(env.refused(req).await.code, ErrorCode::WrongEscrow);

    // Amount above uint120 (requirements and the echoed `accepted` agree; the signature does
    // not matter, the amount is refused first).
    let mut req = env.pay_amount(&registry).await;
    let huge: x402_escrow_sdk::Amount = "1329227995784915872903807060280344576".parse().unwrap();
    req.payment_requirements.amount = huge;
    req.payment_payload.accepted.amount = huge;
    assert_eq!(env.refused(req).await.code, ErrorCode::InvalidAmount);

    // Bad signature: signed by someone else, claimed to be from the payer.
    let mut req = env
        .pay(
            env.requirements_json(AMOUNT).await,
            &PrivateKeySigner::random(),
            &registry,
        )
        .await;
    if let SchemePayload::AuthCapture(p) = &mut req.payment_payload.payload {
        p.authorization.from = env.chain.payer.address();
    }
    assert_eq!(env.refused(req).await.code, ErrorCode::InvalidSignature);

    // Insufficient balance: a payer with no tokens.
    let poor = PrivateKeySigner::random();
    let req = env
        .pay(env.requirements_json(AMOUNT).await, &poor, &registry)
        .await;
    assert_eq!(env.refused(req).await.code, ErrorCode::InsufficientFunds);

    // A signature only the chain can judge (smart-wallet length) fails the simulation.
    let mut req = env.pay_amount(&registry).await;
    if let SchemePayload::AuthCapture(p) = &mut req.payment_payload.payload {
        let mut sig = p.signature.to_vec();
        sig.extend_from_slice(&[0u8; 31]);
        p.signature = Bytes::from(sig);
    }
    let err = env.refused(req).await;
    assert_eq!(err.code, ErrorCode::SimulationFailed, "{err}");

    // Reused nonce: the authorization was spent outside this operator's database.
    let req = env.pay_amount(&registry).await;
    env.pause_sender().await;
    env.authorize_outside_outbox(&req, &registry).await;
    env.sending.store(true, Ordering::SeqCst);
    assert_eq!(env.refused(req).await.code, ErrorCode::AuthorizationUsed);

    assert_eq!(count(&env.store, "payments").await, 0);
    assert_eq!(count(&env.store, "chain_txs").await, 0);
    assert_eq!(count(&env.store, "webhook_events").await, 0);
}

async fn illegal_actions(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_secs(20)).await;
    let view = env.authorize(AMOUNT).await;
    let err = env.capture(view.id, Some(AMOUNT + 1)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ExceedsCapturable);
    let err = env.refund(view.id, 1).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidState, "nothing captured yet");
    for err in [
        env.engine
            .capture(&env.other_merchant, view.id, CaptureRequest::default())
            .await
            .unwrap_err(),
        env.engine
            .void(&env.other_merchant, view.id)
            .await
            .unwrap_err(),
        env.engine
            .refund(&env.other_merchant, view.id, RefundRequest { amount: 1 })
            .await
            .unwrap_err(),
        env.engine
            .get(&env.merchant, Uuid::now_v7(), None)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code, ErrorCode::NotFound);
    }
    // A second request while one is in flight.
    env.pause_sender().await;
    let engine = env.engine_waiting(Duration::from_millis(50));
    let v = engine
        .capture(&env.merchant, view.id, CaptureRequest { amount: Some(1) })
        .await
        .unwrap();
    assert_eq!(v.status, PaymentStatus::Capturing);
    assert_eq!(
        engine.void(&env.merchant, view.id).await.unwrap_err().code,
        ErrorCode::PaymentBusy
    );
    env.sending.store(true, Ordering::SeqCst);
    let p = env.settled(view.id).await;
    assert_eq!(p.status, PaymentStatus::PartiallyCaptured);
}

async fn reverted_capture_records_decoded_error(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_millis(200)).await;
    let view = env.authorize(AMOUNT).await;
    env.pause_sender().await;
    let v = env.capture(view.id, None).await.unwrap();
    assert_eq!(v.status, PaymentStatus::Capturing);
    // The hold expires on chain before the capture is sent.
    let expiry = v.payment_info["authorizationExpiry"]
        .as_u64()
        .or_else(|| {
            v.payment_info["authorizationExpiry"]
                .as_str()
                .and_then(|s| s.parse().ok())
        })
        .expect("expiry");
    env.warp_to(expiry).await;
    env.sending.store(true, Ordering::SeqCst);
    env.wake.notify_one();
    let p = env.settled(view.id).await;
    assert_eq!(p.status, PaymentStatus::Authorized);
    assert_eq!(
        p.last_error_code.as_deref(),
        Some("AfterAuthorizationExpiry")
    );
    let txs = env.store.txs_for_payment(view.id).await.unwrap();
    assert_eq!(txs.last().unwrap().status, TxStatus::Reverted);
    // The sweep then marks it expired.
    assert_eq!(env.engine.tick().await.unwrap(), (0, 1));
    assert_eq!(
        env.store.get_payment(view.id).await.unwrap().status,
        PaymentStatus::Expired
    );
}

async fn payer_reclaim_observed(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_secs(20)).await;
    let view = env.authorize(AMOUNT).await;
    let payment = env.store.get_payment(view.id).await.unwrap();
    env.warp_to(payment.info.authorization_expiry).await;
    let payer = env.chain.provider_for(&env.chain.payer);
    let info = x402_escrow_operator::service::to_payment_info(&payment.info);
    let receipt = mined(
        AuthCaptureEscrow::new(env.chain.deployment.auth_capture_escrow, payer).reclaim(info),
    )
    .await;
    // What the indexer would store.
    env.store
        .insert_chain_event(&NewChainEvent {
            chain_id: env.chain.deployment.chain_id,
            address: env.chain.deployment.auth_capture_escrow,
            block_number: receipt.block_number.unwrap(),
            block_hash: receipt.block_hash.unwrap(),
            log_index: 0,
            tx_hash: receipt.transaction_hash,
            event_name: "PaymentReclaimed".into(),
            payment_hash: Some(view.payment_hash),
            amount: Some(u128::from(AMOUNT)),
            data: json!({}),
        })
        .await
        .unwrap();
    assert_eq!(env.engine.process_events().await.unwrap(), 1);
    assert_eq!(env.engine.process_events().await.unwrap(), 0);
    let p = env.store.get_payment(view.id).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Reclaimed);
    assert_eq!(
        env.webhook_types(view.id).await,
        ["payment.authorized", "payment.reclaimed"]
    );
    env.assert_reconciled(view.id).await;
}

async fn auto_void_after_capture_deadline(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_secs(20)).await;
    let view = env.authorize(AMOUNT).await;
    assert_eq!(env.engine.tick().await.unwrap(), (0, 0));
    env.ctx.clock.advance(3_600_001);
    assert_eq!(env.engine.tick().await.unwrap(), (1, 0));
    let p = env.settled(view.id).await;
    assert_eq!(p.status, PaymentStatus::Voided);
    assert_eq!(
        env.webhook_types(view.id).await,
        ["payment.authorized", "payment.voided"]
    );
    assert_eq!(env.engine.tick().await.unwrap(), (0, 0));
}

async fn outcomes_applied_exactly_once_after_restart(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_secs(20)).await;
    env.pause_sender().await;
    let (_, view) = env.authorize_no_wait(&env.registry()).await;
    // The engine "goes down"; the relayer keeps sending.
    env.sending.store(true, Ordering::SeqCst);
    env.wake.notify_one();
    let tx_id = env.pending_tx(view.id).await;
    for _ in 0..200 {
        if env.store.get_tx(tx_id).await.unwrap().status == TxStatus::Final {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        env.store.get_tx(tx_id).await.unwrap().status,
        TxStatus::Final
    );
    assert_eq!(
        env.store.get_payment(view.id).await.unwrap().status,
        PaymentStatus::Authorizing
    );
    // A fresh engine applies it once.
    let restarted = env.engine_waiting(Duration::from_secs(1));
    assert_eq!(restarted.process_outcomes().await.unwrap(), 1);
    assert_eq!(restarted.process_outcomes().await.unwrap(), 0);
    assert_eq!(
        restarted.on_tx_outcome(tx_id).await.unwrap(),
        OutcomeApplied::Ignored
    );
    let p = env.store.get_payment(view.id).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Authorized);
    assert_eq!(p.pending_tx_id, None);
    assert_eq!(env.webhook_types(view.id).await, ["payment.authorized"]);
}

async fn abandoned_outcomes_reconciled_from_chain(ctx: Ctx) {
    let env = Env::new(ctx, false, Duration::from_millis(200)).await;
    env.pause_sender().await;
    let registry = env.registry();
    // 1. The authorize got mined under a hash the relayer lost track of: the chain says held.
    let (req, view) = env.authorize_no_wait(&registry).await;
    let tx_id = env.pending_tx(view.id).await;
    let payment_info = env.authorize_outside_outbox(&req, &registry).await;
    env.store.mark_abandoned(tx_id, "lost").await.unwrap();
    assert_eq!(
        env.engine.on_tx_outcome(tx_id).await.unwrap(),
        OutcomeApplied::Applied(PaymentStatus::Authorized)
    );
    assert_eq!(
        env.engine.on_tx_outcome(tx_id).await.unwrap(),
        OutcomeApplied::Ignored
    );
    assert_eq!(env.webhook_types(view.id).await, ["payment.authorized"]);
    env.assert_reconciled(view.id).await;
    // A void nobody recorded shows up as a difference.
    mined(env.escrow_as_operator().void(payment_info)).await;
    let diffs = env.engine.reconcile_payment(view.id).await.unwrap();
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(
        (
            diffs[0].field,
            diffs[0].database.as_str(),
            diffs[0].chain.as_str()
        ),
        ("capturable", "10000000", "0")
    );

    // 2. A capture mined outside the outbox's knowledge is reconciled as captured.
    env.sending.store(true, Ordering::SeqCst);
    let view = env.authorize(AMOUNT).await;
    env.pause_sender().await;
    let v = env.capture(view.id, Some(3 * USDC)).await.unwrap();
    assert_eq!(v.status, PaymentStatus::Capturing);
    let payment = env.store.get_payment(view.id).await.unwrap();
    let capture_tx = payment.pending_tx_id.unwrap();
    mined(env.escrow_as_operator().capture(
        x402_escrow_operator::service::to_payment_info(&payment.info),
        U256::from(3 * USDC),
        FEE_BPS,
        env.chain.fee_receiver,
    ))
    .await;
    env.store.mark_abandoned(capture_tx, "lost").await.unwrap();
    assert_eq!(
        env.engine.on_tx_outcome(capture_tx).await.unwrap(),
        OutcomeApplied::Applied(PaymentStatus::PartiallyCaptured)
    );
    env.assert_reconciled(view.id).await;
    env.pause_sender().await;

    // 3. Abandoned and never mined: the chain holds nothing, the payment failed.
    let (_, view) = env.authorize_no_wait(&registry).await;
    let tx_id = env.pending_tx(view.id).await;
    env.store.mark_abandoned(tx_id, "never sent").await.unwrap();
    assert_eq!(env.engine.process_outcomes().await.unwrap(), 1);
    let p = env.store.get_payment(view.id).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Failed);
    assert_eq!(p.last_error_code.as_deref(), Some("abandoned"));
    assert_eq!(env.webhook_types(view.id).await, ["payment.failed"]);
}

store_tests!(
    sqlite: [
        authorize_capture_partial_then_rest,
        authorize_then_void,
        get_waits_for_an_authorizing_payment,
        capture_then_refund_with_float,
        refund_refused_without_float,
        verification_rejections_write_nothing,
        illegal_actions,
        reverted_capture_records_decoded_error,
        payer_reclaim_observed,
        auto_void_after_capture_deadline,
        outcomes_applied_exactly_once_after_restart,
        abandoned_outcomes_reconciled_from_chain,
    ],
    postgres: [
        authorize_capture_partial_then_rest,
        get_waits_for_an_authorizing_payment,
        outcomes_applied_exactly_once_after_restart,
    ],
);
