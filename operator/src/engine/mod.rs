//! The lifecycle engine: the only writer of payment status.
//!
//! Every action is written down first (payment transition + outbox row + webhook event in one
//! SQL transaction), then the relayer is woken to send it, then its outcome is applied when the
//! `chain_txs` row reaches `final`, `reverted` or `abandoned`. The chain (`paymentState`) is the
//! ground truth whenever the outbox cannot tell (abandoned transactions, `reconcile`).
//!
//! # The life of one payment (all in this file)
//!
//! | step | method | event | outbox / webhook |
//! |---|---|---|---|
//! | merchant submits an x402 payment | [`Engine::authorize`] | insert `authorizing` | `authorize` tx |
//! | authorize mined | [`Engine::on_tx_outcome`] | `AuthorizeConfirmed` | `payment.authorized` |
//! | authorize reverted | [`Engine::on_tx_outcome`] | `AuthorizeFailed{code}` | `payment.failed` |
//! | merchant submits an x402 payment of flow `authorization` | [`Engine::authorize`] | insert `charging` | `charge` tx |
//! | charge mined / reverted | [`Engine::on_tx_outcome`] | `ChargeConfirmed` / `ChargeFailed{code}` | `payment.captured` / `payment.failed` |
//! | merchant captures | [`Engine::capture`] | `CaptureRequested` | `capture` tx |
//! | capture mined / reverted | [`Engine::on_tx_outcome`] | `CaptureConfirmed` / `CaptureFailed` | `payment.captured` |
//! | merchant voids, or capture deadline | [`Engine::void`], [`Engine::tick`] | `VoidRequested` | `void` tx |
//! | void mined | [`Engine::on_tx_outcome`] | `VoidConfirmed` | `payment.voided` |
//! | merchant refunds | [`Engine::refund`] | `RefundRequested` | (`approve` tx) + `refund` tx |
//! | refund mined | [`Engine::on_tx_outcome`] | `RefundConfirmed` | `payment.refunded` |
//! | payer reclaims (chain event) | [`Engine::process_events`] | `ReclaimObserved` | `payment.reclaimed` |
//! | `authorizationExpiry` passes | [`Engine::tick`] | `Expired` | — |
//! | transaction abandoned | [`Engine::on_tx_outcome`] | what `paymentState` says | as above |
//!
//! Outcomes are idempotent: an outcome is applied only while `payments.pending_tx_id` still
//! names that transaction, and the transition clears it in the same SQL transaction.

mod batch;
pub mod facilitator;
mod waiter;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use alloy::sol_types::SolCall;
use serde_json::json;
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;
use x402_escrow_bindings::contracts::auth_capture_escrow::AuthCaptureEscrow as Escrow;
use x402_escrow_bindings::contracts::test_usdc::TestUSDC as Erc20;
use x402_escrow_bindings::{AuthCaptureEscrow, TestUSDC};

use x402_escrow_sdk::merchant::{MerchantTerms, TermsAsset};

use crate::lifecycle::{Amount, Flow, IllegalReason, PaymentEvent, PaymentStatus};
use crate::service::{
    AuthorizeRequest, CaptureRequest, ErrorCode, PaymentService, PaymentView, RefundRequest,
    ServiceError, TransactionView, payment_view, to_payment_info, to_record,
};
use crate::store::{
    ChainEvent, ChainTx, Merchant, NewChainTx, NewPayment, NewWebhookEvent, Payment, Store,
    StoreError, TransitionExtras, TxKind, TxStatus,
};
use crate::verify::{Verifier, VerifyError, decode_escrow_error};

pub use waiter::Waiters;

/// How many times a chain observation is retried after a concurrent change.
const RETRIES: u32 = 5;
/// Batch size of the sweeps.
const BATCH: u32 = 100;

/// What the engine needs to know beyond the verifier's configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our chain.
    pub chain_id: u64,
    /// Our signer (the escrow `operator`, and the `from` of every outbox row).
    pub signer: Address,
    /// The OperatorRefundCollector refunds are funded through.
    pub refund_collector: Address,
    /// Our fee in basis points (clamped into each payment's `[minFeeBps, maxFeeBps]`).
    pub fee_bps: u16,
    /// Our fee receiver (used when the payment's `feeReceiver` is zero).
    pub fee_receiver: Address,
    /// How long `authorize` & co. wait for the outcome when the request does not say.
    pub default_wait: Duration,
    /// Actions are refused this many seconds before the relevant expiry.
    pub expiry_margin_secs: u64,
    /// Whether [`Engine::tick`] voids holds past the merchant's capture deadline.
    pub auto_void: bool,
    /// The allowance the engine approves to the refund collector when it runs low (at least the
    /// refund being sent).
    pub refund_allowance: U256,
    /// How often a waiter re-reads the row when no in-process notification comes (another
    /// instance may be applying the outcome).
    pub poll_interval: Duration,
    /// The accepted tokens with their EIP-712 domains, as merchants are told
    /// ([`Engine::merchant_terms`]).
    pub assets: Vec<TermsAsset>,
}

/// The fee this operator charges (not part of `config::Config` yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    /// Fee in basis points, clamped into each payment's `[minFeeBps, maxFeeBps]` at capture.
    pub fee_bps: u16,
    /// Where fees go when the payment's `feeReceiver` is zero.
    pub fee_receiver: Address,
}

