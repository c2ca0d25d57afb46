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
//!   sends them). A retried `/settle` answers from the outbox row this process wrote, or else from
//!   the chain (the `AuthorizationUsed` log of a successful transfer of the same authorization).
//!
//! Lifecycle retries: a void of a payment with nothing capturable and a final void answers with
//! that void; a capture / refund carrying `expectedCapturableAmount` / `expectedRefundableAmount`
//! that finds the amount already moved answers with the transaction that moved it. A capture's
//! `feeBps` / `feeReceiver`, when given, must be what the engine sends (`feeAmount` is refused).
//! `authorizerSignature` (receiver authorizer) is not checked: the merchant's API key is.
//!
//! Outbox kind of `exact` transfers: the outbox has no `transfer` kind yet, so the row is written
//! as kind `charge` with no payment (like the refund float's `approve` stopgap): no payment
//! outcome is ever derived from it. A dedicated kind needs a migration (see the report).
//!
//! [`Verifier`]: crate::verify::Verifier

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::SolCall;
use serde_json::json;
use uuid::Uuid;
use x402_escrow_bindings::TestUSDC;
use x402_escrow_bindings::contracts::test_usdc::TestUSDC as Erc20;
use x402_escrow_sdk::Amount as Units;
use x402_escrow_sdk::facilitator::{
    SettleResponse, SupportedKind, SupportedResponse, VerifyRequest, VerifyResponse, reasons,
};
use x402_escrow_sdk::network::Network;
use x402_escrow_sdk::schemes::auth_capture::{
    CLOCK_SKEW_TOLERANCE_SECONDS, LifecycleOperation, LifecyclePayload,
    derive_from_payment_payload, payment_info_from_json,
};
use x402_escrow_sdk::schemes::exact::{self, ExactPayload};
use x402_escrow_sdk::wire::extensions::PAYMENT_IDENTIFIER;

use super::Engine;
use crate::lifecycle::{Flow, PaymentStatus};
use crate::service::{
    AuthorizeRequest, CaptureRequest, ErrorCode, PaymentService, PaymentView, RefundRequest,
    ServiceError,
};
use crate::store::{Merchant, NewChainTx, TxKind, TxStatus};
use crate::verify::VerifyError;

/// The `auth-capture` scheme name.
pub const AUTH_CAPTURE: &str = "auth-capture";
/// The `exact` scheme name.
pub const EXACT: &str = "exact";

/// Reason for an `exact` authorization whose nonce is already used or cancelled.
pub const REASON_AUTHORIZATION_USED: &str = "authorization_used";
/// How far back `/settle` looks on chain for a transfer that already used an `exact`
/// authorization (about a day on a 1-second chain; an authorization lives for minutes).
pub const EXACT_LOOKBACK_BLOCKS: u64 = 100_000;

/// Reason for a capture or void of a charged payment (flow `authorization`): it was captured by
/// its charge, only a refund applies.
pub const REASON_CHARGED_PAYMENT: &str = "payment_charged";

/// The x402 reason of a verifier refusal ([`VerifyError::reason`]).
pub fn verify_error_reason(e: &VerifyError) -> &'static str {
    e.reason()
}

/// The x402 reason of an engine refusal during `/settle`.
pub fn service_error_reason(e: &ServiceError) -> String {
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

/// Exact transfers sent by this process, by (token, payer, nonce): a retried `/settle` of the
/// same authorization answers from its outbox row instead of failing on the used nonce.
/// In-process only (see the report: a durable index needs a store column).
type ExactSent = tokio::sync::Mutex<HashMap<(Address, Address, B256), Uuid>>;

fn exact_sent() -> &'static ExactSent {
    static SENT: OnceLock<ExactSent> = OnceLock::new();
    SENT.get_or_init(Default::default)
}

fn units(amount: u128) -> Units {
    Units::from(amount)
}

fn to_u128(amount: Units) -> Option<u128> {
    u128::try_from(amount.get()).ok()
}

