//! `POST /settle` of `exact` payloads: the ERC-3009 transfer is sent through the outbox as a
//! `transfer` row; a retried settle of the same authorization answers from that row.

use std::collections::HashMap;
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::SolCall;
use serde_json::json;
use uuid::Uuid;
use x402_escrow_bindings::contracts::test_usdc::TestUSDC as Erc20;
use x402_escrow_sdk::facilitator::{SettleResponse, VerifyRequest, reasons};
use x402_escrow_sdk::schemes::exact::ExactPayload;

use super::*;
use crate::engine::Engine;
use crate::store::{Merchant, NewChainTx, TxKind, TxStatus};

use std::sync::OnceLock;

/// Exact transfers sent by this process, by (token, payer, nonce): a retried `/settle` of the
/// same authorization answers from its outbox row instead of failing on the used nonce.
/// In-process only (see the report: a durable index needs a store column).
type ExactSent = tokio::sync::Mutex<HashMap<(Address, Address, B256), Uuid>>;

fn exact_sent() -> &'static ExactSent {
    static SENT: OnceLock<ExactSent> = OnceLock::new();
    SENT.get_or_init(Default::default)
}

impl Engine {
    pub(super) async fn settle_exact(
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
                            crate::engine::revert_code(tx.revert_reason.as_deref())
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
}

/// The token call of an `exact` payload.
pub(super) fn transfer_call(payload: &ExactPayload) -> Erc20::transferWithAuthorization_0Call {
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
