//! The facilitator test environment: a full operator on anvil with the facilitator routes
//! served over its engine, the merchant's requirements, signed payments and lifecycle bodies
//! (shared by `facilitator_api.rs` and `facilitator_delegated.rs`; each uses part of it).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use axum::Router;
use serde_json::{Value, json};
use x402_escrow_operator::api::ApiState;
use x402_escrow_operator::api::facilitator::{self, FacilitatorSettings};
use x402_escrow_operator::config::Config;
use x402_escrow_operator::engine::Engine;
use x402_escrow_operator::runtime::{self, RunningOperator};
use x402_escrow_sdk::facilitator::VerifyRequest;
use x402_escrow_sdk::schemes::auth_capture::{self, LifecycleOperation, LifecyclePayload};
use x402_escrow_sdk::schemes::exact;
use x402_escrow_sdk::wire::{PaymentPayload, PaymentRequirements, SchemePayload};
use x402_escrow_sdk::{EscrowDeployment, EscrowRegistry, random_b256};

use crate::operator_support::{self, Chain, TestEscrow, USDC};

/// The shared test chain (its roles: key 1 the operator's signer, key 2 the payer, address 3
/// the merchant's receiver, 4 the fee receiver; [`Env`] derefs to it), a full operator on a
/// SQLite file, and the facilitator routes served over its engine.
pub struct Env {
    pub chain: Chain,
    pub _dir: tempfile::TempDir,
    pub operator: Option<RunningOperator>,
    pub signer: Address,
    /// Dev key 5: no tokens.
    pub poor_payer: PrivateKeySigner,
    pub api_key: String,
    pub base: String,
    pub http: reqwest::Client,
    pub server: tokio::task::JoinHandle<()>,
    pub config: Config,
    pub settle_wait: Duration,
}

impl std::ops::Deref for Env {
    type Target = Chain;

    fn deref(&self) -> &Chain {
        &self.chain
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(op) = self.operator.take() {
            op.abort();
        }
    }
}

/// Serves the facilitator routes over `op`'s engine; the base URL and the server task.
pub async fn serve(
    op: &RunningOperator,
    settle_wait: Duration,
) -> (String, tokio::task::JoinHandle<()>) {
    let state = ApiState::new(Arc::new(op.engine.clone()), op.store.clone());
    let app: Router = Router::new()
        .merge(facilitator::routes::<Engine>(
            op.store.clone(),
            FacilitatorSettings::new(settle_wait),
        ))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, server)
}

impl Env {
    pub async fn new(settle_wait: Duration) -> Env {
        Env::with_config(settle_wait, |_| {}).await
    }

    /// [`Env::new`], with `adjust` applied to the operator's configuration.
    pub async fn with_config(settle_wait: Duration, adjust: impl FnOnce(&mut Config)) -> Env {
        Env::on_chain(Chain::start().await, settle_wait, adjust).await
    }

    /// [`Env::new`] on a chain whose escrow is `escrow` (ours, the reference v1.0 contracts,
    /// or our v1.1-interface escrow).
    pub async fn with_escrow(escrow: TestEscrow) -> Env {
        Env::on_chain(
            Chain::start_with(escrow).await,
            Duration::from_secs(20),
            |_| {},
        )
        .await
    }

