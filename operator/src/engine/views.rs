//! What merchants are shown: the payment view (with its transactions) and the terms.

use super::{Engine, store_error};
use crate::service::{PaymentView, ServiceError, payment_view, transaction_views};
use crate::store::{Merchant, Payment};
use x402_escrow_sdk::merchant::MerchantTerms;

impl Engine {
    pub(super) async fn view(&self, payment: &Payment) -> Result<PaymentView, ServiceError> {
        let txs = transaction_views(self.store(), payment.id)
            .await
            .map_err(store_error)?;
        Ok(payment_view(payment, txs))
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
