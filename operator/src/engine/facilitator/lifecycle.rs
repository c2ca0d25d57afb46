//! `POST /settle` of `auth-capture` lifecycle payloads (capture, void, refund): find the
//! payment by its PaymentInfo hash, check the payload, answer retries from the transaction that
//! already moved the amount, else run the engine's capture / void / refund.

use std::time::Duration;

use alloy::primitives::{Address, B256};
use uuid::Uuid;
use x402_escrow_sdk::facilitator::{SettleResponse, VerifyRequest, reasons};
use x402_escrow_sdk::schemes::auth_capture::{
    LifecycleOperation, LifecyclePayload, payment_info_from_json,
};

use super::*;
use crate::engine::Engine;
use crate::lifecycle::Flow;
use crate::service::{CaptureRequest, PaymentService, PaymentView, RefundRequest, ServiceError};
use crate::store::{Merchant, Payment, TxKind, TxStatus};
use x402_escrow_sdk::network::Network;

/// The answer `/settle` gives instead of going on (a refusal, or the answer to a retry).
type Answer = SettleResponse;

impl Engine {
    /// `POST /settle` of a lifecycle payload, step by step: read the payload
    /// ([`Engine::lifecycle_payment`], [`lifecycle_amount`]), refuse what cannot apply
    /// ([`refuse_charged`], [`Engine::check_capture_fee`]), let a previous action in flight
    /// settle ([`Engine::settle_in_flight`]), answer a retry of a done action
    /// ([`Engine::answer_retry`]), else run it ([`Engine::run_lifecycle`]) and answer from its
    /// transaction ([`lifecycle_answer`]).
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
        let steps = async {
            let payment = self.lifecycle_payment(merchant, request, &info).await?;
            let amount =
                lifecycle_amount(lifecycle).map_err(|m| fail(reasons::INVALID_PAYLOAD, m))?;
            refuse_charged(&payment, lifecycle.operation)
                .map_err(|m| fail(REASON_CHARGED_PAYMENT, m))?;
            if lifecycle.operation == LifecycleOperation::Capture {
                self.check_capture_fee(lifecycle, &info, &payment, amount)
                    .map_err(|m| fail(reasons::AUTH_CAPTURE_EXTRA, m))?;
            }
            let payment = self.settle_in_flight(payment, wait, network, payer).await?;
            self.answer_retry(&payment, lifecycle, amount, network, info.payer)
                .await?;
            let (kind, result) = self
                .run_lifecycle(merchant, &payment, lifecycle.operation, amount)
                .await;
            let view = result.map_err(|e| fail(&service_error_reason(&e), e.message.clone()))?;
            Ok::<_, Answer>(lifecycle_answer(
                &view,
                kind,
                lifecycle.operation,
                amount,
                network,
                info.payer,
            ))
        };
        match steps.await {
            Ok(answer) | Err(answer) => answer,
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
    /// single-use: a retry after success finds the amount already moved and is answered with
    /// the transaction that moved it (`Err`); a mismatch otherwise is refused.
    async fn answer_retry(
        &self,
        payment: &Payment,
        lifecycle: &LifecyclePayload,
        amount: Option<u128>,
        network: Network,
        payer: Address,
    ) -> Result<(), Answer> {
        let fail = |message: String| {
            SettleResponse::failure(reasons::INVALID_PAYLOAD, message, network, Some(payer))
        };
        let expected = match lifecycle.operation {
            LifecycleOperation::Capture => lifecycle.expected_capturable_amount.map(|e| {
                (
                    e,
                    payment.amounts.capturable(),
                    [TxKind::Capture, TxKind::CaptureBatch],
                )
            }),
            LifecycleOperation::Refund => lifecycle.expected_refundable_amount.map(|e| {
                (
                    e,
                    payment.amounts.refundable(),
                    [TxKind::Refund, TxKind::Refund],
                )
            }),
            LifecycleOperation::Void => None,
        };
        let (Some((expected, current, kinds)), Some(amount)) = (expected, amount) else {
            return Ok(());
        };
        let Some(expected) = to_u128(expected) else {
            return Err(fail("expected amount out of range".into()));
        };
        if current == expected {
            return Ok(());
        }
        if current == expected.saturating_sub(amount)
            && let Some(hash) = self.previous_final(payment.id, &kinds, amount).await
        {
            return Err(SettleResponse::success(
                hash,
                network,
                payer,
                Some(units(amount)),
            ));
        }
        Err(fail(format!(
            "the payment's amount is {current}, the payload expects {expected}"
        )))
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