    async fn on_chain(
        chain: Chain,
        settle_wait: Duration,
        adjust: impl FnOnce(&mut Config),
    ) -> Env {
        // The refund float.
        chain.mint(chain.operator.address(), 50 * USDC).await;
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}/operator.db?mode=rwc", dir.path().display());
        let mut config = operator_support::config(&db_url, &chain);
        // The relayer's and the sweeper's own timing (no fee bump while a test holds blocks
        // back), and no webhooks.
        config.relayer = Config::default().relayer;
        config.auto_void = Config::default().auto_void;
        config.auto_void.expiry_margin_secs = 60;
        config.webhooks.enabled = false;
        adjust(&mut config);
        let op = runtime::start(config.clone()).await.expect("operator");
        let (shop, api_key) =
            operator_support::merchant(&op.store, "shop", chain.receiver, None).await;
        operator_support::credit_reserve(&op.store, shop.id, &chain).await;
        let (base, server) = serve(&op, settle_wait).await;
        Env {
            poor_payer: chain.key(5).expect("key 5"),
            chain,
            _dir: dir,
            signer: op.signer,
            operator: Some(op),
            api_key,
            base,
            http: reqwest::Client::new(),
            server,
            config,
            settle_wait,
        }
    }

    /// An environment whose settlements wait 20 s, the merchant's requirements for `amount`,
    /// and the payer's signed payment of them.
    pub async fn with_payment(amount: u64) -> (Env, Value, VerifyRequest) {
        let env = Env::new(Duration::from_secs(20)).await;
        let requirements = env.requirements(amount).await;
        let req = env.pay(&requirements, &env.payer).await;
        (env, requirements, req)
    }

    /// Stops the operator (as a deploy would) and starts a new one on the same database and
    /// chain: nothing of the old process's memory survives.
    pub async fn restart(&mut self) {
        self.server.abort();
        if let Some(op) = self.operator.take() {
            op.shutdown().await;
        }
        let op = runtime::start(self.config.clone()).await.expect("operator");
        let (base, server) = serve(&op, self.settle_wait).await;
        self.base = base;
        self.server = server;
        self.operator = Some(op);
    }

    /// How many outbox rows of `kind` the database holds.
    pub async fn tx_count(&self, kind: &str) -> i64 {
        let store = &self.operator.as_ref().unwrap().store;
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM chain_txs WHERE kind = $1")
            .bind(kind)
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    pub fn network(&self) -> String {
        format!("eip155:{}", self.deployment.chain_id)
    }

    pub fn registry(&self) -> EscrowRegistry {
        EscrowRegistry::only(EscrowDeployment::from(&self.deployment))
    }

    pub async fn requirements(&self, amount: u64) -> Value {
        self.chain
            .requirements(amount, self.signer, self.receiver)
            .await
    }

    /// Holds blocks back (automine off) until [`Env::mine_held`].
    pub async fn hold_blocks(&self) {
        self.plain.anvil_set_auto_mine(false).await.unwrap();
    }

    /// Mines one block with what was held back and turns automine on again.
    pub async fn mine_held(&self) {
        self.plain.anvil_mine(Some(1), None).await.unwrap();
        self.plain.anvil_set_auto_mine(true).await.unwrap();
    }

    /// Settles `req` again (at most `tries` times, `pause` apart) until it answers success.
    pub async fn settle_until_success(
        &self,
        req: &VerifyRequest,
        tries: u32,
        pause: Duration,
    ) -> Value {
        let mut last = Value::Null;
        for _ in 0..tries {
            last = self.settle(req).await;
            if last["success"] == true {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        last
    }

    pub async fn exact_requirements(&self, amount: u64) -> Value {
        self.chain.exact_requirements(amount, self.receiver, 300)
    }

    /// A signed auth-capture payment by `payer` for `requirements`.
    pub async fn pay(&self, requirements: &Value, payer: &PrivateKeySigner) -> VerifyRequest {
        let requirements: PaymentRequirements =
            serde_json::from_value(requirements.clone()).expect("requirements");
        let now = self.now().await;
        let payload =
            auth_capture::build_payload(&requirements, payer, now, random_b256(), &self.registry())
                .expect("payload");
        VerifyRequest::new(
            PaymentPayload::new(requirements.clone(), payload),
            requirements,
        )
    }

    pub async fn pay_exact(&self, requirements: &Value, payer: &PrivateKeySigner) -> VerifyRequest {
        let requirements: PaymentRequirements =
            serde_json::from_value(requirements.clone()).expect("requirements");
        let now = self.now().await;
        let payload =
            exact::build_payload(&requirements, payer, now, random_b256()).expect("payload");
        VerifyRequest::new(
            PaymentPayload::new(requirements.clone(), payload),
            requirements,
        )
    }

    /// A lifecycle settle body for the payment `original` authorized.
    pub fn lifecycle(
        &self,
        original: &VerifyRequest,
        op: LifecycleOperation,
        amount: Option<u64>,
    ) -> VerifyRequest {
        let derived = auth_capture::derive_from_payment_payload(
            &original.payment_requirements,
            &original.payment_payload,
            &self.registry(),
        )
        .unwrap();
        let mut payload = LifecyclePayload::new(op, derived.payment_info_json());
        payload.salt_nonce = derived.salt_nonce;
        payload.settle.amount = amount.map(x402_escrow_sdk::Amount::from);
        let requirements = original.payment_requirements.clone();
        VerifyRequest::new(
            PaymentPayload::new(requirements.clone(), payload),
            requirements,
        )
    }

    /// [`Env::lifecycle`] expecting the balances the payment has on chain now
    /// (`expectedCapturableAmount`, `expectedRefundableAmount`).
    pub async fn lifecycle_now(
        &self,
        original: &VerifyRequest,
        op: LifecycleOperation,
        amount: Option<u64>,
    ) -> VerifyRequest {
        let mut req = self.lifecycle(original, op, amount);
        let (capturable, refundable) = self.chain_state(original).await;
        set_expected(&mut req, capturable, refundable);
        req
    }

    /// The merchant's requirements for `amount` with consent delegated to the facilitator:
    /// `receiverAuthorizer` is the one `/supported` advertises (our signer), so lifecycle calls
    /// need no authorizer signature (the API key authenticates them).
    pub async fn delegated_requirements(&self, amount: u64) -> Value {
        let mut requirements = self.requirements(amount).await;
        requirements["extra"]["receiverAuthorizer"] = json!(self.signer);
        requirements
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.api_key);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POSTs `req` to `path`: the status and body.
    pub async fn post(&self, path: &str, req: &VerifyRequest) -> (u16, Value) {
        let body = serde_json::to_value(req).unwrap();
        self.call(reqwest::Method::POST, path, Some(&body)).await
    }

    /// POSTs `req` to `path`, which must answer 200: the body.
    pub async fn post_ok(&self, path: &str, req: &VerifyRequest) -> Value {
        let (status, body) = self.post(path, req).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    pub async fn verify(&self, req: &VerifyRequest) -> Value {
        self.post_ok("/verify", req).await
    }

    pub async fn settle(&self, req: &VerifyRequest) -> Value {
        self.post_ok("/settle", req).await
    }

    pub async fn chain_state(&self, req: &VerifyRequest) -> (u128, u128) {
        let derived = auth_capture::derive_from_payment_payload(
            &req.payment_requirements,
            &req.payment_payload,
            &self.registry(),
        )
        .unwrap();
        let (_, capturable, refundable) = self.state(derived.payment_info_hash).await;
        (capturable, refundable)
    }
}

/// Sets a lifecycle body's expected balances.
pub fn set_expected(req: &mut VerifyRequest, capturable: u128, refundable: u128) {
    if let SchemePayload::AuthCaptureLifecycle(p) = &mut req.payment_payload.payload {
        p.expected_capturable_amount = Some(x402_escrow_sdk::Amount::from(capturable));
        p.expected_refundable_amount = Some(x402_escrow_sdk::Amount::from(refundable));
    }
}

/// Completes a relayed charge (flow `authorization`) with what the operator charges: the whole
/// amount, its fee in basis points (our escrow takes `feeBps`) and the fee receiver.
pub fn complete_charge(req: &mut VerifyRequest, amount: u64, fee_bps: u16, fee_receiver: Address) {
    let charge = match &mut req.payment_payload.payload {
        SchemePayload::AuthCapture(p) => &mut p.charge,
        SchemePayload::AuthCapturePermit2(p) => &mut p.charge,
        _ => panic!("not a collect payload"),
    };
    charge.amount = Some(x402_escrow_sdk::Amount::from(amount));
    charge.fee_bps = Some(fee_bps);
    charge.fee_receiver = Some(fee_receiver);
}

pub fn assert_success(body: &Value) -> String {
    assert_eq!(body["success"], true, "{body}");
    let tx = body["transaction"].as_str().unwrap().to_owned();
    assert!(tx.starts_with("0x") && tx.len() == 66, "{body}");
    tx
}
