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
use crate::service::{CaptureRequest, PaymentService, RefundRequest};
use crate::store::{Merchant, TxKind, TxStatus};

impl Engine {
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
        // The escrow named by the requirements, else every escrow we operate.
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
            let hash =
                x402_escrow_sdk::payment_info_hash(&info, self.inner.config.chain_id, escrow);
            match self.store().payment_by_hash(hash).await {
                Ok(Some(p)) => {
                    found = Some(p);
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    return SettleResponse::failure(
                        reasons::UNEXPECTED_SETTLE_ERROR,
                        e.to_string(),
                        network,
                        payer,
                    );
                }
            }
        }
        let Some(payment) = found.filter(|p| p.merchant_id == merchant.id) else {
            return SettleResponse::failure(
                reasons::INVALID_PAYLOAD,
                "no payment of this merchant has this paymentInfo",
                network,
                payer,
            );
        };
        let amount = match lifecycle.amount.map(to_u128) {
            Some(None) => {
                return SettleResponse::failure(
                    reasons::INVALID_PAYLOAD,
                    "amount does not fit the escrow's uint120",
                    network,
                    payer,
                );
            }
            Some(Some(a)) => Some(a),
            None => None,
        };
        let fail = |reason: &str, message: String| {
            SettleResponse::failure(reason, message, network, payer)
        };
        // A charged payment (flow `authorization`) was captured by its charge: there is no hold
        // to capture from or to void, only a refund.
        if payment.flow == Flow::Charge
            && matches!(
                lifecycle.operation,
                LifecycleOperation::Capture | LifecycleOperation::Void
            )
        {
            let op = match lifecycle.operation {
                LifecycleOperation::Capture => "capture",
                _ => "void",
            };
            return fail(
                REASON_CHARGED_PAYMENT,
                format!(
                    "cannot {op} a charged payment (paymentFlow \"authorization\" captured it at \
                     once; it is {}): refund it instead",
                    payment.status
                ),
            );
        }
        if lifecycle.operation == LifecycleOperation::Capture
            && let Err(message) = self.check_capture_fee(lifecycle, &info)
        {
            return fail(reasons::AUTH_CAPTURE_EXTRA, message);
        }
        // A retry while the previous action is still in flight: wait for it (bounded).
        let mut payment = payment;
        if payment.status.is_in_flight() {
            match self.wait_settled(payment.id, wait).await {
                Ok(p) => payment = p,
                Err(e) => return fail(reasons::UNEXPECTED_SETTLE_ERROR, e.to_string()),
            }
            if payment.status.is_in_flight() {
                let hash = match payment.pending_tx_id {
                    Some(id) => self.tx_hash(id).await,
                    None => None,
                };
                return pending(hash, network, payer);
            }
        }
        // `expectedCapturableAmount` / `expectedRefundableAmount` make capture and refund
        // single-use: a retry after success finds the amount already moved and answers with
        // the transaction that moved it.
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
        if let (Some((expected, current, kinds)), Some(amount)) = (expected, amount) {
            let Some(expected) = to_u128(expected) else {
                return fail(
                    reasons::INVALID_PAYLOAD,
                    "expected amount out of range".into(),
                );
            };
            if current != expected {
                if current == expected.saturating_sub(amount)
                    && let Some(hash) = self.previous_final(payment.id, &kinds, amount).await
                {
                    return SettleResponse::success(hash, network, info.payer, Some(units(amount)));
                }
                return fail(
                    reasons::INVALID_PAYLOAD,
                    format!("the payment's amount is {current}, the payload expects {expected}"),
                );
            }
        }
        let (kind, result) = match lifecycle.operation {
            LifecycleOperation::Capture => (
                "capture",
                PaymentService::capture(self, merchant, payment.id, CaptureRequest { amount })
                    .await,
            ),
            LifecycleOperation::Void => {
                // A retried void (nothing held any more, a void on record) answers with the
                // original void.
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
                        PaymentService::get(self, merchant, payment.id).await,
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
        };
        let view = match result {
            Ok(v) => v,
            Err(e) => {
                return SettleResponse::failure(
                    service_error_reason(&e),
                    e.message.clone(),
                    network,
                    payer,
                );
            }
        };
        let Some(last) = view.transactions.iter().rev().find(|t| t.kind == kind) else {
            return SettleResponse::failure(
                reasons::UNEXPECTED_SETTLE_ERROR,
                format!("no {kind} transaction recorded"),
                network,
                payer,
            );
        };
        if view.status.is_in_flight() {
            return pending(last.hash, network, payer);
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
                payer,
            ),
            (_, Some(hash)) => {
                let settled = match lifecycle.operation {
                    LifecycleOperation::Void => None,
                    _ => amount.map(units),
                };
                SettleResponse::success(hash, network, info.payer, settled)
            }
            (_, None) => pending(None, network, payer),
        }
    }

    /// The fee fields of a capture payload must be what the engine will send (it computes the
    /// fee itself: its `fee_bps` clamped into the payment's range, its receiver unless the
    /// payment names one). `feeAmount` is for v1.1 escrows; ours takes basis points.
    fn check_capture_fee(
        &self,
        lifecycle: &LifecyclePayload,
        info: &x402_escrow_sdk::PaymentInfo,
    ) -> Result<(), String> {
        let cfg = &self.inner.config;
        if lifecycle.fee_amount.is_some() {
            return Err(
                "feeAmount is for v1.1 escrows; this operator's escrow takes feeBps".into(),
            );
        }
        let fee_bps = cfg
            .fee_bps
            .clamp(info.minFeeBps, info.maxFeeBps.max(info.minFeeBps));
        if let Some(bps) = lifecycle.fee_bps
            && bps != fee_bps
        {
            return Err(format!(
                "feeBps {bps}: this operator captures with {fee_bps}"
            ));
        }
        let receiver = if info.feeReceiver != Address::ZERO {
            info.feeReceiver
        } else {
            cfg.fee_receiver
        };
        if let Some(r) = lifecycle.fee_receiver
            && r != receiver
        {
            return Err(format!(
                "feeReceiver {r}: this operator captures to {receiver}"
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
