//! Reconciliation: the database's amounts compared with the escrow's `paymentState`.

use uuid::Uuid;
use x402_escrow_bindings::AuthCaptureEscrow;

use super::{ChainState, Difference, Engine, EngineError};
use crate::lifecycle::PaymentStatus;
use crate::store::Payment;

impl Engine {
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
