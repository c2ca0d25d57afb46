//! The lifecycle engine: the only writer of payment status.
//!
//! Every action is written down first (payment transition + outbox row + webhook event in one
//! SQL transaction), then the relayer is woken to send it, then its outcome is applied when the
//! `chain_txs` row reaches `final`, `reverted` or `abandoned`. The chain (`paymentState`) is the
//! ground truth whenever the outbox cannot tell (abandoned transactions, `reconcile`).
//!
//! This file holds the [`Engine`] itself (construction, the shared request helpers and the
//! [`PaymentService`] face); each step of a payment's life has its own file:
//!
//! | file | job |
//! |---|---|
//! | `authorize.rs` | a merchant submits an x402 payment (`authorize` or `charge`) |
//! | `capture.rs` | capture and void |
//! | `refund.rs` | refund, charged to the merchant's reserve, paid from the refund float (with its `approve`) |
//! | `reserve.rs` | the refund reserve: a capture's top-up plan, deposits seen on chain, reconciliation of the ledger |
//! | `outcomes.rs` | a transaction's outcome and chain events become payment transitions |
//! | `batch.rs` | the outcome of a batch transaction reaches its members |
//! | `waiter.rs` | a caller waits for its payment to settle |
//! | `sweeper.rs` | the timers: auto-void and expiry |
//! | `reconcile.rs` | the database compared with `paymentState` |
//! | `views.rs` | the payment view and the merchant's terms |
//! | `calldata.rs` | every contract call written to the outbox, and a capture's fee |
//! | `setup.rs` | the engine's and the verifier's configuration from the operator's |
//! | `facilitator/` | the x402 facilitator (`/supported`, `/verify`, `/settle`) over the engine |
//!
//! # The life of one payment
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

mod authorize;
mod batch;
mod calldata;
mod capture;
pub mod facilitator;
mod outcomes;
mod reconcile;
mod refund;
mod reserve;
mod setup;
mod sweeper;
mod views;
mod waiter;

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

use x402_escrow_sdk::escrows::FeeArgument;
use x402_escrow_sdk::merchant::{MerchantTerms, TermsAsset};

use crate::lifecycle::{Amount, IllegalReason, PaymentEvent, PaymentStatus};
use crate::service::{
    AuthorizeRequest, CaptureRequest, ErrorCode, PaymentList, PaymentQuery, PaymentService,
    PaymentView, RefundRequest, ServiceError,
};
use crate::store::{Merchant, NewChainTx, Payment, Store, StoreError, TransitionExtras, TxKind};
use crate::verify::Verifier;

pub use outcomes::revert_code;
pub use reserve::ReserveFinding;
pub use setup::{FeePolicy, configs};
pub use waiter::Waiters;

use outcomes::{confirmed, failed, from_chain_state, requested_amount, webhook_for};

/// How many times a chain observation is retried after a concurrent change.
const RETRIES: u32 = 5;
/// Batch size of the sweeps.
const BATCH: u32 = 100;

