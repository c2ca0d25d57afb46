//! Capture and void: the merchant's requests that move a hold (checked against the payment and
//! the authorization expiry, then written as a transition with its outbox row).

use serde_json::json;
use uuid::Uuid;

use super::calldata;
use super::{Engine, ReserveStep};
use crate::lifecycle::{PaymentEvent, PaymentStatus};
use crate::service::{CaptureRequest, ErrorCode, PaymentView, ServiceError, to_payment_info};
use crate::store::{Merchant, NewChainTx, Payment, TxKind};

impl Engine {
    pub(super) async fn do_capture(
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
        Self::check_amount(
            amount,
            capturable,
            ErrorCode::ExceedsCapturable,
            "capturable",
        )?;
        let expiry = payment.info.authorization_expiry;
        self.check_deadline(expiry, "the authorization expires too soon to capture")
            .await?;
        let info = to_payment_info(&payment.info);
        let base = calldata::capture_fee(cfg, &info, self.fee_argument(payment.escrow));
        // The merchant's automatic top-up, if it has a rule: its share rides in the fee.
        let (fee, reserve) = match self
            .store()
            .topup_rule(merchant.id)
            .await
            .map_err(super::store_error)?
        {
            Some(share_bps) => {
                let plan = super::reserve::topup_plan(
                    cfg,
                    &payment,
                    amount,
                    (base.bps, base.receiver),
                    share_bps,
                );
                let fee = calldata::CallFee {
                    bps: plan.fee.0,
                    receiver: plan.fee.1,
                    argument: base.argument,
                };
                (fee, ReserveStep::PlanTopup(plan.topup))
            }
            None => (base, ReserveStep::None),
        };
        let outbox = self.outbox(
            &payment,
            TxKind::Capture,
            calldata::capture(info, amount, &fee),
            calldata::with_fee(
                json!({"call": "capture", "amount": amount.to_string()}),
                &fee,
                amount,
            ),
        );
        self.request_with(
            payment,
            PaymentEvent::CaptureRequested { amount },
            vec![],
            outbox,
            reserve,
        )
        .await
    }

    pub(super) async fn do_void(
        &self,
        merchant: &Merchant,
        id: Uuid,
    ) -> Result<PaymentView, ServiceError> {
        let payment = self.owned(merchant, id).await?;
        Self::not_busy(&payment)?;
        let (payment, outbox) = self.void_outbox(payment)?;
        self.request(payment, PaymentEvent::VoidRequested, vec![], outbox)
            .await
    }

    pub(super) fn void_outbox(
        &self,
        payment: Payment,
    ) -> Result<(Payment, NewChainTx), ServiceError> {
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
        let outbox = self.outbox(
            &payment,
            TxKind::Void,
            calldata::void(to_payment_info(&payment.info)),
            json!({"call": "void"}),
        );
        Ok((payment, outbox))
    }
}
