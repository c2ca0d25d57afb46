//! `POST /settle` of `exact` payloads: the ERC-3009 transfer is sent through the outbox as a
//! `transfer` row (alone, or with the signer's other calls in an `execute` batch, whose outcome
//! is written back on the row: `engine/batch.rs`); a retried settle of the same authorization
//! answers from that row.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use serde_json::json;
use x402_escrow_bindings::{IERC20, IERC3009};
use x402_escrow_sdk::facilitator::{SettleResponse, VerifyRequest, reasons};
use x402_escrow_sdk::schemes::exact::ExactPayload;

use super::*;
use crate::engine::Engine;
use crate::store::{ChainTx, Merchant, NewChainTx, TxKind, TxStatus};

/// How often a `/settle` of an `exact` transfer re-reads its outbox row at most (the row can be
/// mined before it is final, and only the row tells).
const EXACT_POLL: Duration = Duration::from_millis(200);

/// The intent key of an `exact` transfer's outbox row: one ERC-3009 authorization (chain,
/// token, payer, nonce) is sent once, and a retried `/settle` finds its row by this key.
pub fn exact_intent_key(chain_id: u64, token: Address, from: Address, nonce: B256) -> String {
    format!("transfer:{chain_id}:{token:#x}:{from:#x}:{nonce}")
}

impl Engine {
    /// `POST /settle` of an `exact` payload: the outbox row of this authorization when there is
    /// one (a retry, also after a restart or from another instance), else the checks and a new
    /// `transfer` row; then waits (bounded by `wait`) for the row to be mined.
    pub(super) async fn settle_exact(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        wait: Duration,
    ) -> SettleResponse {
        let network = request.payment_requirements.network;
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
        let unexpected = |e: crate::store::StoreError| {
            SettleResponse::failure(
                reasons::UNEXPECTED_SETTLE_ERROR,
                e.to_string(),
                network,
                Some(payer),
            )
        };
        let key = exact_intent_key(
            self.inner.config.chain_id,
            request.payment_requirements.asset,
            auth.from,
            auth.nonce,
        );
        let tx_id = match self.store().tx_by_intent_key(&key).await {
            Ok(Some(tx)) => tx.id,
            Ok(None) => match self.send_exact(merchant, request, payload, &key).await {
                Ok(id) => id,
                Err(answer) => return answer,
            },
            Err(e) => return unexpected(e),
        };
        self.inner.relayer.notify_one();
        let deadline = tokio::time::Instant::now() + wait;
        let poll = self.inner.config.poll_interval.min(EXACT_POLL);
        let answer = self
            .wait_for(tx_id, deadline, Fallback::every(poll), || async move {
                let tx = self.store().get_tx(tx_id).await.map_err(unexpected)?;
                Ok(self.exact_answer(&tx, network, payload).await)
            })
            .await;
        match answer {
            Ok(Some(answer)) | Err(answer) => answer,
            Ok(None) => pending(self.exact_tx_hash(tx_id).await, network, Some(payer)),
        }
    }

    /// The hash of the transaction that carries `transfer` row `tx_id`: its own, or, while it is
    /// merged into an `execute`, the batch's.
    async fn exact_tx_hash(&self, tx_id: uuid::Uuid) -> Option<B256> {
        if let Some(hash) = self.tx_hash(tx_id).await {
            return Some(hash);
        }
        let member = self.store().membership_of_source(tx_id).await.ok()??;
        self.tx_hash(member.batch_tx_id).await
    }

    /// Checks an `exact` payload and writes its `transfer` row under `key` (or finds the row a
    /// concurrent settle of the same authorization wrote). `Err` is the answer to give instead.
    async fn send_exact(
        &self,
        merchant: &Merchant,
        request: &VerifyRequest,
        payload: &ExactPayload,
        key: &str,
    ) -> Result<uuid::Uuid, SettleResponse> {
        let requirements = &request.payment_requirements;
        let network = requirements.network;
        let auth = &payload.authorization;
        if let Err((reason, message, payer)) = self.verify_exact(merchant, request).await {
            // Used already: if the chain shows this very transfer (sent before the outbox kept
            // intent keys, or by someone else), answer with its success.
            if reason == REASON_AUTHORIZATION_USED
                && let Some(hash) = self.exact_on_chain(requirements.asset, payload).await
            {
                return Err(SettleResponse::success(
                    hash,
                    network,
                    auth.from,
                    Some(auth.value),
                ));
            }
            return Err(SettleResponse::failure(reason, message, network, payer));
        }
        let cfg = &self.inner.config;
        let row = NewChainTx {
            chain_id: cfg.chain_id,
            signer: cfg.signer,
            kind: TxKind::Transfer,
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
            calldata: Bytes::from(crate::engine::calldata::transfer_with_authorization(
                payload,
            )),
            value: U256::ZERO,
            gas_limit: None,
        };
        match self.store().enqueue_keyed_tx(key, &row).await {
            Ok((tx, _)) => Ok(tx.id),
            Err(e) => Err(SettleResponse::failure(
                reasons::UNEXPECTED_SETTLE_ERROR,
                e.to_string(),
                network,
                Some(auth.from),
            )),
        }
    }