/// What the engine needs to know beyond the verifier's configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our chain.
    pub chain_id: u64,
    /// Our primary signer lane: the `from` of rows that belong to no payment's lane (`exact`
    /// transfers). A payment's rows go out from its own `PaymentInfo.operator` (its lane).
    pub signer: Address,
    /// The OperatorRefundCollector refunds are funded through.
    pub refund_collector: Address,
    /// The Multicall3 of the deployment (`tryAggregate`): an ERC-6492 authorizer's preparation
    /// and its `isValidSignature` run through it in one `eth_call`.
    pub multicall3: Address,
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
        StoreError::ReserveInsufficient { .. } => {
            ServiceError::new(ErrorCode::RefundReserveInsufficient, e.to_string())
        }
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
    /// Another task of this process is applying it right now; its payments' waiters are woken
    /// when that is done.
    InProgress,
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
    /// The outbox rows whose outcome a task of this process is applying now.
    applying: outcomes::Applying,
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
                applying: outcomes::Applying::default(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Wakes the requests of this instance waiting on payment `id` (they re-read it): for an
    /// outcome another instance applied (PostgreSQL `NOTIFY`, see `runtime`).
    pub fn wake_waiters(&self, id: Uuid) {
        self.inner.waiters.wake(id);
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    // ---------------------------------------------------------------- shared request helpers

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

    /// Refuses a capture or refund of `amount`: zero, or above what is `available` (`exceeds`
    /// names the limit's error code and, in the message, the limit).
    fn check_amount(
        amount: Amount,
        available: Amount,
        exceeds: ErrorCode,
        limit: &str,
    ) -> Result<(), ServiceError> {
        if amount == 0 {
            return Err(ServiceError::new(
                ErrorCode::InvalidAmount,
                "amount must be positive",
            ));
        }
        if amount > available {
            return Err(ServiceError::new(
                exceeds,
                format!("{amount} exceeds the {limit} {available}"),
            ));
        }
        Ok(())
    }

    /// Refuses a request when `deadline` falls within the expiry margin of the acceptance time
    /// (`Expired`, with `message`).
    async fn check_deadline(&self, deadline: u64, message: &str) -> Result<(), ServiceError> {
        let now = self.acceptance_now().await?;
        if now.saturating_add(self.inner.config.expiry_margin_secs) >= deadline {
            return Err(ServiceError::new(ErrorCode::Expired, message));
        }
        Ok(())
    }

    /// How `escrow`'s `capture` / `charge` take the fee: its registered deployment's
    /// ([`VerifierConfig::registry`](crate::verify::VerifierConfig::registry)); an escrow no
    /// longer registered is taken for v1.0 (basis points).
    pub(crate) fn fee_argument(&self, escrow: Address) -> FeeArgument {
        self.inner
            .verifier
            .config()
            .registry
            .get(escrow)
            .map_or(FeeArgument::Bps, |d| d.fee_argument)
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
            // The payment's lane: only its `operator` may call the escrow for it.
            signer: payment.info.operator,
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
    /// sent before it) in one SQL transaction shared with other hot-path writes
    /// ([`Store::grouped`](crate::store::Store::grouped)), wakes the relayer, and waits for the
    /// outcome.
    async fn request(
        &self,
        payment: Payment,
        event: PaymentEvent,
        before: Vec<NewChainTx>,
        outbox: NewChainTx,
    ) -> Result<PaymentView, ServiceError> {
        self.request_with(payment, event, before, outbox, ReserveStep::None)
            .await
    }

    /// [`Engine::request`] with the refund reserve's part of the same SQL transaction: a
    /// refund's debit (refused as `refund_reserve_insufficient`, nothing written, when the
    /// merchant's reserve cannot cover it) or a capture's planned top-up.
    async fn request_with(
        &self,
        payment: Payment,
        event: PaymentEvent,
        before: Vec<NewChainTx>,
        outbox: NewChainTx,
        reserve: ReserveStep,
    ) -> Result<PaymentView, ServiceError> {
        let (id, merchant_id, asset) = (payment.id, payment.merchant_id, payment.info.token);
        let transition = event.clone();
        self.store()
            .grouped(move |tx| {
                Box::pin(async move {
                    for row in &before {
                        tx.enqueue_tx(row).await?;
                    }
                    // The payment row first, then the merchant's reserve row: the order every
                    // transition that touches the reserve takes its locks in.
                    let done = tx
                        .transition_from(
                            &payment,
                            &transition,
                            TransitionExtras {
                                outbox: Some(outbox),
                                ..Default::default()
                            },
                        )
                        .await?;
                    match reserve {
                        ReserveStep::None => {}
                        ReserveStep::DebitRefund(amount) => {
                            let chain_tx = done.chain_tx.as_ref().map(|t| t.id);
                            tx.reserve_debit_refund(merchant_id, asset, id, amount, chain_tx)
                                .await?;
                        }
                        ReserveStep::PlanTopup(topup) => tx.plan_topup(&topup).await?,
                    }
                    Ok(done)
                })
            })
            .await
            .map_err(store_error)?;
        tracing::info!(event = event.name(), "action queued");
        self.inner.relayer.notify_one();
        let payment = self.wait(id, None).await?;
        self.view(&payment).await
    }
}

/// What a merchant request writes to the refund reserve with its transition.
enum ReserveStep {
    /// Nothing (void, capture without a top-up rule).
    None,
    /// A refund of this amount: debit the merchant's reserve.
    DebitRefund(Amount),
    /// A capture under the merchant's top-up rule: record the plan.
    PlanTopup(crate::store::NewTopup),
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
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
        wait: Option<Duration>,
    ) -> Result<PaymentView, ServiceError> {
        let mut payment = self.owned(merchant, payment_id).await?;
        if let Some(wait) = wait
            && payment.status.is_in_flight()
        {
            payment = self.wait_settled(payment_id, wait).await?;
        }
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
    async fn list_payments(
        &self,
        merchant: &Merchant,
        query: &PaymentQuery,
    ) -> Result<PaymentList, ServiceError> {
        let page = self
            .store()
            .page_payments(merchant.id, query)
            .await
            .map_err(store_error)?;
        let mut payments = Vec::with_capacity(page.items.len());
        for p in &page.items {
            payments.push(self.view(p).await?);
        }
        Ok(PaymentList {
            payments,
            next_cursor: page.next.map(|c| c.encode()),
        })
    }
}