/// Builds the verifier's and the engine's configuration from the operator's [`Config`], the
/// deployment in use (its addresses; `[chain.contracts]` overrides win), the signer address and
/// the fee policy. The canonical v1.0 escrow is accepted too when `accept_canonical` is set.
///
/// [`Config`]: crate::config::Config
pub fn configs(
    config: &crate::config::Config,
    deployment: &x402_escrow_bindings::Deployment,
    signer: Address,
    fees: FeePolicy,
    accept_canonical: bool,
) -> (crate::verify::VerifierConfig, EngineConfig) {
    use x402_escrow_sdk::escrows::{EscrowDeployment, EscrowRegistry};
    let contracts = &config.chain.contracts;
    let ours = EscrowDeployment::v1_0_interface(
        format!("x402-escrow (chain {})", deployment.chain_id),
        contracts.escrow.unwrap_or(deployment.auth_capture_escrow),
        contracts
            .erc3009_collector
            .unwrap_or(deployment.erc3009_payment_collector),
        Some(
            contracts
                .refund_collector
                .unwrap_or(deployment.operator_refund_collector),
        ),
    );
    let refund_collector = contracts
        .refund_collector
        .unwrap_or(deployment.operator_refund_collector);
    let mut registry = EscrowRegistry::only(ours);
    if accept_canonical {
        registry.register(EscrowDeployment::canonical_v1_0());
    }
    let assets = deployment.token.iter().map(|t| t.address).collect();
    let asset_terms = deployment
        .token
        .iter()
        .map(|t| TermsAsset {
            address: t.address,
            name: t.name.clone(),
            version: t.version.clone(),
            decimals: t.decimals,
        })
        .collect();
    let verifier = crate::verify::VerifierConfig {
        chain_id: config.chain.chain_id,
        operator: signer,
        registry,
        assets,
        fee_bps: fees.fee_bps,
        fee_receiver: fees.fee_receiver,
        expiry_margin_secs: config.auto_void.expiry_margin_secs,
        default_capture_deadline_secs: config.auto_void.default_capture_deadline_secs,
    };
    let engine = EngineConfig {
        chain_id: config.chain.chain_id,
        signer,
        refund_collector,
        fee_bps: fees.fee_bps,
        fee_receiver: fees.fee_receiver,
        default_wait: Duration::from_secs(30),
        expiry_margin_secs: config.auto_void.expiry_margin_secs,
        auto_void: config.auto_void.enabled,
        refund_allowance: U256::from(1_000_000_000_000u64),
        poll_interval: Duration::from_millis(500),
        assets: asset_terms,
    };
    (verifier, engine)
}

/// Internal failures (store or chain), as opposed to refusals ([`ServiceError`]).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain RPC failed.
    #[error("chain: {0}")]
    Chain(String),
}

impl From<EngineError> for ServiceError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(e) => store_error(e),
            EngineError::Chain(m) => ServiceError::new(ErrorCode::ChainUnavailable, m),
        }
    }
}

/// Maps a store refusal to the API error a merchant sees.
fn store_error(e: StoreError) -> ServiceError {
    match &e {
        StoreError::NotFound { .. } => ServiceError::new(ErrorCode::NotFound, e.to_string()),
        StoreError::VersionMismatch { .. } => ServiceError::new(
            ErrorCode::PaymentBusy,
            "the payment changed concurrently; retry",
        ),
        StoreError::IllegalTransition(t) => {
            let code = match t.reason {
                IllegalReason::ExceedsCapturable { .. } => ErrorCode::ExceedsCapturable,
                IllegalReason::ExceedsRefundable { .. } => ErrorCode::ExceedsRefundable,
                IllegalReason::ZeroAmount => ErrorCode::InvalidAmount,
                _ => ErrorCode::InvalidState,
            };
            ServiceError::new(code, e.to_string())
        }
        StoreError::Conflict { .. } => ServiceError::new(ErrorCode::InvalidState, e.to_string()),
        _ => ServiceError::new(ErrorCode::Internal, e.to_string()),
    }
}

/// What applying a chain transaction's outcome did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeApplied {
    /// The payment moved; the status it moved to.
    Applied(PaymentStatus),
    /// Nothing to do: not terminal yet, no payment, or the payment no longer points at it.
    Ignored,
    /// A batch transaction's outcome reached its members: `settled` moved on (confirmed, or
    /// judged by `paymentState` when abandoned), `resent` went out again on their own (the batch
    /// reverted as a whole).
    Batch {
        /// Members whose payment moved to its next status.
        settled: usize,
        /// Members re-sent as single transactions.
        resent: usize,
    },
}

/// One disagreement between the database and `paymentState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The payment.
    pub payment_id: Uuid,
    /// Its hash.
    pub payment_hash: B256,
    /// `has_collected`, `capturable` or `refundable`.
    pub field: &'static str,
    /// What the database implies.
    pub database: String,
    /// What the chain says.
    pub chain: String,
}

/// The escrow's view of one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainState {
    /// `hasCollectedPayment`.
    pub has_collected: bool,
    /// `capturableAmount`.
    pub capturable: Amount,
    /// `refundableAmount`.
    pub refundable: Amount,
}

struct Inner {
    store: Store,
    provider: DynProvider,
    verifier: Verifier,
    config: EngineConfig,
    relayer: Arc<Notify>,
    waiters: Waiters,
}

