//! The x402 facilitator face of the engine (`/supported`, `/verify`, `/settle`): see the spec's
//! "Facilitator API" section. Everything here is built on the engine's own paths:
//!
//! - `auth-capture` client payloads are verified by the engine's [`Verifier`] (no gas, no state)
//!   and settled through [`Engine::authorize`] (which looks the payment up by its hash first, so a
//!   retried `/settle` answers with the original success): `authorize` for `paymentFlow`
//!   `escrow` (the default), `charge` for `paymentFlow` `authorization`;
//! - `auth-capture` lifecycle payloads (`payload.type` = capture | void | refund) find the payment
//!   by its PaymentInfo hash and run the engine's capture / void / refund; a charged payment
//!   accepts only refunds (capture and void answer `payment_charged`);
//! - `exact` payloads (ERC-3009 `transferWithAuthorization`) are checked with the SDK, the payer's
//!   balance, `authorizationState` and an `eth_call`, then sent through the outbox (the relayer
//!   sends them) as a `transfer` row. A retried `/settle` answers from that outbox row (found by
//!   its authorization in the store, also after a restart), or else from the chain (the
//!   `AuthorizationUsed` log of a successful transfer of the same authorization).
//!
//! Lifecycle payloads and relayed charges follow `auth-capture` v1.1's delegated operator
//! (`delegated.rs`, DESIGN "The delegated operator"): relayed only with a receiver authorizer,
//! whose EIP-712 consent to the exact call is checked, as are the balances it expects.
//!
//! Lifecycle retries: a void of a payment with nothing capturable and a final void answers with
//! that void; a capture / refund carrying `expectedCapturableAmount` / `expectedRefundableAmount`
//! that finds the amount already moved answers with the transaction that moved it. A capture's
//! fee (`feeBps` on a v1.0 escrow, `feeAmount` on v1.1) and `feeReceiver`, when given, must be
//! what the engine sends.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | `/settle` dispatch, the `auth-capture` authorize settlement, shared answers |
//! | `supported.rs` | `/supported` |
//! | `verify.rs` | `/verify` (`auth-capture` and `exact`) |
//! | `exact.rs` | `/settle` of `exact` transfers |
//! | `lifecycle.rs` | `/settle` of `auth-capture` lifecycle payloads (capture, void, refund) |
//! | `delegated.rs` | the v1.1 `delegated` operator: admission (`operatorType`, `policy`, `captureAuthorizer`), the lifecycle payload's consistency, the receiver authorizer's consent (ECDSA, ERC-1271, or delegated to us) |
//!
//! [`Verifier`]: crate::verify::Verifier

mod delegated;
mod exact;
mod lifecycle;
mod supported;
mod verify;

use std::time::Duration;

use alloy::primitives::{Address, B256};
use uuid::Uuid;
use x402_escrow_sdk::Amount as Units;
use x402_escrow_sdk::facilitator::{SettleResponse, VerifyRequest, reasons};
use x402_escrow_sdk::network::Network;

use crate::engine::Engine;
use crate::engine::waiter::Fallback;
use crate::lifecycle::{Flow, PaymentStatus};
use crate::service::{
    AuthorizeRequest, ErrorCode, PaymentService, PaymentView, ServiceError, TransactionView,
};
use crate::store::{Merchant, TxKind};

/// The `auth-capture` scheme name.
pub const AUTH_CAPTURE: &str = "auth-capture";
/// The `exact` scheme name.
pub const EXACT: &str = "exact";

/// Reason for an `exact` authorization whose nonce is already used or cancelled.
pub const REASON_AUTHORIZATION_USED: &str = "authorization_used";
/// How far back `/settle` looks on chain for a transfer that already used an `exact`
/// authorization (about a day on a 1-second chain; an authorization lives for minutes).
pub const EXACT_LOOKBACK_BLOCKS: u64 = 100_000;

/// How long `/settle` of an `auth-capture` payment still in flight waits for its transaction's
/// hash after the engine's wait (so the client gets a transaction to follow).
const BROADCAST_GRACE: Duration = Duration::from_secs(3);
/// How often that wait re-reads the payment's transactions.
const BROADCAST_POLL: Duration = Duration::from_millis(300);

