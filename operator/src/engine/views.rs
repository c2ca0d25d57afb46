//! What merchants are shown: the payment view (with its transactions) and the terms.

use super::{Engine, store_error};
use crate::service::{PaymentView, ServiceError, TransactionView, payment_view};
use crate::store::{Merchant, Payment};
use x402_escrow_sdk::merchant::MerchantTerms;

impl Engine {
    pub(super) async fn view(&self, payment: &Payment) -> Result<PaymentView, ServiceError> {
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
