//! `POST /settle` of `auth-capture` lifecycle payloads (capture, void, refund): find the
//! payment by its PaymentInfo hash, check the payload, answer retries from the transaction that
//! already moved the amount, else run the engine's capture / void / refund.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use uuid::Uuid;
use x402_escrow_sdk::escrows::FeeArgument;
use x402_escrow_sdk::facilitator::{SettleResponse, VerifyRequest, reasons};
use x402_escrow_sdk::schemes::auth_capture::{
    AuthorizerMessage, ExpectedState, LifecycleOperation, LifecyclePayload, SubmittedFee,
    payment_info_from_json,
};

use super::delegated::Refusal;
use super::*;
use crate::engine::Engine;
use crate::lifecycle::Flow;
use crate::service::{CaptureRequest, PaymentService, PaymentView, RefundRequest, ServiceError};
use crate::store::{Merchant, Payment, TxKind, TxStatus};
use x402_escrow_sdk::network::Network;

/// The answer `/settle` gives instead of going on (a refusal, or the answer to a retry).
type Answer = SettleResponse;

impl Engine {
    /// `POST /settle` of a lifecycle payload, step by step: admit it (the operator relays
    /// lifecycle calls, the payload is consistent: [`Engine::admit_lifecycle`]), find the
    /// payment ([`Engine::lifecycle_payment`]), refuse what cannot apply ([`refuse_charged`],
    /// [`Engine::check_capture_fee`]), check the receiver authorizer's consent to the exact call
    /// ([`Engine::lifecycle_consent`]), let a previous action in flight settle
    /// ([`Engine::settle_in_flight`]), answer a retry of a done action or refuse a payment whose
    /// balances are not the signed ones ([`Engine::answer_retry`], [`Engine::check_onchain_state`],
    /// [`check_deadline`]), else run it ([`Engine::run_lifecycle`], then the void of a
    /// capture-and-void) and answer from its transaction ([`lifecycle_answer`]).
    pub(super) async fn settle_lifecycle(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        lifecycle: &LifecyclePayload,
        wait: Duration,
    ) -> SettleResponse {
        let network = request.payment_requirements.network;
        let info = match payment_info_from_json(&lifecycle.payment_info) {
            Ok(info) => info,
            Err(e) => {
                return SettleResponse::failure(
                    reasons::INVALID_PAYLOAD,
                    format!("paymentInfo: {e}"),
                    network,
                    None,
                );
            }
        };
        let payer = Some(info.payer);
        let fail = |reason: &str, message: String| {
            SettleResponse::failure(reason, message, network, payer)
        };
        let refused = |(reason, message): Refusal| fail(reason, message);
        let steps = async {
            self.admit_lifecycle(&request.payment_requirements, lifecycle)
                .map_err(refused)?;
            let payment = self.lifecycle_payment(merchant, request, &info).await?;
            let amount =
                lifecycle_amount(lifecycle).map_err(|m| fail(reasons::INVALID_PAYLOAD, m))?;
            refuse_charged(&payment, lifecycle.operation)
                .map_err(|m| fail(REASON_CHARGED_PAYMENT, m))?;
            if lifecycle.operation == LifecycleOperation::Capture {
                self.check_capture_fee(lifecycle, &info, &payment, amount)
                    .map_err(|m| fail(reasons::AUTH_CAPTURE_EXTRA, m))?;
            }
            let expected = expected_state(lifecycle).map_err(refused)?;
            self.lifecycle_consent(request, lifecycle, &info, &payment, amount, expected)
                .await
                .map_err(refused)?;
            let payment = self.settle_in_flight(payment, wait, network, payer).await?;
            let void_rest = lifecycle.void_authorizer_signature.is_some();
            if let Some(done) = self
                .answer_retry(&payment, lifecycle, amount, expected, network, info.payer)
                .await?
            {
                // A capture-and-void whose capture is done: the void may still be owed.
                if void_rest && payment.amounts.capturable() != 0 {
                    self.void_rest(merchant, &payment).await;
                }
                return Ok(done);
            }
            let now = self
                .inner
                .verifier
                .acceptance_now()
                .await
                .map_err(|e| fail(reasons::UNEXPECTED_SETTLE_ERROR, e.to_string()))?;
            check_deadline(lifecycle.operation, &info, now).map_err(refused)?;
            self.check_onchain_state(&payment, expected)
                .await
                .map_err(refused)?;
            let (kind, result) = self
                .run_lifecycle(merchant, &payment, lifecycle.operation, amount)
                .await;
            let view = result.map_err(|e| fail(&lifecycle_error_reason(&e), e.message.clone()))?;
            let answer = lifecycle_answer(
                &view,
                kind,
                lifecycle.operation,
                amount,
                network,
                info.payer,
            );
            if void_rest && answer.success && !view.status.is_in_flight() {
                self.void_rest(merchant, &payment).await;
            }
            Ok::<_, Answer>(answer)
        };
        match steps.await {
            Ok(answer) | Err(answer) => answer,
        }
    }