/// Reason for a capture or void of a charged payment (flow `authorization`): it was captured by
/// its charge, only a refund applies.
pub const REASON_CHARGED_PAYMENT: &str = "payment_charged";

/// The x402 reason of an engine refusal during `/settle`.
pub fn service_error_reason(e: &ServiceError) -> String {
    // A Permit2 payment for a deployment without a Permit2 collector: the x402 name says so.
    if e.reason == Some(reasons::AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD) {
        return reasons::AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD.to_owned();
    }
    match e.code {
        ErrorCode::InvalidPayload => reasons::INVALID_PAYLOAD.to_owned(),
        ErrorCode::WrongChain => reasons::INVALID_NETWORK.to_owned(),
        ErrorCode::WrongEscrow | ErrorCode::InvalidFee => reasons::AUTH_CAPTURE_EXTRA.to_owned(),
        ErrorCode::WrongOperator => reasons::AUTH_CAPTURE_OPERATOR_MISMATCH.to_owned(),
        ErrorCode::UnsupportedAsset | ErrorCode::PayeeNotAllowed => {
            reasons::INVALID_PAYMENT_REQUIREMENTS.to_owned()
        }
        ErrorCode::InvalidSignature => reasons::AUTH_CAPTURE_SIGNATURE.to_owned(),
        ErrorCode::Expired => reasons::AUTH_CAPTURE_AUTHORIZATION_EXPIRED.to_owned(),
        ErrorCode::InsufficientFunds => reasons::INSUFFICIENT_FUNDS.to_owned(),
        ErrorCode::Internal | ErrorCode::ChainUnavailable => {
            reasons::UNEXPECTED_SETTLE_ERROR.to_owned()
        }
        other => other.as_str().to_owned(),
    }
}

fn units(amount: u128) -> Units {
    Units::from(amount)
}

fn to_u128(amount: Units) -> Option<u128> {
    u128::try_from(amount.get()).ok()
}

impl Engine {
    /// `POST /settle`. `wait` bounds how long it waits for the chain before answering
    /// `settlement_pending`.
    pub async fn facilitator_settle(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        wait: Duration,
    ) -> SettleResponse {
        let requirements = &request.payment_requirements;
        let network = requirements.network;
        if network.chain_id() != self.inner.config.chain_id {
            return SettleResponse::failure(
                reasons::INVALID_NETWORK,
                format!("network {} is not served here", network.caip2()),
                network,
                None,
            );
        }
        match requirements.scheme.as_str() {
            AUTH_CAPTURE => {
                if let Some(lifecycle) = request.payment_payload.payload.as_lifecycle() {
                    return self
                        .settle_lifecycle(merchant, request, lifecycle, wait)
                        .await;
                }
                self.settle_authorize(merchant, request, wait).await
            }
            EXACT => self.settle_exact(merchant, request, wait).await,
            other => SettleResponse::failure(
                reasons::UNSUPPORTED_SCHEME,
                format!("scheme {other:?} is not supported (auth-capture, exact)"),
                network,
                None,
            ),
        }
    }