    /// The answer an `exact` transfer's row gives now ([`Engine::row_answer`]). A row that took
    /// no nonce of its own and is settled may have been merged into an `execute`
    /// (`relayer/batch.rs`): then `None` until the batch's outcome is written back on it
    /// (applied here when the batch is settled and nobody has yet: another instance's batch, or
    /// one settled before a restart), `settlement_pending` when the batch was abandoned, and
    /// otherwise the row's outcome under the batch's transaction hash.
    async fn exact_answer(
        &self,
        tx: &ChainTx,
        network: x402_escrow_sdk::network::Network,
        payload: &ExactPayload,
    ) -> Option<SettleResponse> {
        if tx.nonce.is_some() || !tx.status.is_terminal() {
            return self.row_answer(tx, network, payload).await;
        }
        let member = match self.store().membership_of_source(tx.id).await {
            Ok(Some(member)) if member.fallback_tx_id.is_none() => member,
            // Sent alone (refused at its estimate), or queued again after its batch failed.
            _ => return self.row_answer(tx, network, payload).await,
        };
        let batch = self.store().get_tx(member.batch_tx_id).await.ok()?;
        let mut tx = tx.clone();
        if tx.status == TxStatus::Abandoned {
            match batch.status {
                TxStatus::Abandoned => {
                    let payer = Some(payload.authorization.from);
                    return Some(pending(self.tx_hash(batch.id).await, network, payer));
                }
                status if !status.is_terminal() => return None,
                _ => {}
            }
            if let Err(e) = self.on_tx_outcome(batch.id).await {
                // Retried at every poll of every waiting request, and the outcome sweep applies
                // it too (logging its own failures): a warning here would repeat per request
                // and poll while the chain is unreachable.
                tracing::debug!(chain_tx = %batch.id, error = %e, "applying a batch outcome for /settle failed");
            }
            tx = self.store().get_tx(tx.id).await.ok()?;
            if tx.status == TxStatus::Abandoned {
                // Being applied by another task, which wakes this request.
                return None;
            }
        }
        // Written back: the batch's transaction carried it.
        tx.mined_tx_hash = batch.mined_tx_hash;
        self.row_answer(&tx, network, payload).await
    }

    /// The answer a `transfer` row (sent alone, or with its batch's outcome written back) gives
    /// now: success once mined with a successful receipt, failure once reverted,
    /// `settlement_pending` once abandoned; `None` while in flight.
    async fn row_answer(
        &self,
        tx: &ChainTx,
        network: x402_escrow_sdk::network::Network,
        payload: &ExactPayload,
    ) -> Option<SettleResponse> {
        let auth = &payload.authorization;
        let payer = auth.from;
        match tx.status {
            TxStatus::Final if tx.succeeded != Some(false) => tx
                .mined_tx_hash
                .map(|hash| SettleResponse::success(hash, network, payer, Some(auth.value))),
            TxStatus::Final | TxStatus::Reverted => Some(SettleResponse::failure(
                "transaction_reverted",
                format!(
                    "transferWithAuthorization reverted: {}",
                    crate::engine::revert_code(tx.revert_reason.as_deref())
                ),
                network,
                Some(payer),
            )),
            // Mined but not final yet: the receipt is known and succeeded.
            _ if tx.mined_tx_hash.is_some() && tx.succeeded == Some(true) => tx
                .mined_tx_hash
                .map(|hash| SettleResponse::success(hash, network, payer, Some(auth.value))),
            _ if tx.status.is_terminal() => {
                Some(pending(self.tx_hash(tx.id).await, network, Some(payer)))
            }
            _ => None,
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
            .event_signature(IERC3009::AuthorizationUsed::SIGNATURE_HASH)
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
                    && IERC20::Transfer::decode_log(&l.inner).is_ok_and(|t| {
                        t.from == auth.from && t.to == auth.to && t.value == auth.value.get()
                    })
            });
            if moved {
                return Some(hash);
            }
        }
        None
    }
}