    /// The receiver authorizer's consent to the call we will make: the operation's signed
    /// message built from the values that execute (the engine's fee, our refund collector),
    /// and for a capture-and-void the `Void` too, which needs a remainder to void.
    async fn lifecycle_consent(
        &self,
        request: &VerifyRequest,
        lifecycle: &LifecyclePayload,
        info: &x402_escrow_sdk::PaymentInfo,
        payment: &Payment,
        amount: Option<u128>,
        expected: Option<ExpectedState>,
    ) -> Result<(), Refusal> {
        let Some(extra) = request.payment_requirements.auth_capture_extra() else {
            return Err((reasons::AUTH_CAPTURE_EXTRA, "no auth-capture extra".into()));
        };
        let message = match lifecycle.operation {
            LifecycleOperation::Capture => {
                let fee = crate::engine::calldata::capture_fee(
                    &self.inner.config,
                    info,
                    self.fee_argument(payment.escrow),
                );
                let captured = amount.unwrap_or_else(|| payment.amounts.capturable());
                AuthorizerMessage::Capture {
                    amount: U256::from(captured),
                    fee: match fee.argument {
                        FeeArgument::Bps => SubmittedFee::Bps(fee.bps),
                        FeeArgument::Amount => {
                            SubmittedFee::Amount(U256::from(fee.amount_of(captured)))
                        }
                    },
                    fee_receiver: fee.receiver,
                    expected: expected.unwrap_or_default(),
                }
            }
            LifecycleOperation::Void => AuthorizerMessage::Void,
            LifecycleOperation::Refund => AuthorizerMessage::Refund {
                amount: U256::from(amount.unwrap_or(0)),
                token_collector: self.inner.config.refund_collector,
                expected: expected.unwrap_or_default(),
            },
        };
        self.check_consent(
            extra,
            payment.payment_hash,
            &message,
            lifecycle.authorizer_signature.as_ref(),
            reasons::AUTH_CAPTURE_AUTHORIZER_SIGNATURE,
        )
        .await?;
        if let Some(void) = &lifecycle.void_authorizer_signature {
            self.check_consent(
                extra,
                payment.payment_hash,
                &AuthorizerMessage::Void,
                Some(void),
                reasons::AUTH_CAPTURE_VOID_AUTHORIZER_SIGNATURE,
            )
            .await?;
            let capturable = expected.map_or(payment.amounts.capturable(), |e| {
                e.capturable.saturating_to::<u128>()
            });
            if amount.is_none_or(|a| a >= capturable) {
                return Err((
                    reasons::AUTH_CAPTURE_VOID_REMAINDER_FULL_CAPTURE,
                    format!(
                        "the capture takes all {capturable} capturable: nothing is left to void"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `paymentState` on the escrow must hold the balances the authorizer signed (the
    /// single-use check of capture and refund; a capture-and-void's remainder against those
    /// balances was checked with its consent).
    async fn check_onchain_state(
        &self,
        payment: &Payment,
        expected: Option<ExpectedState>,
    ) -> Result<(), Refusal> {
        let Some(expected) = expected else {
            return Ok(());
        };
        let state = crate::indexer::read_payment_state(
            &self.inner.provider,
            payment.escrow,
            payment.payment_hash,
        )
        .await
        .map_err(|e| {
            (
                reasons::UNEXPECTED_SETTLE_ERROR,
                format!("paymentState: {e}"),
            )
        })?;
        let found = (U256::from(state.capturable), U256::from(state.refundable));
        if found != (expected.capturable, expected.refundable) {
            return Err(unexpected_state(found, expected));
        }
        Ok(())
    }

    /// The void of a capture-and-void, once its capture is done. Nothing left to void (a race
    /// emptied the hold) is not an error: the settle is a capture-only success.
    async fn void_rest(&self, merchant: &Merchant, payment: &Payment) {
        match PaymentService::void(self, merchant, payment.id).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(
                payment_id = %payment.id,
                payment_hash = %payment.payment_hash,
                code = e.code.as_str(),
                error = %e.message,
                "capture-and-void: the void after the capture was refused"
            ),
        }
    }

    /// The payment this `paymentInfo` names (its hash on the escrow the requirements name, else
    /// on each escrow we operate), if it is `merchant`'s.
    async fn lifecycle_payment(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        info: &x402_escrow_sdk::PaymentInfo,
    ) -> Result<Payment, Answer> {
        let network = request.payment_requirements.network;
        let payer = Some(info.payer);
        let mut escrows: Vec<Address> = request
            .payment_requirements
            .auth_capture_extra()
            .and_then(|e| e.auth_capture_escrow)
            .into_iter()
            .collect();
        escrows.extend(
            self.inner
                .verifier
                .config()
                .registry
                .deployments()
                .iter()
                .map(|d| d.escrow),
        );
        let mut found = None;
        for escrow in escrows {
            let hash = x402_escrow_sdk::payment_info_hash(info, self.inner.config.chain_id, escrow);
            match self.store().payment_by_hash(hash).await {
                Ok(Some(p)) => {
                    found = Some(p);
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(SettleResponse::failure(
                        reasons::UNEXPECTED_SETTLE_ERROR,
                        e.to_string(),
                        network,
                        payer,
                    ));
                }
            }
        }
        found
            .filter(|p| p.merchant_id == merchant.id)
            .ok_or_else(|| {
                SettleResponse::failure(
                    reasons::INVALID_PAYLOAD,
                    "no payment of this merchant has this paymentInfo",
                    network,
                    payer,
                )
            })
    }

    /// A retry while the previous action is still in flight waits for it (bounded by `wait`);
    /// still in flight then: `settlement_pending` with its transaction.
    async fn settle_in_flight(
        &self,
        payment: Payment,
        wait: Duration,
        network: Network,
        payer: Option<Address>,
    ) -> Result<Payment, Answer> {
        if !payment.status.is_in_flight() {
            return Ok(payment);
        }
        let payment = self.wait_settled(payment.id, wait).await.map_err(|e| {
            SettleResponse::failure(
                reasons::UNEXPECTED_SETTLE_ERROR,
                e.to_string(),
                network,
                payer,
            )
        })?;
        if payment.status.is_in_flight() {
            let hash = match payment.pending_tx_id {
                Some(id) => self.tx_hash(id).await,
                None => None,
            };
            return Err(pending(hash, network, payer));
        }
        Ok(payment)
    }

    /// `expectedCapturableAmount` / `expectedRefundableAmount` make capture and refund
    /// single-use: the stored balances equal to them let the call go on (`None`); balances that
    /// are exactly what this call leaves, with the transaction that moved the amount on record,
    /// answer the retry with that transaction (`Some`); anything else is refused
    /// (`unexpected_payment_state`).
    async fn answer_retry(
        &self,
        payment: &Payment,
        lifecycle: &LifecyclePayload,
        amount: Option<u128>,
        expected: Option<ExpectedState>,
        network: Network,
        payer: Address,
    ) -> Result<Option<Answer>, Answer> {
        let (Some(expected), Some(amount)) = (expected, amount) else {
            return Ok(None);
        };
        let fail = |(reason, message): Refusal| {
            SettleResponse::failure(reason, message, network, Some(payer))
        };
        let current = (
            U256::from(payment.amounts.capturable()),
            U256::from(payment.amounts.refundable()),
        );
        if current == (expected.capturable, expected.refundable) {
            return Ok(None);
        }
        let moved = U256::from(amount);
        let (after, kinds) = match lifecycle.operation {
            LifecycleOperation::Capture => (
                (
                    expected.capturable.saturating_sub(moved),
                    expected.refundable.saturating_add(moved),
                ),
                [TxKind::Capture, TxKind::CaptureBatch],
            ),
            LifecycleOperation::Refund => (
                (
                    expected.capturable,
                    expected.refundable.saturating_sub(moved),
                ),
                [TxKind::Refund, TxKind::Refund],
            ),
            LifecycleOperation::Void => return Ok(None),
        };
        // A capture-and-void may also have voided the rest already.
        let voided = (U256::ZERO, after.1);
        let retried = current == after
            || (lifecycle.void_authorizer_signature.is_some() && current == voided);
        if retried && let Some(hash) = self.previous_final(payment.id, &kinds, amount).await {
            return Ok(Some(SettleResponse::success(
                hash,
                network,
                payer,
                Some(units(amount)),
            )));
        }
        Err(fail(unexpected_state(current, expected)))
    }

    /// Runs the engine's capture / void / refund; the transaction kind to answer from, and the
    /// engine's answer. A retried void (nothing held any more, a final void on record) answers
    /// with the payment as it is (its original void).
    async fn run_lifecycle(
        &self,
        merchant: &Merchant,
        payment: &Payment,
        operation: LifecycleOperation,
        amount: Option<u128>,
    ) -> (&'static str, Result<PaymentView, ServiceError>) {
        match operation {
            LifecycleOperation::Capture => (
                "capture",
                PaymentService::capture(self, merchant, payment.id, CaptureRequest { amount })
                    .await,
            ),
            LifecycleOperation::Void => {
                let voided_before = payment.amounts.capturable() == 0
                    && self
                        .store()
                        .txs_for_payment(payment.id)
                        .await
                        .is_ok_and(|txs| {
                            txs.iter().any(|t| {
                                matches!(t.kind, TxKind::Void | TxKind::VoidBatch)
                                    && t.status == TxStatus::Final
                            })
                        });
                if voided_before {
                    (
                        "void",
                        PaymentService::get(self, merchant, payment.id, None).await,
                    )
                } else {
                    (
                        "void",
                        PaymentService::void(self, merchant, payment.id).await,
                    )
                }
            }
            LifecycleOperation::Refund => (
                "refund",
                PaymentService::refund(
                    self,
                    merchant,
                    payment.id,
                    RefundRequest {
                        amount: amount.unwrap_or(0),
                    },
                )
                .await,
            ),
        }
    }

    /// The fee fields of a capture payload must be what the engine will send (it computes the
    /// fee itself: its `fee_bps` clamped into the payment's range, its receiver unless the
    /// payment names one). The escrow's version decides the field: `feeBps` for a v1.0 escrow
    /// (ours), `feeAmount` (of the amount captured: `amount`, else all that is capturable) for
    /// a v1.1 one; the other field is refused.
    fn check_capture_fee(
        &self,
        lifecycle: &LifecyclePayload,
        info: &x402_escrow_sdk::PaymentInfo,
        payment: &Payment,
        amount: Option<u128>,
    ) -> Result<(), String> {
        use x402_escrow_sdk::escrows::FeeArgument;
        let cfg = &self.inner.config;
        let fee =
            crate::engine::calldata::capture_fee(cfg, info, self.fee_argument(payment.escrow));
        match fee.argument {
            FeeArgument::Bps => {
                if lifecycle.settle.fee_amount.is_some() {
                    return Err(
                        "feeAmount is for v1.1 escrows; this payment's escrow takes feeBps".into(),
                    );
                }
                if let Some(bps) = lifecycle.settle.fee_bps
                    && bps != fee.bps
                {
                    return Err(format!(
                        "feeBps {bps}: this operator captures with {}",
                        fee.bps
                    ));
                }
            }
            FeeArgument::Amount => {
                if lifecycle.settle.fee_bps.is_some() {
                    return Err(
                        "feeBps is for v1.0 escrows; this payment's escrow takes feeAmount".into(),
                    );
                }
                let captured = amount.unwrap_or_else(|| payment.amounts.capturable());
                let expected = fee.amount_of(captured);
                if let Some(given) = lifecycle.settle.fee_amount
                    && given.0 != alloy::primitives::U256::from(expected)
                {
                    return Err(format!(
                        "feeAmount {}: this operator captures {captured} with a fee of {expected} ({} bps)",
                        given.0, fee.bps
                    ));
                }
            }
        }
        if let Some(r) = lifecycle.settle.fee_receiver
            && r != fee.receiver
        {
            return Err(format!(
                "feeReceiver {r}: this operator captures to {}",
                fee.receiver
            ));
        }
        Ok(())
    }

    /// The mined hash of the latest final transaction of `kinds` for `amount` on a payment.
    async fn previous_final(
        &self,
        payment_id: Uuid,
        kinds: &[TxKind],
        amount: u128,
    ) -> Option<B256> {
        let txs = self.store().txs_for_payment(payment_id).await.ok()?;
        txs.iter()
            .rev()
            .find(|t| {
                kinds.contains(&t.kind)
                    && t.status == TxStatus::Final
                    && t.succeeded != Some(false)
                    && crate::engine::requested_amount(t) == Some(amount)
            })
            .and_then(|t| t.mined_tx_hash)
    }
}

/// The balances the payload expects (`expectedCapturableAmount`, `expectedRefundableAmount`;
/// both present for capture and refund, see [`Engine::admit_lifecycle`]).
fn expected_state(lifecycle: &LifecyclePayload) -> Result<Option<ExpectedState>, Refusal> {
    match (
        lifecycle.expected_capturable_amount,
        lifecycle.expected_refundable_amount,
    ) {
        (Some(capturable), Some(refundable)) => Ok(Some(ExpectedState {
            capturable: capturable.get(),
            refundable: refundable.get(),
        })),
        (None, None) => Ok(None),
        _ => Err((
            reasons::AUTH_CAPTURE_PAYLOAD_FORMAT,
            "expectedCapturableAmount and expectedRefundableAmount come together".into(),
        )),
    }
}

/// `unexpected_payment_state`: the balances found are not the signed ones.
fn unexpected_state(found: (U256, U256), expected: ExpectedState) -> Refusal {
    (
        reasons::AUTH_CAPTURE_UNEXPECTED_PAYMENT_STATE,
        format!(
            "the payment holds {} capturable and {} refundable; the authorizer signed for {} and {}",
            found.0, found.1, expected.capturable, expected.refundable
        ),
    )
}

/// A capture before the payment's `authorizationExpiry`, a refund before its `refundExpiry`
/// (`now`: the time payments are judged at).
fn check_deadline(
    operation: LifecycleOperation,
    info: &x402_escrow_sdk::PaymentInfo,
    now: u64,
) -> Result<(), Refusal> {
    let (deadline, reason, what) = match operation {
        LifecycleOperation::Capture => (
            info.authorizationExpiry.to::<u64>(),
            reasons::AUTH_CAPTURE_CAPTURE_DEADLINE_EXPIRED,
            "capture deadline",
        ),
        LifecycleOperation::Refund => (
            info.refundExpiry.to::<u64>(),
            reasons::AUTH_CAPTURE_REFUND_DEADLINE_EXPIRED,
            "refund deadline",
        ),
        LifecycleOperation::Void => return Ok(()),
    };
    if now >= deadline {
        return Err((
            reason,
            format!("the {what} {deadline} has passed (now {now})"),
        ));
    }
    Ok(())
}

/// The x402 reason of an engine refusal of a lifecycle call: a refund the merchant's reserve
/// (or our refund float) cannot fund is the scheme's `refund_funding_unavailable`.
fn lifecycle_error_reason(e: &ServiceError) -> String {
    match e.code {
        crate::service::ErrorCode::RefundReserveInsufficient
        | crate::service::ErrorCode::RefundFloatInsufficient => {
            reasons::AUTH_CAPTURE_REFUND_FUNDING_UNAVAILABLE.to_owned()
        }
        _ => service_error_reason(e),
    }
}

/// The payload's `amount`, when given (it must fit the escrow's uint120).
fn lifecycle_amount(lifecycle: &LifecyclePayload) -> Result<Option<u128>, String> {
    match lifecycle.settle.amount.map(to_u128) {
        Some(None) => Err("amount does not fit the escrow's uint120".into()),
        Some(Some(a)) => Ok(Some(a)),
        None => Ok(None),
    }
}

/// A charged payment (flow `authorization`) was captured by its charge: there is no hold to
/// capture from or to void, only a refund.
fn refuse_charged(payment: &Payment, operation: LifecycleOperation) -> Result<(), String> {
    let op = match operation {
        LifecycleOperation::Capture => "capture",
        LifecycleOperation::Void => "void",
        LifecycleOperation::Refund => return Ok(()),
    };
    if payment.flow != Flow::Charge {
        return Ok(());
    }
    Err(format!(
        "cannot {op} a charged payment (paymentFlow \"authorization\" captured it at \
         once; it is {}): refund it instead",
        payment.status
    ))
}

/// The answer from the engine's view after the action: `settlement_pending` while in flight,
/// failure when its transaction reverted or was abandoned, success with its hash otherwise.
fn lifecycle_answer(
    view: &PaymentView,
    kind: &str,
    operation: LifecycleOperation,
    amount: Option<u128>,
    network: Network,
    payer: Address,
) -> SettleResponse {
    let payer_opt = Some(payer);
    let Some(last) = view
        .transactions
        .iter()
        .rev()
        .find(|t| super::made_call(t, kind))
    else {
        return SettleResponse::failure(
            reasons::UNEXPECTED_SETTLE_ERROR,
            format!("no {kind} transaction recorded"),
            network,
            payer_opt,
        );
    };
    if view.status.is_in_flight() {
        return pending(last.hash, network, payer_opt);
    }
    match (last.status.as_str(), last.hash) {
        ("reverted" | "abandoned", _) => SettleResponse::failure(
            view.last_error
                .as_ref()
                .map(|e| e.code.clone())
                .unwrap_or_else(|| format!("{kind}_failed")),
            view.last_error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| format!("{kind} {}", last.status)),
            network,
            payer_opt,
        ),
        (_, Some(hash)) => {
            let settled = match operation {
                LifecycleOperation::Void => None,
                _ => amount.map(units),
            };
            SettleResponse::success(hash, network, payer, settled)
        }
        (_, None) => pending(None, network, payer_opt),
    }
}