impl Engine {
    /// `GET /supported`: auth-capture and exact on our chain (v2, plus v1 where the chain has a
    /// v1 name), the `payment-identifier` extension, our signer.
    pub fn facilitator_supported(&self) -> SupportedResponse {
        let cfg = &self.inner.config;
        let network = Network::eip155(cfg.chain_id);
        let escrows: Vec<Address> = self
            .inner
            .verifier
            .config()
            .registry
            .deployments()
            .iter()
            .map(|d| d.escrow)
            .collect();
        let checksum = |a: &Address| a.to_checksum(None);
        let extra = json!({
            "captureAuthorizer": checksum(&cfg.signer),
            "feeRecipient": checksum(&cfg.fee_receiver),
            "feeBps": cfg.fee_bps,
            "authCaptureEscrows": escrows.iter().map(checksum).collect::<Vec<_>>(),
            "paymentFlows": ["escrow", "authorization"],
            // The time windows payments are judged by (DESIGN.md, "Clocks"); a merchant's own
            // capture deadline comes with its terms (`GET /v1/merchant`).
            "captureDeadlineSeconds": self.inner.verifier.config().default_capture_deadline_secs,
            "expiryMarginSeconds": cfg.expiry_margin_secs,
            "clockSkewSeconds": CLOCK_SKEW_TOLERANCE_SECONDS,
            "assets": self.inner.verifier.config().assets.iter().map(checksum).collect::<Vec<_>>(),
        });
        let mut kinds = Vec::new();
        let mut names = vec![(2u8, network.caip2())];
        if let Some(v1) = network.v1_name() {
            names.push((1, v1.to_owned()));
        }
        for (version, name) in names {
            kinds.push(SupportedKind {
                x402_version: version,
                scheme: AUTH_CAPTURE.to_owned(),
                network: name.clone(),
                extra: Some(extra.clone()),
            });
            kinds.push(SupportedKind {
                x402_version: version,
                scheme: EXACT.to_owned(),
                network: name,
                extra: None,
            });
        }
        let mut signers = BTreeMap::new();
        signers.insert("eip155:*".to_owned(), vec![cfg.signer]);
        SupportedResponse {
            kinds,
            extensions: vec![PAYMENT_IDENTIFIER.to_owned()],
            signers,
        }
    }

    /// `POST /verify`: no gas, no state.
    pub async fn facilitator_verify(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
    ) -> VerifyResponse {
        let requirements = &request.payment_requirements;
        let payload = &request.payment_payload;
        if requirements.network.chain_id() != self.inner.config.chain_id {
            return VerifyResponse::invalid(
                reasons::INVALID_NETWORK,
                format!(
                    "network {} is not served here (eip155:{})",
                    requirements.network.caip2(),
                    self.inner.config.chain_id
                ),
                None,
            );
        }
        match requirements.scheme.as_str() {
            AUTH_CAPTURE => {
                if payload.payload.as_lifecycle().is_some() {
                    return VerifyResponse::invalid(
                        reasons::AUTH_CAPTURE_PAYLOAD_TYPE,
                        "lifecycle payloads (capture, void, refund) are settled, not verified",
                        None,
                    );
                }
                let derived = match derive_from_payment_payload(
                    requirements,
                    payload,
                    &self.inner.verifier.config().registry,
                ) {
                    Ok(d) => d,
                    Err(e) => return VerifyResponse::invalid(e.reason(), e.to_string(), None),
                };
                let payer = derived.payment_info.payer;
                let now = match self.inner.verifier.acceptance_now().await {
                    Ok(now) => now,
                    Err(e) => {
                        return VerifyResponse::invalid(
                            verify_error_reason(&e),
                            e.to_string(),
                            Some(payer),
                        );
                    }
                };
                match self
                    .inner
                    .verifier
                    .verify(merchant, requirements, payload, now)
                    .await
                {
                    Ok(_) => VerifyResponse::valid(payer),
                    Err(e) => {
                        VerifyResponse::invalid(verify_error_reason(&e), e.to_string(), Some(payer))
                    }
                }
            }
            EXACT => match self.verify_exact(merchant, request).await {
                Ok(payer) => VerifyResponse::valid(payer),
                Err((reason, message, payer)) => VerifyResponse::invalid(reason, message, payer),
            },
            other => VerifyResponse::invalid(
                reasons::UNSUPPORTED_SCHEME,
                format!("scheme {other:?} is not supported (auth-capture, exact)"),
                None,
            ),
        }
    }