/// The lifecycle engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store`, reading the chain through `provider`, waking the relayer through
    /// `relayer` whenever it writes an outbox row.
    pub fn new(
        store: Store,
        provider: DynProvider,
        verifier: Verifier,
        config: EngineConfig,
        relayer: Arc<Notify>,
    ) -> Self {
        Engine {
            inner: Arc::new(Inner {
                store,
                provider,
                verifier,
                config,
                relayer,
                waiters: Waiters::default(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    // ---------------------------------------------------------------- requests (merchants)

    async fn do_authorize(
        &self,
        merchant: &Merchant,
        request: AuthorizeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<PaymentView, ServiceError> {
        let cfg = &self.inner.config;
        let verifier = &self.inner.verifier;
        // A retry of a payment we already hold answers with that payment (the chain would
        // refuse the second authorize anyway: the ERC-3009 nonce is spent).
        if let Ok(derived) = x402_escrow_sdk::schemes::auth_capture::derive_from_payment_payload(
            &request.payment_requirements,
            &request.payment_payload,
            &verifier.config().registry,
        ) {
            tracing::Span::current().record(
                "payment_hash",
                tracing::field::display(derived.payment_info_hash),
            );
            if let Some(existing) = self
                .store()
                .payment_by_hash(derived.payment_info_hash)
                .await
                .map_err(store_error)?
            {
                if existing.merchant_id != merchant.id {
                    // Another merchant holds this signed payment: its ERC-3009 authorization is
                    // spent (or about to be), and nothing of that payment is shown here.
                    return Err(ServiceError::new(
                        ErrorCode::AuthorizationUsed,
                        "this signed payment was already submitted",
                    ));
                }
                let payment = self.wait(existing.id, request.wait).await?;
                return self.view(&payment).await;
            }
        }
        let now = verifier.acceptance_now().await?;
        let verified = verifier
            .verify(
                merchant,
                &request.payment_requirements,
                &request.payment_payload,
                now,
            )
            .await
            .map_err(|e: VerifyError| {
                tracing::info!(error = %e, code = %e.code(), "payment refused");
                ServiceError::from(e)
            })?;
        let derived = &verified.derived;
        let info = &derived.payment_info;
        // A charge is captured at once: no capture deadline, so no auto-void.
        let capture_deadline_at = match verified.flow {
            Flow::Authorize => Some(
                self.store()
                    .now_ms()
                    .saturating_add(secs_to_ms(verified.capture_deadline_secs)),
            ),
            Flow::Charge => None,
        };
        let new = NewPayment {
            merchant_id: merchant.id,
            payment_hash: derived.payment_info_hash,
            chain_id: derived.chain_id,
            escrow: derived.deployment.escrow,
            info: to_record(info),
            amount: verified.amount,
            flow: verified.flow,
            // Every payment carries a request id (webhooks and logs echo it): the merchant's, or
            // one made here when the caller sent none.
            request_id: Some(
                request
                    .request_id
                    .clone()
                    .unwrap_or_else(|| format!("req_{}", Uuid::now_v7().simple())),
            ),
            idempotency_key: idempotency_key.map(str::to_owned),
            capture_deadline_at,
        };
        let (kind, calldata, request_json) = match verified.flow {
            Flow::Authorize => {
                let call = Escrow::authorizeCall {
                    paymentInfo: info.clone(),
                    amount: U256::from(verified.amount),
                    tokenCollector: derived.deployment.erc3009_collector,
                    collectorData: verified.signature.clone(),
                };
                (
                    TxKind::Authorize,
                    call.abi_encode(),
                    json!({
                        "call": "authorize",
                        "paymentHash": derived.payment_info_hash,
                        "amount": verified.amount.to_string(),
                        "tokenCollector": derived.deployment.erc3009_collector,
                    }),
                )
            }
            Flow::Charge => {
                let call = Escrow::chargeCall {
                    paymentInfo: info.clone(),
                    amount: U256::from(verified.amount),
                    tokenCollector: derived.deployment.erc3009_collector,
                    collectorData: verified.signature.clone(),
                    feeBps: verified.fee_bps,
                    feeReceiver: verified.fee_receiver,
                };
                (
                    TxKind::Charge,
                    call.abi_encode(),
                    json!({
                        "call": "charge",
                        "paymentHash": derived.payment_info_hash,
                        "amount": verified.amount.to_string(),
                        "tokenCollector": derived.deployment.erc3009_collector,
                        "feeBps": verified.fee_bps,
                        "feeReceiver": verified.fee_receiver,
                    }),
                )
            }
        };
        let outbox = NewChainTx {
            chain_id: cfg.chain_id,
            signer: cfg.signer,
            kind,
            payment_id: None,
            request: request_json,
            to: derived.deployment.escrow,
            calldata: Bytes::from(calldata),
            value: U256::ZERO,
            gas_limit: None,
        };
        let (payment, _tx) = match self.store().insert_payment(&new, Some(&outbox)).await {
            Ok(done) => done,
            Err(StoreError::Conflict { .. }) => {
                // Raced with an identical request: answer with the winner.
                let existing = self
                    .store()
                    .payment_by_hash(derived.payment_info_hash)
                    .await
                    .map_err(store_error)?
                    .ok_or_else(|| {
                        ServiceError::new(ErrorCode::Internal, "conflict without row")
                    })?;
                (existing, None)
            }
            Err(e) => return Err(store_error(e)),
        };
        tracing::Span::current().record("payment_id", tracing::field::display(payment.id));
        tracing::info!(amount = %verified.amount, flow = %verified.flow, "authorize queued");
        self.inner.relayer.notify_one();
        let payment = self.wait(payment.id, request.wait).await?;
        self.view(&payment).await
    }

    /// Reads a payment of `merchant` (someone else's is `not_found`).
    async fn owned(&self, merchant: &Merchant, id: Uuid) -> Result<Payment, ServiceError> {
        match self.store().get_payment(id).await {
            Ok(p) if p.merchant_id == merchant.id => {
                let span = tracing::Span::current();
                span.record("payment_hash", tracing::field::display(p.payment_hash));
                if let Some(r) = &p.request_id {
                    span.record("request_id", r.as_str());
                }
                Ok(p)
            }
            Ok(_) | Err(StoreError::NotFound { .. }) => Err(ServiceError::new(
                ErrorCode::NotFound,
                format!("no payment {id}"),
            )),
            Err(e) => Err(store_error(e)),
        }
    }

    fn not_busy(payment: &Payment) -> Result<(), ServiceError> {
        if payment.status.is_in_flight() {
            return Err(ServiceError::new(
                ErrorCode::PaymentBusy,
                format!("payment is {}; one action at a time", payment.status),
            ));
        }
        Ok(())
    }

    /// The time capture and refund requests are judged at ([`Verifier::acceptance_now`]).
    async fn acceptance_now(&self) -> Result<u64, ServiceError> {
        Ok(self.inner.verifier.acceptance_now().await?)
    }

    async fn do_capture(
        &self,
        merchant: &Merchant,
        id: Uuid,
        request: CaptureRequest,
    ) -> Result<PaymentView, ServiceError> {
        let cfg = &self.inner.config;
        let payment = self.owned(merchant, id).await?;
        Self::not_busy(&payment)?;
        if !matches!(
            payment.status,
            PaymentStatus::Authorized | PaymentStatus::PartiallyCaptured
        ) {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                format!("cannot capture a payment that is {}", payment.status),
            ));
        }
        let capturable = payment.amounts.capturable();
        let amount = request.amount.unwrap_or(capturable);
        if amount == 0 {
            return Err(ServiceError::new(
                ErrorCode::InvalidAmount,
                "amount must be positive",
            ));
        }
        if amount > capturable {
            return Err(ServiceError::new(
                ErrorCode::ExceedsCapturable,
                format!("{amount} exceeds the capturable {capturable}"),
            ));
        }
        let now = self.acceptance_now().await?;
        if now.saturating_add(cfg.expiry_margin_secs) >= payment.info.authorization_expiry {
            return Err(ServiceError::new(
                ErrorCode::Expired,
                "the authorization expires too soon to capture",
            ));
        }
        let info = to_payment_info(&payment.info);
        let fee_bps = cfg
            .fee_bps
            .clamp(info.minFeeBps, info.maxFeeBps.max(info.minFeeBps));
        let fee_receiver = if info.feeReceiver != Address::ZERO {
            info.feeReceiver
        } else {
            cfg.fee_receiver
        };
        let call = Escrow::captureCall {
            paymentInfo: info,
            amount: U256::from(amount),
            feeBps: fee_bps,
            feeReceiver: fee_receiver,
        };
        let outbox = self.outbox(
            &payment,
            TxKind::Capture,
            call.abi_encode(),
            json!({"call": "capture", "amount": amount.to_string(), "feeBps": fee_bps, "feeReceiver": fee_receiver}),
        );
        self.request(
            payment,
            PaymentEvent::CaptureRequested { amount },
            vec![],
            outbox,
        )
        .await
    }

    async fn do_void(&self, merchant: &Merchant, id: Uuid) -> Result<PaymentView, ServiceError> {
        let payment = self.owned(merchant, id).await?;
        Self::not_busy(&payment)?;
        let (payment, outbox) = self.void_outbox(payment)?;
        self.request(payment, PaymentEvent::VoidRequested, vec![], outbox)
            .await
    }

    fn void_outbox(&self, payment: Payment) -> Result<(Payment, NewChainTx), ServiceError> {
        let allowed = matches!(
            payment.status,
            PaymentStatus::Authorized | PaymentStatus::PartiallyCaptured | PaymentStatus::Expired
        );
        if !allowed || payment.amounts.held() == 0 {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                format!("nothing to void in a payment that is {}", payment.status),
            ));
        }
        let call = Escrow::voidCall {
            paymentInfo: to_payment_info(&payment.info),
        };
        let outbox = self.outbox(
            &payment,
            TxKind::Void,
            call.abi_encode(),
            json!({"call": "void"}),
        );
        Ok((payment, outbox))
    }

    async fn do_refund(
        &self,
        merchant: &Merchant,
        id: Uuid,
        request: RefundRequest,
    ) -> Result<PaymentView, ServiceError> {
        let cfg = &self.inner.config;
        let payment = self.owned(merchant, id).await?;
        Self::not_busy(&payment)?;
        let amount = request.amount;
        if !matches!(
            payment.status,
            PaymentStatus::PartiallyCaptured
                | PaymentStatus::Captured
                | PaymentStatus::PartiallyRefunded
        ) {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                format!("cannot refund a payment that is {}", payment.status),
            ));
        }
        if amount == 0 {
            return Err(ServiceError::new(
                ErrorCode::InvalidAmount,
                "amount must be positive",
            ));
        }
        let refundable = payment.amounts.refundable();
        if amount > refundable {
            return Err(ServiceError::new(
                ErrorCode::ExceedsRefundable,
                format!("{amount} exceeds the refundable {refundable}"),
            ));
        }
        let now = self.acceptance_now().await?;
        if now.saturating_add(cfg.expiry_margin_secs) >= payment.info.refund_expiry {
            return Err(ServiceError::new(
                ErrorCode::Expired,
                "the refund window has closed",
            ));
        }
        // The float: the refund collector pulls `amount` from our signer.
        let token = TestUSDC::new(payment.info.token, self.inner.provider.clone());
        let balance = token
            .balanceOf(cfg.signer)
            .call()
            .await
            .map_err(|e| ServiceError::new(ErrorCode::ChainUnavailable, e.to_string()))?;
        // Refunds already queued draw on the same balance and allowance.
        let queued = U256::from(self.refunds_in_flight().await.map_err(ServiceError::from)?);
        let needed = U256::from(amount);
        if balance < needed + queued {
            return Err(ServiceError::new(
                ErrorCode::RefundFloatInsufficient,
                format!(
                    "operator balance {balance} cannot fund a refund of {amount} (plus {queued} queued)"
                ),
            ));
        }
        let allowance = token
            .allowance(cfg.signer, cfg.refund_collector)
            .call()
            .await
            .map_err(|e| ServiceError::new(ErrorCode::ChainUnavailable, e.to_string()))?;
        let mut before = Vec::new();
        if allowance < needed + queued {
            // Queued first, so it gets the lower nonce and is mined before the refund.
            let approve_to = cfg.refund_allowance.max(needed + queued);
            let call = Erc20::approveCall {
                spender: cfg.refund_collector,
                amount: approve_to,
            };
            before.push(NewChainTx {
                chain_id: cfg.chain_id,
                signer: cfg.signer,
                // Stopgap: the outbox has no `approve` kind yet (needs migration 0005); the row
                // has no payment, so no payment outcome is derived from it.
                kind: TxKind::Refund,
                payment_id: None,
                request: json!({"call": "approve", "token": payment.info.token, "spender": cfg.refund_collector, "amount": approve_to.to_string()}),
                to: payment.info.token,
                calldata: Bytes::from(call.abi_encode()),
                value: U256::ZERO,
                gas_limit: None,
            });
        }
        let call = Escrow::refundCall {
            paymentInfo: to_payment_info(&payment.info),
            amount: needed,
            tokenCollector: cfg.refund_collector,
            collectorData: Bytes::new(),
        };
        let outbox = self.outbox(
            &payment,
            TxKind::Refund,
            call.abi_encode(),
            json!({"call": "refund", "amount": amount.to_string(), "tokenCollector": cfg.refund_collector}),
        );
        self.request(
            payment,
            PaymentEvent::RefundRequested { amount },
            before,
            outbox,
        )
        .await
    }

    /// What the refunds in flight (queued or sent, not yet settled) will pull from the float.
    async fn refunds_in_flight(&self) -> Result<Amount, EngineError> {
        let mut total: Amount = 0;
        for p in self.store().payments_in_flight(1000).await? {
            if p.status != PaymentStatus::Refunding {
                continue;
            }
            if let Some(tx_id) = p.pending_tx_id {
                let tx = self.store().get_tx(tx_id).await?;
                if !tx.status.is_terminal() {
                    total = total.saturating_add(requested_amount(&tx).unwrap_or(0));
                }
            }
        }
        Ok(total)
    }

    fn outbox(
        &self,
        payment: &Payment,
        kind: TxKind,
        calldata: Vec<u8>,
        request: serde_json::Value,
    ) -> NewChainTx {
        NewChainTx {
            chain_id: self.inner.config.chain_id,
            signer: self.inner.config.signer,
            kind,
            payment_id: Some(payment.id),
            request,
            to: payment.escrow,
            calldata: Bytes::from(calldata),
            value: U256::ZERO,
            gas_limit: None,
        }
    }

    /// Writes a merchant-requested transition with its outbox row (and any rows that must be
    /// sent before it) in one SQL transaction, wakes the relayer, and waits for the outcome.
    async fn request(
        &self,
        payment: Payment,
        event: PaymentEvent,
        before: Vec<NewChainTx>,
        outbox: NewChainTx,
    ) -> Result<PaymentView, ServiceError> {
        let mut tx = self.store().begin().await.map_err(store_error)?;
        let result = async {
            for row in &before {
                tx.enqueue_tx(row).await?;
            }
            tx.transition_payment(
                payment.id,
                payment.version,
                &event,
                TransitionExtras {
                    outbox: Some(outbox),
                    ..Default::default()
                },
            )
            .await
        }
        .await;
        match result {
            Ok(_) => tx.commit().await.map_err(store_error)?,
            Err(e) => {
                if let Err(rb) = tx.rollback().await {
                    tracing::warn!(error = %rb, "rollback failed");
                }
                return Err(store_error(e));
            }
        }
        tracing::info!(event = event.name(), "action queued");
        self.inner.relayer.notify_one();
        let payment = self.wait(payment.id, None).await?;
        self.view(&payment).await
    }

    async fn wait(&self, id: Uuid, wait: Option<Duration>) -> Result<Payment, ServiceError> {
        let wait = wait.unwrap_or(self.inner.config.default_wait);
        Ok(self.wait_settled(id, wait).await?)
    }

    /// Waits up to `wait` for the payment to leave its in-flight status: woken in-process when
    /// this engine applies an outcome, re-reading the row every `poll_interval` otherwise, and
    /// applying the outcome itself when it finds the pending transaction settled (so it does not
    /// depend on who observed it). Returns the payment as it is then.
    pub async fn wait_settled(&self, id: Uuid, wait: Duration) -> Result<Payment, EngineError> {
        let deadline = tokio::time::Instant::now() + wait;
        let guard = self.inner.waiters.register(id);
        loop {
            let notified = guard.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let payment = self.store().get_payment(id).await?;
            if !payment.status.is_in_flight() {
                return Ok(payment);
            }
            if let Some(tx_id) = payment.pending_tx_id {
                let tx = self.store().get_tx(tx_id).await?;
                if tx.status.is_terminal() {
                    self.on_tx_outcome(tx_id).await?;
                    continue;
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(payment);
            }
            let step = (deadline - now).min(self.inner.config.poll_interval);
            let _ = tokio::time::timeout(step, notified).await;
        }
    }

    async fn view(&self, payment: &Payment) -> Result<PaymentView, ServiceError> {
        let txs = self
            .store()
            .txs_for_payment(payment.id)
            .await
            .map_err(store_error)?;
        let mut views = Vec::with_capacity(txs.len());
        for t in &txs {
            // The mined hash, or else the latest attempt's (sent, maybe bumped, not mined yet).
            let hash = match t.mined_tx_hash {
                Some(hash) => Some(hash),
                None if t.attempts > 0 => self
                    .store()
                    .attempts_for(t.id)
                    .await
                    .map_err(store_error)?
                    .last()
                    .map(|a| a.tx_hash),
                None => None,
            };
            views.push(TransactionView {
                kind: t.kind.as_str().to_owned(),
                hash,
                status: t.status.as_str().to_owned(),
                block_number: t.block_number,
            });
        }
        Ok(payment_view(payment, views))
    }

    // ---------------------------------------------------------------- outcomes (relayer)

    /// Applies the outcome of outbox row `chain_tx_id` to its payment. Idempotent: acts only
    /// while the payment's `pending_tx_id` is that row and the row is `final`, `reverted` or
    /// `abandoned`. Final → the `*Confirmed` event and its webhook; reverted → `*Failed` with
    /// the decoded custom error; abandoned → whatever `paymentState` says happened.
    pub async fn on_tx_outcome(&self, chain_tx_id: Uuid) -> Result<OutcomeApplied, EngineError> {
        let span = tracing::info_span!("tx_outcome", chain_tx = %chain_tx_id, payment_id = tracing::field::Empty, payment_hash = tracing::field::Empty, request_id = tracing::field::Empty);
        async {
            for _ in 0..RETRIES {
                match self.apply_outcome(chain_tx_id).await {
                    Err(EngineError::Store(e)) if e.is_retryable() => continue,
                    other => return other,
                }
            }
            self.apply_outcome(chain_tx_id).await
        }
        .instrument(span)
        .await
    }

    async fn apply_outcome(&self, chain_tx_id: Uuid) -> Result<OutcomeApplied, EngineError> {
        let tx = self.store().get_tx(chain_tx_id).await?;
        if !tx.status.is_terminal() {
            return Ok(OutcomeApplied::Ignored);
        }
        if matches!(tx.kind, TxKind::CaptureBatch | TxKind::VoidBatch) {
            return self.apply_batch_outcome(&tx).await;
        }
        let Some(payment_id) = tx.payment_id else {
            return Ok(OutcomeApplied::Ignored);
        };
        let payment = self.store().get_payment(payment_id).await?;
        let span = tracing::Span::current();
        span.record("payment_id", tracing::field::display(payment.id));
        span.record(
            "payment_hash",
            tracing::field::display(payment.payment_hash),
        );
        if let Some(r) = &payment.request_id {
            span.record("request_id", r.as_str());
        }
        if payment.pending_tx_id != Some(tx.id) {
            tracing::debug!("stale outcome (payment no longer waits for it)");
            return Ok(OutcomeApplied::Ignored);
        }
        let (event, message) = match tx.status {
            TxStatus::Final if tx.succeeded != Some(false) => (confirmed(&tx, &payment), None),
            TxStatus::Final | TxStatus::Reverted => {
                let code = revert_code(tx.revert_reason.as_deref());
                (
                    failed(tx.kind, code.clone()),
                    Some(format!("{} reverted: {code}", tx.kind)),
                )
            }
            _ => {
                let state = self.chain_state(&payment).await?;
                let event = from_chain_state(&tx, &payment, &state);
                let msg = event
                    .error_code()
                    .map(|_| format!("{} abandoned; chain state {state:?}", tx.kind));
                (event, msg)
            }
        };
        let webhook = webhook_for(&event, &payment, Some(&tx));
        let transition = self
            .store()
            .transition_payment(
                payment.id,
                payment.version,
                &event,
                TransitionExtras {
                    outbox: None,
                    webhook,
                    error_message: message,
                },
            )
            .await?;
        tracing::info!(status = %transition.payment.status, event = event.name(), "outcome applied");
        self.inner.waiters.wake(payment.id);
        Ok(OutcomeApplied::Applied(transition.payment.status))
    }

    /// Non-blocking form of [`Engine::on_tx_outcome`] for synchronous callbacks (e.g. the
    /// relayer's `TxObserver::on_outcome`): spawns it on the current tokio runtime. Without a
    /// runtime nothing happens here; the waiters and [`Engine::process_outcomes`] still apply it.
    pub fn notify_outcome(&self, chain_tx_id: Uuid) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let engine = self.clone();
        handle.spawn(async move {
            if let Err(e) = engine.on_tx_outcome(chain_tx_id).await {
                tracing::warn!(chain_tx = %chain_tx_id, error = %e, "applying outcome failed");
            }
        });
    }

    /// Applies every outcome the store holds for payments still waiting on a settled
    /// transaction (outcomes written while the engine was down). Returns how many were applied.
    pub async fn process_outcomes(&self) -> Result<usize, EngineError> {
        let mut applied = 0;
        for payment in self.store().payments_in_flight(1000).await? {
            let Some(tx_id) = payment.pending_tx_id else {
                continue;
            };
            let tx = self.store().get_tx(tx_id).await?;
            if tx.status.is_terminal() {
                match self.on_tx_outcome(tx_id).await? {
                    OutcomeApplied::Applied(_) => applied += 1,
                    OutcomeApplied::Batch { settled, resent } => applied += settled + resent,
                    OutcomeApplied::Ignored => {}
                }
            }
        }
        Ok(applied)
    }

    // ---------------------------------------------------------------- chain events (indexer)

    /// Applies unprocessed chain events: a `PaymentReclaimed` becomes `ReclaimObserved` (+
    /// `payment.reclaimed`); events of our own actions were already confirmed by their
    /// transactions and are just marked processed. Each event is marked processed in the same
    /// SQL transaction as the transition it causes. Returns how many events were handled.
    pub async fn process_events(&self) -> Result<usize, EngineError> {
        let events = self
            .store()
            .unprocessed_events(self.inner.config.chain_id, BATCH)
            .await?;
        let n = events.len();
        for event in events {
            self.process_event(&event).await?;
        }
        Ok(n)
    }

    async fn process_event(&self, event: &ChainEvent) -> Result<(), EngineError> {
        let payment = match event.payment_hash {
            Some(hash) => self.store().payment_by_hash(hash).await?,
            None => None,
        };
        let (Some(payment), "PaymentReclaimed") = (payment, event.event_name.as_str()) else {
            self.store().mark_event_processed(event.id).await?;
            return Ok(());
        };
        let span = tracing::info_span!("chain_event", event = %event.event_name, payment_id = %payment.id, payment_hash = %payment.payment_hash, request_id = payment.request_id.as_deref().unwrap_or(""));
        async {
            let amount = event.amount.unwrap_or_else(|| payment.amounts.held());
            let reclaim = PaymentEvent::ReclaimObserved { amount };
            for _ in 0..RETRIES {
                let current = self.store().get_payment(payment.id).await?;
                let mut tx = self.store().begin().await?;
                let result = tx
                    .transition_payment(
                        current.id,
                        current.version,
                        &reclaim,
                        TransitionExtras {
                            webhook: webhook_for(&reclaim, &current, None),
                            ..Default::default()
                        },
                    )
                    .await;
                match result {
                    Ok(t) => {
                        tx.mark_event_processed(event.id).await?;
                        tx.commit().await?;
                        tracing::info!(status = %t.payment.status, "reclaim observed");
                        self.inner.waiters.wake(current.id);
                        return Ok(());
                    }
                    Err(StoreError::VersionMismatch { .. }) => {
                        tx.rollback().await?;
                        continue;
                    }
                    Err(StoreError::IllegalTransition(e)) => {
                        // Already reflected (e.g. reconciled from paymentState): nothing to do.
                        tx.rollback().await?;
                        tracing::warn!(error = %e, "reclaim event not applicable");
                        self.store().mark_event_processed(event.id).await?;
                        return Ok(());
                    }
                    Err(e) => {
                        tx.rollback().await?;
                        return Err(e.into());
                    }
                }
            }
            Err(EngineError::Store(StoreError::VersionMismatch {
                id: payment.id,
                expected: payment.version,
                actual: None,
            }))
        }
        .instrument(span)
        .await
    }

    // ---------------------------------------------------------------- timers

    /// The sweeps: auto-void holds whose merchant capture deadline passed (store clock), then
    /// mark `Expired` what passed `authorizationExpiry` (chain clock). Returns (voids queued,
    /// payments expired).
    pub async fn tick(&self) -> Result<(usize, usize), EngineError> {
        let mut voids = 0;
        if self.inner.config.auto_void {
            let due = self
                .store()
                .payments_due_for_auto_void(self.store().now_ms(), BATCH)
                .await?;
            for payment in due {
                let span = tracing::info_span!("auto_void", payment_id = %payment.id, payment_hash = %payment.payment_hash, request_id = payment.request_id.as_deref().unwrap_or(""));
                let Ok((payment, outbox)) = self.void_outbox(payment) else {
                    continue;
                };
                let result = self
                    .store()
                    .transition_payment(
                        payment.id,
                        payment.version,
                        &PaymentEvent::VoidRequested,
                        TransitionExtras {
                            outbox: Some(outbox),
                            ..Default::default()
                        },
                    )
                    .instrument(span)
                    .await;
                match result {
                    Ok(_) => voids += 1,
                    // Someone acted on it meanwhile; the next sweep looks again.
                    Err(
                        e @ (StoreError::VersionMismatch { .. } | StoreError::IllegalTransition(_)),
                    ) => {
                        tracing::debug!(error = %e, "auto-void skipped");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if voids > 0 {
                self.inner.relayer.notify_one();
            }
        }
        let now = self
            .inner
            .verifier
            .chain_now()
            .await
            .map_err(|e| EngineError::Chain(e.to_string()))?;
        let mut expired = 0;
        for payment in self
            .store()
            .payments_past_authorization_expiry(now, BATCH)
            .await?
        {
            match self
                .store()
                .transition_payment(
                    payment.id,
                    payment.version,
                    &PaymentEvent::Expired,
                    TransitionExtras::default(),
                )
                .await
            {
                Ok(_) => expired += 1,
                Err(
                    e @ (StoreError::VersionMismatch { .. } | StoreError::IllegalTransition(_)),
                ) => {
                    tracing::debug!(error = %e, "expiry skipped");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((voids, expired))
    }

    /// Runs outcomes, events and sweeps every `interval` until `shutdown` turns true.
    pub async fn run(&self, interval: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.process_outcomes().await {
                tracing::warn!(error = %e, "processing outcomes failed");
            }
            if let Err(e) = self.process_events().await {
                tracing::warn!(error = %e, "processing chain events failed");
            }
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "sweep failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    // ---------------------------------------------------------------- reconciliation

    /// `paymentState(hash)` on the payment's escrow.
    pub async fn chain_state(&self, payment: &Payment) -> Result<ChainState, EngineError> {
        let escrow = AuthCaptureEscrow::new(payment.escrow, self.inner.provider.clone());
        let state = escrow
            .paymentState(payment.payment_hash)
            .call()
            .await
            .map_err(|e| EngineError::Chain(e.to_string()))?;
        Ok(ChainState {
            has_collected: state.hasCollectedPayment,
            capturable: state.capturableAmount.to::<u128>(),
            refundable: state.refundableAmount.to::<u128>(),
        })
    }

    /// Compares one payment with `paymentState` and lists the differences (none: they agree).
    /// In-flight payments are compared too (their transaction may simply not be mined yet).
    pub async fn reconcile_payment(&self, id: Uuid) -> Result<Vec<Difference>, EngineError> {
        let payment = self.store().get_payment(id).await?;
        let chain = self.chain_state(&payment).await?;
        let a = &payment.amounts;
        let mut out = Vec::new();
        let mut diff = |field: &'static str, database: String, chain: String| {
            if database != chain {
                out.push(Difference {
                    payment_id: payment.id,
                    payment_hash: payment.payment_hash,
                    field,
                    database,
                    chain,
                });
            }
        };
        let collected = a.authorized > 0;
        diff(
            "has_collected",
            collected.to_string(),
            chain.has_collected.to_string(),
        );
        // What the escrow should still hold: the capturable part, plus an expired remainder the
        // payer may not have reclaimed yet (either answer is consistent then).
        let expected_capturable = match payment.status {
            PaymentStatus::Voided | PaymentStatus::Reclaimed | PaymentStatus::Failed => 0,
            PaymentStatus::Expired => a.held(),
            _ if a.released > 0 && chain.capturable == a.held() => a.held(),
            _ => a.capturable(),
        };
        diff(
            "capturable",
            expected_capturable.to_string(),
            chain.capturable.to_string(),
        );
        diff(
            "refundable",
            a.refundable().to_string(),
            chain.refundable.to_string(),
        );
        Ok(out)
    }

    /// [`Engine::reconcile_payment`] for every payment (newest first, up to `limit`).
    pub async fn reconcile_all(&self, limit: u32) -> Result<Vec<Difference>, EngineError> {
        let filter = crate::store::PaymentFilter {
            limit: Some(limit),
            ..Default::default()
        };
        let mut out = Vec::new();
        for payment in self.store().list_payments(&filter).await? {
            out.extend(self.reconcile_payment(payment.id).await?);
        }
        Ok(out)
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The amount an outbox row asked for (`request.amount`).
fn requested_amount(tx: &ChainTx) -> Option<Amount> {
    tx.request.get("amount")?.as_str()?.parse().ok()
}

/// The `*Confirmed` event of a successful transaction.
fn confirmed(tx: &ChainTx, payment: &Payment) -> PaymentEvent {
    let amount = requested_amount(tx);
    match tx.kind {
        TxKind::Authorize => PaymentEvent::AuthorizeConfirmed {
            amount: amount.unwrap_or(payment.amount),
        },
        TxKind::Charge => PaymentEvent::ChargeConfirmed {
            amount: amount.unwrap_or(payment.amount),
        },
        TxKind::Capture | TxKind::CaptureBatch => PaymentEvent::CaptureConfirmed {
            amount: amount.unwrap_or(payment.amounts.capturable()),
        },
        TxKind::Void | TxKind::VoidBatch => PaymentEvent::VoidConfirmed {
            amount: payment.amounts.held(),
        },
        TxKind::Refund => PaymentEvent::RefundConfirmed {
            amount: amount.unwrap_or(0),
        },
        TxKind::NonceFill => PaymentEvent::AuthorizeFailed {
            code: "nonce_fill".into(),
        },
    }
}

/// The `*Failed` event of a transaction kind.
fn failed(kind: TxKind, code: String) -> PaymentEvent {
    match kind {
        TxKind::Authorize | TxKind::NonceFill => PaymentEvent::AuthorizeFailed { code },
        TxKind::Charge => PaymentEvent::ChargeFailed { code },
        TxKind::Capture | TxKind::CaptureBatch => PaymentEvent::CaptureFailed { code },
        TxKind::Void | TxKind::VoidBatch => PaymentEvent::VoidFailed { code },
        TxKind::Refund => PaymentEvent::RefundFailed { code },
    }
}

/// A stable code from the relayer's revert reason: the escrow custom error name when the reason
/// is (or contains) its ABI data or its name; `reverted` otherwise.
pub fn revert_code(reason: Option<&str>) -> String {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return "reverted".into();
    };
    let hex_part = reason.rsplit(' ').next().unwrap_or(reason);
    if let Some(stripped) = hex_part.strip_prefix("0x")
        && let Ok(data) = hex::decode(stripped)
        && let Some(name) = decode_escrow_error(&data)
    {
        return name;
    }
    // A custom error name as the relayer may have decoded it (`Name(args…)`).
    let name: String = reason
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.starts_with(|c: char| c.is_ascii_uppercase()) {
        name
    } else {
        "reverted".into()
    }
}

/// What an abandoned transaction did, judged by `paymentState` (the ground truth).
fn from_chain_state(tx: &ChainTx, payment: &Payment, chain: &ChainState) -> PaymentEvent {
    let a = &payment.amounts;
    let abandoned = || "abandoned".to_owned();
    match tx.kind {
        TxKind::Authorize | TxKind::Charge | TxKind::NonceFill => {
            if chain.has_collected && chain.capturable + chain.refundable > 0 {
                confirmed(tx, payment)
            } else {
                failed(tx.kind, abandoned())
            }
        }
        TxKind::Capture | TxKind::CaptureBatch => match requested_amount(tx) {
            Some(x) if chain.refundable >= a.refundable() + x => {
                PaymentEvent::CaptureConfirmed { amount: x }
            }
            _ => PaymentEvent::CaptureFailed { code: abandoned() },
        },
        TxKind::Void | TxKind::VoidBatch => {
            if chain.capturable == 0 && a.held() > 0 {
                PaymentEvent::VoidConfirmed { amount: a.held() }
            } else {
                PaymentEvent::VoidFailed { code: abandoned() }
            }
        }
        TxKind::Refund => match requested_amount(tx) {
            Some(x) if chain.refundable + x <= a.refundable() => {
                PaymentEvent::RefundConfirmed { amount: x }
            }
            _ => PaymentEvent::RefundFailed { code: abandoned() },
        },
    }
}

/// The merchant webhook an event announces, with the request id and the payment's state.
fn webhook_for(
    event: &PaymentEvent,
    payment: &Payment,
    tx: Option<&ChainTx>,
) -> Option<NewWebhookEvent> {
    use x402_escrow_sdk::Amount as Units;
    use x402_escrow_sdk::webhooks::{PaymentAmounts, PaymentEventData, WebhookEventType};

    let event_type = event.webhook_type()?;
    let mut amounts = payment.amounts;
    let status = payment.status.apply(event, &mut amounts).ok()?;
    let amount = match event {
        PaymentEvent::AuthorizeConfirmed { amount }
        | PaymentEvent::ChargeConfirmed { amount }
        | PaymentEvent::CaptureConfirmed { amount }
        | PaymentEvent::VoidConfirmed { amount }
        | PaymentEvent::RefundConfirmed { amount }
        | PaymentEvent::ReclaimObserved { amount } => Some(*amount),
        _ => None,
    };
    let data = PaymentEventData {
        payment_id: payment.id.to_string(),
        request_id: payment.request_id.clone().unwrap_or_default(),
        payment_hash: payment.payment_hash,
        status: status.as_str().to_owned(),
        amount: amount.map(Units::from),
        amounts: PaymentAmounts {
            authorized: Units::from(amounts.authorized),
            captured: Units::from(amounts.captured),
            refunded: Units::from(amounts.refunded),
            capturable: Units::from(amounts.capturable()),
            refundable: Units::from(amounts.refundable()),
        },
        error_code: event.error_code().map(str::to_owned),
        transaction_hash: tx.and_then(|t| t.mined_tx_hash),
        idempotency_key: payment.idempotency_key.clone(),
    };
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default(),
    )
    .unwrap_or(i64::MAX);
    crate::webhooks::new_webhook_event(WebhookEventType::from(event_type), now_ms, data).ok()
}

impl Engine {
    /// What this operator accepts from `merchant` (`GET /v1/merchant`):
    /// [`VerifierConfig::merchant_terms`](crate::verify::VerifierConfig::merchant_terms) with
    /// the accepted tokens' EIP-712 domains.
    pub fn merchant_terms(&self, merchant: &Merchant) -> MerchantTerms {
        self.inner
            .verifier
            .config()
            .merchant_terms(merchant, self.inner.config.assets.clone())
    }
}

impl PaymentService for Engine {
    async fn authorize(
        &self,
        merchant: &Merchant,
        request: AuthorizeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<PaymentView, ServiceError> {
        let span = tracing::info_span!("authorize", merchant_id = %merchant.id, request_id = request.request_id.as_deref().unwrap_or(""), payment_hash = tracing::field::Empty, payment_id = tracing::field::Empty);
        self.do_authorize(merchant, request, idempotency_key)
            .instrument(span)
            .await
    }

    async fn capture(
        &self,
        merchant: &Merchant,
        payment_id: Uuid,
        request: CaptureRequest,
    ) -> Result<PaymentView, ServiceError> {
        let span = tracing::info_span!("capture", %payment_id, request_id = tracing::field::Empty, payment_hash = tracing::field::Empty);
        self.do_capture(merchant, payment_id, request)
            .instrument(span)
            .await
    }

    async fn void(
        &self,
        merchant: &Merchant,
        payment_id: Uuid,
    ) -> Result<PaymentView, ServiceError> {
        let span = tracing::info_span!("void", %payment_id, request_id = tracing::field::Empty, payment_hash = tracing::field::Empty);
        self.do_void(merchant, payment_id).instrument(span).await
    }

    async fn refund(
        &self,
        merchant: &Merchant,
        payment_id: Uuid,
        request: RefundRequest,
    ) -> Result<PaymentView, ServiceError> {
        let span = tracing::info_span!("refund", %payment_id, request_id = tracing::field::Empty, payment_hash = tracing::field::Empty);
        self.do_refund(merchant, payment_id, request)
            .instrument(span)
            .await
    }

    async fn get(
        &self,
        merchant: &Merchant,
        payment_id: Uuid,
    ) -> Result<PaymentView, ServiceError> {
        let payment = self.owned(merchant, payment_id).await?;
        self.view(&payment).await
    }

    fn terms(&self, merchant: &Merchant) -> MerchantTerms {
        self.merchant_terms(merchant)
    }

    async fn by_request_id(
        &self,
        merchant: &Merchant,
        request_id: &str,
    ) -> Result<Vec<PaymentView>, ServiceError> {
        let filter = crate::store::PaymentFilter {
            merchant_id: Some(merchant.id),
            request_id: Some(request_id.to_owned()),
            ..Default::default()
        };
        let payments = self
            .store()
            .list_payments(&filter)
            .await
            .map_err(store_error)?;
        let mut out = Vec::with_capacity(payments.len());
        for p in &payments {
            out.push(self.view(p).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_codes() {
        let data = Escrow::AuthCaptureEscrowErrors::ZeroAmount(Escrow::ZeroAmount {});
        let hex_data = format!(
            "0x{}",
            hex::encode(alloy::sol_types::SolInterface::abi_encode(&data))
        );
        assert_eq!(revert_code(Some(&hex_data)), "ZeroAmount");
        assert_eq!(
            revert_code(Some(&format!("execution reverted: {hex_data}"))),
            "ZeroAmount"
        );
        assert_eq!(
            revert_code(Some("AfterAuthorizationExpiry(1, 2)")),
            "AfterAuthorizationExpiry"
        );
        assert_eq!(revert_code(Some("")), "reverted");
        assert_eq!(revert_code(None), "reverted");
        assert_eq!(revert_code(Some("0xdeadbeef")), "reverted");
    }
}
