//! A merchant submits an x402 payment: a retry of a payment already held answers with it;
//! otherwise the payment is verified, written with its `authorize` (flow `escrow`) or `charge`
//! (flow `authorization`) outbox row in one SQL transaction, and the caller waits for the outcome.

use alloy::primitives::{Bytes, U256};
use serde_json::json;
use uuid::Uuid;

use super::calldata;
use super::{Engine, secs_to_ms, store_error};
use crate::lifecycle::Flow;
use crate::service::{AuthorizeRequest, ErrorCode, PaymentView, ServiceError, to_record};
use crate::store::{Merchant, NewChainTx, NewPayment, StoreError, TxKind};
use crate::verify::VerifyError;

impl Engine {
    pub(super) async fn do_authorize(
        &self,
        merchant: &Merchant,
        request: AuthorizeRequest,
        idempotency_key: Option<&str>,
    ) -> Result<PaymentView, ServiceError> {
        let cfg = &self.inner.config;
        let verifier = &self.inner.verifier;
        // A retry of a payment we already hold answers with that payment (the chain would
        // refuse the second authorize anyway: the ERC-3009 or Permit2 nonce is spent).
        // Derived once: the retry lookup uses it, then the verifier checks it.
        let derived = x402_escrow_sdk::schemes::auth_capture::derive_from_payment_payload(
            &request.payment_requirements,
            &request.payment_payload,
            &verifier.config().registry,
        );
        if let Ok(derived) = &derived {
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
                derived,
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
            Flow::Authorize => (
                TxKind::Authorize,
                calldata::authorize(
                    info,
                    verified.amount,
                    derived.token_collector,
                    verified.signature.clone(),
                ),
                json!({
                    "call": "authorize",
                    "paymentHash": derived.payment_info_hash,
                    "amount": verified.amount.to_string(),
                    "tokenCollector": derived.token_collector,
                }),
            ),
            Flow::Charge => {
                let fee = calldata::CallFee {
                    bps: verified.fee_bps,
                    receiver: verified.fee_receiver,
                    argument: derived.deployment.fee_argument,
                };
                (
                    TxKind::Charge,
                    calldata::charge(
                        info,
                        verified.amount,
                        derived.token_collector,
                        verified.signature.clone(),
                        &fee,
                    ),
                    calldata::with_fee(
                        json!({
                            "call": "charge",
                            "paymentHash": derived.payment_info_hash,
                            "amount": verified.amount.to_string(),
                            "tokenCollector": derived.token_collector,
                        }),
                        &fee,
                        verified.amount,
                    ),
                )
            }
        };
        let outbox = NewChainTx {
            chain_id: cfg.chain_id,
            // The lane the payment names (verified to be one of ours).
            signer: info.operator,
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
}