    /// The `exact` checks: requirements echo, asset, payee, SDK `verify_payload`, nonce unused,
    /// balance, and an `eth_call` of `transferWithAuthorization` from our signer.
    async fn verify_exact(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
    ) -> Result<Address, (String, String, Option<Address>)> {
        let requirements = &request.payment_requirements;
        let Some(payload) = request.payment_payload.payload.as_exact() else {
            return Err((
                reasons::INVALID_PAYLOAD.into(),
                "not an exact ERC-3009 payload".into(),
                None,
            ));
        };
        let payer = payload.authorization.from;
        let fail = |r: &str, m: String| (r.to_owned(), m, Some(payer));
        if let Err(e) = request.payment_payload.accepted.check_matches(requirements) {
            return Err(fail(reasons::REQUIREMENTS_MISMATCH, e.to_string()));
        }
        if !self
            .inner
            .verifier
            .config()
            .assets
            .contains(&requirements.asset)
        {
            return Err(fail(
                reasons::INVALID_PAYMENT_REQUIREMENTS,
                format!("asset {} is not accepted", requirements.asset),
            ));
        }
        if !merchant.receivers.contains(&requirements.pay_to) {
            return Err(fail(
                reasons::INVALID_PAYMENT_REQUIREMENTS,
                format!(
                    "payTo {} is not one of the merchant's receivers",
                    requirements.pay_to
                ),
            ));
        }
        let now = self
            .inner
            .verifier
            .acceptance_now()
            .await
            .map_err(|e| fail(reasons::UNEXPECTED_VERIFY_ERROR, e.to_string()))?;
        exact::verify_payload(requirements, payload, now)
            .map_err(|e| fail(e.reason(), e.to_string()))?;
        let token = TestUSDC::new(requirements.asset, self.inner.provider.clone());
        let auth = &payload.authorization;
        let used = token
            .authorizationState(auth.from, auth.nonce)
            .call()
            .await
            .map_err(|e| fail(reasons::UNEXPECTED_VERIFY_ERROR, e.to_string()))?;
        if used {
            return Err(fail(
                REASON_AUTHORIZATION_USED,
                format!("authorization {} was already used or cancelled", auth.nonce),
            ));
        }
        let balance = token
            .balanceOf(auth.from)
            .call()
            .await
            .map_err(|e| fail(reasons::UNEXPECTED_VERIFY_ERROR, e.to_string()))?;
        if balance < auth.value.get() {
            return Err(fail(
                reasons::INSUFFICIENT_FUNDS,
                format!("payer balance {balance} is below {}", auth.value),
            ));
        }
        let call = transfer_call(payload);
        let sim = alloy::providers::Provider::call(
            &self.inner.provider,
            alloy::rpc::types::TransactionRequest::default()
                .from(self.inner.config.signer)
                .to(requirements.asset)
                .input(Bytes::from(call.abi_encode()).into()),
        )
        .await;
        if let Err(e) = sim {
            return Err(fail(
                reasons::INVALID_PAYLOAD,
                format!("simulation of transferWithAuthorization failed: {e}"),
            ));
        }
        Ok(payer)
    }

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
        let requirements = &request.payment_requirements;
        let network = requirements.network;
        let payer = request
            .payment_payload
            .payload
            .as_auth_capture()
            .map(|p| p.authorization.from);
        let authorize = AuthorizeRequest {
            payment_payload: request.payment_payload.clone(),
            payment_requirements: requirements.clone(),
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
                let mut tx = tx;
                for _ in 0..10 {
                    if tx.is_some() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if let Ok(rows) = self.store().txs_for_payment(view.id).await
                        && let Some(row) = rows.iter().rev().find(|t| t.kind == kind)
                    {
                        tx = self.tx_hash(row.id).await;
                    }
                }
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

    async fn settle_lifecycle(
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

    async fn settle_exact(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        wait: Duration,
    ) -> SettleResponse {
        let requirements = &request.payment_requirements;
        let network = requirements.network;
        let Some(payload) = request.payment_payload.payload.as_exact() else {
            return SettleResponse::failure(
                reasons::INVALID_PAYLOAD,
                "not an exact ERC-3009 payload",
                network,
                None,
            );
        };
        let auth = &payload.authorization;
        let payer = auth.from;
        let key = (requirements.asset, auth.from, auth.nonce);
        let tx_id = {
            let mut sent = exact_sent().lock().await;
            match sent.get(&key) {
                Some(id) => *id,
                None => {
                    if let Err((reason, message, payer)) =
                        self.verify_exact(merchant, request).await
                    {
                        // Used already: if the chain shows this very transfer (sent before a
                        // restart, or by another instance), answer with its success.
                        if reason == REASON_AUTHORIZATION_USED
                            && let Some(hash) =
                                self.exact_on_chain(requirements.asset, payload).await
                        {
                            return SettleResponse::success(
                                hash,
                                network,
                                auth.from,
                                Some(auth.value),
                            );
                        }
                        return SettleResponse::failure(reason, message, network, payer);
                    }
                    let cfg = &self.inner.config;
                    let row = NewChainTx {
                        chain_id: cfg.chain_id,
                        signer: cfg.signer,
                        // Stopgap: no `transfer` kind in the outbox yet (see the module docs).
                        kind: TxKind::Charge,
                        payment_id: None,
                        request: json!({
                            "call": "transferWithAuthorization",
                            "scheme": "exact",
                            "merchantId": merchant.id,
                            "token": requirements.asset,
                            "from": auth.from,
                            "to": auth.to,
                            "amount": auth.value.to_string(),
                            "nonce": auth.nonce,
                        }),
                        to: requirements.asset,
                        calldata: Bytes::from(transfer_call(payload).abi_encode()),
                        value: U256::ZERO,
                        gas_limit: None,
                    };
                    match self.store().enqueue_tx(&row).await {
                        Ok(tx) => {
                            sent.insert(key, tx.id);
                            tx.id
                        }
                        Err(e) => {
                            return SettleResponse::failure(
                                reasons::UNEXPECTED_SETTLE_ERROR,
                                e.to_string(),
                                network,
                                Some(payer),
                            );
                        }
                    }
                }
            }
        };
        self.inner.relayer.notify_one();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let tx = match self.store().get_tx(tx_id).await {
                Ok(tx) => tx,
                Err(e) => {
                    return SettleResponse::failure(
                        reasons::UNEXPECTED_SETTLE_ERROR,
                        e.to_string(),
                        network,
                        Some(payer),
                    );
                }
            };
            let done = match tx.status {
                TxStatus::Final if tx.succeeded != Some(false) => {
                    if let Some(hash) = tx.mined_tx_hash {
                        return SettleResponse::success(hash, network, payer, Some(auth.value));
                    }
                    false
                }
                TxStatus::Final | TxStatus::Reverted => {
                    return SettleResponse::failure(
                        "transaction_reverted",
                        format!(
                            "transferWithAuthorization reverted: {}",
                            super::revert_code(tx.revert_reason.as_deref())
                        ),
                        network,
                        Some(payer),
                    );
                }
                // Mined but not final yet: the receipt is known and succeeded.
                _ if tx.mined_tx_hash.is_some() && tx.succeeded == Some(true) => {
                    if let Some(hash) = tx.mined_tx_hash {
                        return SettleResponse::success(hash, network, payer, Some(auth.value));
                    }
                    false
                }
                _ => tx.status.is_terminal(),
            };
            if done || tokio::time::Instant::now() >= deadline {
                let hash = match tx.mined_tx_hash {
                    Some(h) => Some(h),
                    None => self
                        .store()
                        .attempts_for(tx.id)
                        .await
                        .ok()
                        .and_then(|a| a.last().map(|a| a.tx_hash)),
                };
                return pending(hash, network, Some(payer));
            }
            tokio::time::sleep(
                self.inner
                    .config
                    .poll_interval
                    .min(Duration::from_millis(200)),
            )
            .await;
        }
    }
}

impl Engine {
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
                    && super::requested_amount(t) == Some(amount)
            })
            .and_then(|t| t.mined_tx_hash)
    }

    /// The transaction that used an `exact` authorization, found on chain: its
    /// `AuthorizationUsed(from, nonce)` log (in the last [`EXACT_LOOKBACK_BLOCKS`]) in a
    /// successful transaction that also moved `value` from `from` to `to`.
    async fn exact_on_chain(&self, token: Address, payload: &ExactPayload) -> Option<B256> {
        use alloy::providers::Provider;
        use alloy::rpc::types::Filter;
        use alloy::sol_types::SolEvent;
        let auth = &payload.authorization;
        let provider = &self.inner.provider;
        let latest = provider.get_block_number().await.ok()?;
        let filter = Filter::new()
            .address(token)
            .event_signature(Erc20::AuthorizationUsed::SIGNATURE_HASH)
            .topic1(auth.from.into_word())
            .topic2(auth.nonce)
            .from_block(latest.saturating_sub(EXACT_LOOKBACK_BLOCKS))
            .to_block(latest);
        let logs = provider.get_logs(&filter).await.ok()?;
        for log in logs {
            let Some(hash) = log.transaction_hash else {
                continue;
            };
            let Ok(Some(receipt)) = provider.get_transaction_receipt(hash).await else {
                continue;
            };
            if !receipt.status() {
                continue;
            }
            let moved = receipt.inner.logs().iter().any(|l| {
                l.address() == token
                    && Erc20::Transfer::decode_log(&l.inner).is_ok_and(|t| {
                        t.from == auth.from && t.to == auth.to && t.amount == auth.value.get()
                    })
            });
            if moved {
                return Some(hash);
            }
        }
        None
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

fn transfer_call(payload: &ExactPayload) -> Erc20::transferWithAuthorization_0Call {
    let auth = &payload.authorization;
    Erc20::transferWithAuthorization_0Call {
        from: auth.from,
        to: auth.to,
        value: auth.value.get(),
        validAfter: auth.valid_after.get(),
        validBefore: auth.valid_before.get(),
        nonce: auth.nonce,
        signature: payload.signature.clone(),
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
        .find(|t| t.kind == kind)
        .and_then(|t| t.hash)
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
