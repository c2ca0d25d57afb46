//! Refund: checked against the payment and the refund window, charged to the merchant's refund
//! reserve (debited in the transaction that queues the refund; `refund_reserve_insufficient`
//! when it cannot cover it) and paid from the operator's refund account through the refund
//! collector (an `approve` row goes first when the allowance runs low).

use alloy::primitives::{Address, Bytes, U256};
use serde_json::json;
use uuid::Uuid;
use x402_escrow_bindings::IERC20;

use super::calldata;
use super::{Engine, EngineError, ReserveStep, requested_amount};
use crate::lifecycle::{Amount, PaymentEvent, PaymentStatus};
use crate::service::{ErrorCode, PaymentView, RefundRequest, ServiceError, to_payment_info};
use crate::store::{Merchant, NewChainTx, TxKind};

impl Engine {
    pub(super) async fn do_refund(
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
        let refundable = payment.amounts.refundable();
        Self::check_amount(
            amount,
            refundable,
            ErrorCode::ExceedsRefundable,
            "refundable",
        )?;
        self.check_deadline(payment.info.refund_expiry, "the refund window has closed")
            .await?;
        // The float: the refund collector pulls `amount` from the payment's lane (its
        // `operator`, the refund's sender); each lane has its own float.
        let lane = payment.info.operator;
        let token = IERC20::new(payment.info.token, self.inner.provider.clone());
        let balance = token
            .balanceOf(lane)
            .call()
            .await
            .map_err(|e| ServiceError::new(ErrorCode::ChainUnavailable, e.to_string()))?;
        // Refunds already queued draw on the same balance and allowance.
        let queued = U256::from(
            self.refunds_in_flight(lane)
                .await
                .map_err(ServiceError::from)?,
        );
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
            .allowance(lane, cfg.refund_collector)
            .call()
            .await
            .map_err(|e| ServiceError::new(ErrorCode::ChainUnavailable, e.to_string()))?;
        let mut before = Vec::new();
        if allowance < needed + queued {
            // Queued first, so it gets the lower nonce and is mined before the refund.
            let approve_to = cfg.refund_allowance.max(needed + queued);
            before.push(NewChainTx {
                chain_id: cfg.chain_id,
                signer: lane,
                // No payment: no payment outcome is derived from it.
                kind: TxKind::Approve,
                payment_id: None,
                request: json!({"call": "approve", "token": payment.info.token, "spender": cfg.refund_collector, "amount": approve_to.to_string()}),
                to: payment.info.token,
                calldata: Bytes::from(calldata::approve(cfg.refund_collector, approve_to)),
                value: U256::ZERO,
                gas_limit: None,
            });
        }
        let outbox = self.outbox(
            &payment,
            TxKind::Refund,
            calldata::refund(
                to_payment_info(&payment.info),
                needed,
                cfg.refund_collector,
            ),
            json!({"call": "refund", "amount": amount.to_string(), "tokenCollector": cfg.refund_collector}),
        );
        self.request_with(
            payment,
            PaymentEvent::RefundRequested { amount },
            before,
            outbox,
            ReserveStep::DebitRefund(amount),
        )
        .await
    }

    /// What the refunds in flight (queued or sent, not yet settled) of `lane` will pull from its
    /// float.
    async fn refunds_in_flight(&self, lane: Address) -> Result<Amount, EngineError> {
        let mut total: Amount = 0;
        for p in self.store().payments_in_flight(1000).await? {
            if p.status != PaymentStatus::Refunding {
                continue;
            }
            if let Some(tx_id) = p.pending_tx_id {
                let tx = self.store().get_tx(tx_id).await?;
                if !tx.status.is_terminal() && tx.signer == lane {
                    total = total.saturating_add(requested_amount(&tx).unwrap_or(0));
                }
            }
        }
        Ok(total)
    }
}