    async fn settle_authorize(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        wait: Duration,
    ) -> SettleResponse {
        let payer = request.payment_payload.payload.payer();
        let network = request.payment_requirements.network;
        if let Err((reason, message)) = self.admit_collect(request).await {
            return SettleResponse::failure(reason, message, network, payer);
        }
        let authorize = AuthorizeRequest {
            payment_payload: request.payment_payload.clone(),
            payment_requirements: request.payment_requirements.clone(),
            request_id: None,
            wait: Some(wait),
        };
        let view = match PaymentService::authorize(self, merchant, authorize, None).await {
            Ok(view) => view,
            Err(e) => {
                return SettleResponse::failure(
                    service_error_reason(&e),
                    e.message.clone(),
                    network,
                    payer,
                );
            }
        };
        let payer = to_payment_payer(&view).or(payer);
        // Flow `escrow` settles as `authorize`, flow `authorization` as `charge`.
        let kind = match view.flow {
            Flow::Authorize => TxKind::Authorize,
            Flow::Charge => TxKind::Charge,
        };
        let tx = latest_tx(&view, kind.as_str());
        match view.status {
            PaymentStatus::Failed => SettleResponse::failure(
                view.last_error
                    .as_ref()
                    .map(|e| e.code.clone())
                    .unwrap_or_else(|| reasons::UNEXPECTED_SETTLE_ERROR.to_owned()),
                view.last_error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_else(|| format!("{kind} failed")),
                network,
                payer,
            ),
            PaymentStatus::Authorizing | PaymentStatus::Charging => {
                // Queued but not broadcast yet: give the relayer a moment to produce a hash, so
                // the client gets a transaction to follow.
                let tx = match tx {
                    Some(hash) => Some(hash),
                    None => self.broadcast_hash(view.id, kind).await,
                };
                pending(tx, network, payer)
            }
            _ => match tx {
                Some(hash) => {
                    let mut ok = SettleResponse::success(
                        hash,
                        network,
                        payer.unwrap_or_default(),
                        Some(units(view.amounts.authorized)),
                    );
                    ok.payer = payer;
                    ok
                }
                None => SettleResponse::failure(
                    reasons::UNEXPECTED_SETTLE_ERROR,
                    format!("{} without a recorded {kind} transaction", view.status),
                    network,
                    payer,
                ),
            },
        }
    }

    /// The hash of a payment's latest `kind` transaction once the relayer broadcasts it,
    /// waited for up to [`BROADCAST_GRACE`] with [`Engine::wait_for`] (woken when the payment
    /// settles, re-read every [`BROADCAST_POLL`] otherwise).
    async fn broadcast_hash(&self, payment_id: Uuid, kind: TxKind) -> Option<B256> {
        let deadline = tokio::time::Instant::now() + BROADCAST_GRACE;
        let found = self
            .wait_for(
                payment_id,
                deadline,
                Fallback::every(BROADCAST_POLL),
                || async move {
                    let Ok(rows) = self.store().txs_for_payment(payment_id).await else {
                        return Ok::<_, std::convert::Infallible>(None);
                    };
                    Ok(match rows.iter().rev().find(|t| t.kind == kind) {
                        Some(row) => self.tx_hash(row.id).await,
                        None => None,
                    })
                },
            )
            .await;
        match found {
            Ok(hash) => hash,
            Err(never) => match never {},
        }
    }

    /// The mined hash of an outbox row, else its latest broadcast.
    async fn tx_hash(&self, id: Uuid) -> Option<B256> {
        let tx = self.store().get_tx(id).await.ok()?;
        match tx.mined_tx_hash {
            Some(h) => Some(h),
            None => self
                .store()
                .attempts_for(id)
                .await
                .ok()
                .and_then(|a| a.last().map(|a| a.tx_hash)),
        }
    }
}

fn to_payment_payer(view: &PaymentView) -> Option<Address> {
    view.payment_info
        .get("payer")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
}

fn latest_tx(view: &PaymentView, kind: &str) -> Option<B256> {
    view.transactions
        .iter()
        .rev()
        .find(|t| made_call(t, kind))
        .and_then(|t| t.hash)
}

/// Whether `t` made the escrow call `kind` for the payment: a transaction of that kind, or a
/// batch (`execute`, `capture_batch`, `void_batch`) whose call for this payment it is.
pub(super) fn made_call(t: &TransactionView, kind: &str) -> bool {
    t.call.as_deref().unwrap_or(t.kind.as_str()) == kind
}

/// `settlement_pending` with the broadcast hash; before any broadcast (no hash yet) the same
/// reason with an empty transaction: the client must not pay again either way.
fn pending(hash: Option<B256>, network: Network, payer: Option<Address>) -> SettleResponse {
    match hash {
        Some(hash) => {
            let mut r = SettleResponse::pending(hash, network, payer.unwrap_or_default());
            r.payer = payer;
            r
        }
        None => SettleResponse::failure(
            reasons::SETTLEMENT_PENDING,
            "queued for broadcast, no transaction hash yet; retry /settle with the same body",
            network,
            payer,
        ),
    }
}
