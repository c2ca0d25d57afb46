//! Outcomes: a settled outbox row (`final`, `reverted`, `abandoned`) or a chain event (the
//! indexer's `PaymentReclaimed`) becomes the payment's next transition and its webhook.
//! Idempotent: an outcome is applied only while `payments.pending_tx_id` still names the row.

use tracing::Instrument;
use uuid::Uuid;

use super::{BATCH, ChainState, Engine, EngineError, OutcomeApplied, RETRIES};
use crate::lifecycle::{Amount, PaymentEvent};
use crate::store::{
    ChainEvent, ChainTx, NewWebhookEvent, Payment, StoreError, TransitionExtras, TxKind, TxStatus,
};
use crate::verify::decode_escrow_error;

impl Engine {
    /// Applies the outcome of outbox row `chain_tx_id` to its payment. Idempotent: acts only
    /// while the payment's `pending_tx_id` is that row and the row is `final`, `reverted` or
    /// `abandoned`. Final → the `*Confirmed` event and its webhook; reverted → `*Failed` with
    /// the decoded custom error; abandoned → whatever `paymentState` says happened.
    ///
    /// One task of this process applies a row's outcome at a time: a second caller meanwhile
    /// (the waiters of a batch's members all find its row settled at once) gets
    /// [`OutcomeApplied::InProgress`] instead of reading every member again to find them stale.
    pub async fn on_tx_outcome(&self, chain_tx_id: Uuid) -> Result<OutcomeApplied, EngineError> {
        let Some(_turn) = self.inner.applying.enter(chain_tx_id) else {
            return Ok(OutcomeApplied::InProgress);
        };
        let span = tracing::info_span!("tx_outcome", chain_tx = %chain_tx_id, payment_id = tracing::field::Empty, payment_hash = tracing::field::Empty, request_id = tracing::field::Empty);
        async {
            for _ in 0..RETRIES {
                match self.apply_outcome(chain_tx_id).await {
                    Err(EngineError::Store(e)) if e.is_retryable() => continue,
                    other => return other,
                }
            }
            self.apply_outcome(chain_tx_id).await
        }
        .instrument(span)
        .await
    }

    async fn apply_outcome(&self, chain_tx_id: Uuid) -> Result<OutcomeApplied, EngineError> {
        let tx = self.store().get_tx(chain_tx_id).await?;
        if !tx.status.is_terminal() {
            return Ok(OutcomeApplied::Ignored);
        }
        // Whoever waits on the row itself (an `exact` transfer's `/settle`) learns it settled.
        self.inner.waiters.wake(tx.id);
        if tx.kind.is_batch() {
            return self.apply_batch_outcome(&tx).await;
        }
        let Some(payment_id) = tx.payment_id else {
            return Ok(OutcomeApplied::Ignored);
        };
        let payment = self.store().get_payment(payment_id).await?;
        let span = tracing::Span::current();
        span.record("payment_id", tracing::field::display(payment.id));
        span.record(
            "payment_hash",
            tracing::field::display(payment.payment_hash),
        );
        if let Some(r) = &payment.request_id {
            span.record("request_id", r.as_str());
        }
        if payment.pending_tx_id != Some(tx.id) {
            tracing::debug!("stale outcome (payment no longer waits for it)");
            return Ok(OutcomeApplied::Ignored);
        }
        let (event, message) = match tx.status {
            TxStatus::Final if tx.succeeded != Some(false) => (confirmed(&tx, &payment), None),
            TxStatus::Final | TxStatus::Reverted => {
                let code = revert_code(tx.revert_reason.as_deref());
                (
                    failed(tx.kind, code.clone()),
                    Some(format!("{} reverted: {code}", tx.kind)),
                )
            }
            _ => {
                let state = self.chain_state(&payment).await?;
                let event = from_chain_state(&tx, &payment, &state);
                let msg = event
                    .as_ref()
                    .and_then(PaymentEvent::error_code)
                    .map(|_| format!("{} abandoned; chain state {state:?}", tx.kind));
                (event, msg)
            }
        };
        let Some(event) = event else {
            tracing::debug!(kind = %tx.kind, "this kind carries no payment outcome");
            return Ok(OutcomeApplied::Ignored);
        };
        let webhook = webhook_for(&event, &payment, Some(&tx));
        let transition = self
            .store()
            .transition_from(
                &payment,
                &event,
                TransitionExtras {
                    outbox: None,
                    webhook,
                    error_message: message,
                },
            )
            .await?;
        tracing::info!(status = %transition.payment.status, event = event.name(), "outcome applied");
        self.inner.waiters.wake(payment.id);
        Ok(OutcomeApplied::Applied(transition.payment.status))
    }

    /// Non-blocking form of [`Engine::on_tx_outcome`] for synchronous callbacks (e.g. the
    /// relayer's `TxObserver::on_outcome`): spawns it on the current tokio runtime. Without a
    /// runtime nothing happens here; the waiters and [`Engine::process_outcomes`] still apply it.
    pub fn notify_outcome(&self, chain_tx_id: Uuid) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let engine = self.clone();
        handle.spawn(async move {
            if let Err(e) = engine.on_tx_outcome(chain_tx_id).await {
                tracing::warn!(chain_tx = %chain_tx_id, error = %e, "applying outcome failed");
            }
        });
    }

    /// Applies every outcome the store holds for payments still waiting on a settled
    /// transaction, and for `exact` transfers still merged into a settled batch (outcomes
    /// written while the engine was down). Returns how many were applied.
    pub async fn process_outcomes(&self) -> Result<usize, EngineError> {
        let mut settled_rows = Vec::new();
        for payment in self.store().payments_in_flight(1000).await? {
            let Some(tx_id) = payment.pending_tx_id else {
                continue;
            };
            let tx = self.store().get_tx(tx_id).await?;
            if tx.status.is_terminal() {
                settled_rows.push(tx_id);
            }
        }
        settled_rows.extend(self.store().batches_with_open_transfers(1000).await?);
        let mut applied = 0;
        for tx_id in settled_rows {
            match self.on_tx_outcome(tx_id).await? {
                OutcomeApplied::Applied(_) => applied += 1,
                OutcomeApplied::Batch { settled, resent } => applied += settled + resent,
                OutcomeApplied::Ignored | OutcomeApplied::InProgress => {}
            }
        }
        Ok(applied)
    }

    // ---------------------------------------------------------------- chain events (indexer)

    /// Applies unprocessed chain events: a `PaymentReclaimed` becomes `ReclaimObserved` (+
    /// `payment.reclaimed`); a `ReserveDeposit` is credited to the merchant it came from; events of our own actions were already confirmed by their
    /// transactions and are just marked processed. Each event is marked processed in the same
    /// SQL transaction as the transition it causes. Returns how many events were handled.
    pub async fn process_events(&self) -> Result<usize, EngineError> {
        let events = self
            .store()
            .unprocessed_events(self.inner.config.chain_id, BATCH)
            .await?;
        let n = events.len();
        for event in events {
            self.process_event(&event).await?;
        }
        Ok(n)
    }

    async fn process_event(&self, event: &ChainEvent) -> Result<(), EngineError> {
        if event.event_name == crate::store::DEPOSIT_EVENT {
            return self.process_deposit(event).await;
        }
        let payment = match event.payment_hash {
            Some(hash) => self.store().payment_by_hash(hash).await?,
            None => None,
        };
        let (Some(payment), "PaymentReclaimed") = (payment, event.event_name.as_str()) else {
            self.store().mark_event_processed(event.id).await?;
            return Ok(());
        };
        let span = tracing::info_span!("chain_event", event = %event.event_name, payment_id = %payment.id, payment_hash = %payment.payment_hash, request_id = payment.request_id.as_deref().unwrap_or(""));
        async {
            let amount = event.amount.unwrap_or_else(|| payment.amounts.held());
            let reclaim = PaymentEvent::ReclaimObserved { amount };
            for _ in 0..RETRIES {
                let current = self.store().get_payment(payment.id).await?;
                let mut tx = self.store().begin().await?;
                let result = tx
                    .transition_payment(
                        current.id,
                        current.version,
                        &reclaim,
                        TransitionExtras {
                            webhook: webhook_for(&reclaim, &current, None),
                            ..Default::default()
                        },
                    )
                    .await;
                match result {
                    Ok(t) => {
                        tx.mark_event_processed(event.id).await?;
                        tx.commit().await?;
                        tracing::info!(status = %t.payment.status, "reclaim observed");
                        self.inner.waiters.wake(current.id);
                        return Ok(());
                    }
                    Err(StoreError::VersionMismatch { .. }) => {
                        tx.rollback().await?;
                        continue;
                    }
                    Err(StoreError::IllegalTransition(e)) => {
                        // Already reflected (e.g. reconciled from paymentState): nothing to do.
                        tx.rollback().await?;
                        tracing::warn!(error = %e, "reclaim event not applicable");
                        self.store().mark_event_processed(event.id).await?;
                        return Ok(());
                    }
                    Err(e) => {
                        tx.rollback().await?;
                        return Err(e.into());
                    }
                }
            }
            Err(EngineError::Store(StoreError::VersionMismatch {
                id: payment.id,
                expected: payment.version,
                actual: None,
            }))
        }
        .instrument(span)
        .await
    }
}

/// The amount an outbox row asked for (`request.amount`).
pub(super) fn requested_amount(tx: &ChainTx) -> Option<Amount> {
    tx.request.get("amount")?.as_str()?.parse().ok()
}

/// The `*Confirmed` event of a successful transaction; `None` for kinds that carry no payment
/// outcome (`transfer`, `approve`, `delegate`: rows without a payment; `execute`: its members
/// carry the outcomes).
pub(super) fn confirmed(tx: &ChainTx, payment: &Payment) -> Option<PaymentEvent> {
    let amount = requested_amount(tx);
    Some(match tx.kind {
        TxKind::Authorize => PaymentEvent::AuthorizeConfirmed {
            amount: amount.unwrap_or(payment.amount),
        },
        TxKind::Charge => PaymentEvent::ChargeConfirmed {
            amount: amount.unwrap_or(payment.amount),
        },
        TxKind::Capture | TxKind::CaptureBatch => PaymentEvent::CaptureConfirmed {
            amount: amount.unwrap_or(payment.amounts.capturable()),
        },
        TxKind::Void | TxKind::VoidBatch => PaymentEvent::VoidConfirmed {
            amount: payment.amounts.held(),
        },
        TxKind::Refund => PaymentEvent::RefundConfirmed {
            amount: amount.unwrap_or(0),
        },
        TxKind::NonceFill => PaymentEvent::AuthorizeFailed {
            code: "nonce_fill".into(),
        },
        TxKind::Transfer | TxKind::Approve | TxKind::Execute | TxKind::Delegate => return None,
    })
}

/// The `*Failed` event of a transaction kind; `None` for kinds that carry no payment outcome.
pub(super) fn failed(kind: TxKind, code: String) -> Option<PaymentEvent> {
    Some(match kind {
        TxKind::Authorize | TxKind::NonceFill => PaymentEvent::AuthorizeFailed { code },
        TxKind::Charge => PaymentEvent::ChargeFailed { code },
        TxKind::Capture | TxKind::CaptureBatch => PaymentEvent::CaptureFailed { code },
        TxKind::Void | TxKind::VoidBatch => PaymentEvent::VoidFailed { code },
        TxKind::Refund => PaymentEvent::RefundFailed { code },
        TxKind::Transfer | TxKind::Approve | TxKind::Execute | TxKind::Delegate => return None,
    })
}

/// A stable code from the relayer's revert reason: the escrow custom error name when the reason
/// is (or contains) its ABI data or its name; `reverted` otherwise.
pub fn revert_code(reason: Option<&str>) -> String {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return "reverted".into();
    };
    let hex_part = reason.rsplit(' ').next().unwrap_or(reason);
    if let Some(stripped) = hex_part.strip_prefix("0x")
        && let Ok(data) = hex::decode(stripped)
        && let Some(name) = decode_escrow_error(&data)
    {
        return name;
    }
    // A custom error name as the relayer may have decoded it (`Name(args…)`).
    let name: String = reason
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.starts_with(|c: char| c.is_ascii_uppercase()) {
        name
    } else {
        "reverted".into()
    }
}

/// What an abandoned transaction did, judged by `paymentState` (the ground truth); `None` for
/// kinds that carry no payment outcome.
pub(super) fn from_chain_state(
    tx: &ChainTx,
    payment: &Payment,
    chain: &ChainState,
) -> Option<PaymentEvent> {
    let a = &payment.amounts;
    let abandoned = || "abandoned".to_owned();
    Some(match tx.kind {
        TxKind::Authorize | TxKind::Charge | TxKind::NonceFill => {
            if chain.has_collected && chain.capturable + chain.refundable > 0 {
                return confirmed(tx, payment);
            } else {
                return failed(tx.kind, abandoned());
            }
        }
        TxKind::Capture | TxKind::CaptureBatch => match requested_amount(tx) {
            Some(x) if chain.refundable >= a.refundable() + x => {
                PaymentEvent::CaptureConfirmed { amount: x }
            }
            _ => PaymentEvent::CaptureFailed { code: abandoned() },
        },
        TxKind::Void | TxKind::VoidBatch => {
            if chain.capturable == 0 && a.held() > 0 {
                PaymentEvent::VoidConfirmed { amount: a.held() }
            } else {
                PaymentEvent::VoidFailed { code: abandoned() }
            }
        }
        TxKind::Refund => match requested_amount(tx) {
            Some(x) if chain.refundable + x <= a.refundable() => {
                PaymentEvent::RefundConfirmed { amount: x }
            }
            _ => PaymentEvent::RefundFailed { code: abandoned() },
        },
        TxKind::Transfer | TxKind::Approve | TxKind::Execute | TxKind::Delegate => return None,
    })
}

/// The merchant webhook an event announces, with the request id and the payment's state.
pub(super) fn webhook_for(
    event: &PaymentEvent,
    payment: &Payment,
    tx: Option<&ChainTx>,
) -> Option<NewWebhookEvent> {
    use x402_escrow_sdk::Amount as Units;
    use x402_escrow_sdk::webhooks::{PaymentAmounts, PaymentEventData, WebhookEventType};

    let event_type = event.webhook_type()?;
    let mut amounts = payment.amounts;
    let status = payment.status.apply(event, &mut amounts).ok()?;
    let amount = match event {
        PaymentEvent::AuthorizeConfirmed { amount }
        | PaymentEvent::ChargeConfirmed { amount }
        | PaymentEvent::CaptureConfirmed { amount }
        | PaymentEvent::VoidConfirmed { amount }
        | PaymentEvent::RefundConfirmed { amount }
        | PaymentEvent::ReclaimObserved { amount } => Some(*amount),
        _ => None,
    };
    let data = PaymentEventData {
        payment_id: payment.id.to_string(),
        request_id: payment.request_id.clone().unwrap_or_default(),
        payment_hash: payment.payment_hash,
        status: status.as_str().to_owned(),
        amount: amount.map(Units::from),
        amounts: PaymentAmounts {
            authorized: Units::from(amounts.authorized),
            captured: Units::from(amounts.captured),
            refunded: Units::from(amounts.refunded),
            capturable: Units::from(amounts.capturable()),
            refundable: Units::from(amounts.refundable()),
        },
        error_code: event.error_code().map(str::to_owned),
        transaction_hash: tx.and_then(|t| t.mined_tx_hash),
        idempotency_key: payment.idempotency_key.clone(),
    };
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default(),
    )
    .unwrap_or(i64::MAX);
    crate::webhooks::new_webhook_event(WebhookEventType::from(event_type), now_ms, data).ok()
}

/// The outbox rows whose outcome a task of this process is applying now (see
/// [`Engine::on_tx_outcome`]).
#[derive(Debug, Default)]
pub(super) struct Applying {
    rows: std::sync::Mutex<std::collections::HashSet<Uuid>>,
}

/// A task's turn at applying one row's outcome; given back on drop.
pub(super) struct Turn<'a> {
    applying: &'a Applying,
    row: Uuid,
}

impl Applying {
    /// The turn at `row`, unless another task holds it.
    pub(super) fn enter(&self, row: Uuid) -> Option<Turn<'_>> {
        // The set holds plain ids, valid whatever a panicking holder was doing.
        let mut rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // `then`, not `then_some`: a turn built for a row already held would be dropped here,
        // taking the lock this guard holds (and giving back another task's turn).
        rows.insert(row).then(|| Turn {
            applying: self,
            row,
        })
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.applying
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.row);
    }
}

#[cfg(test)]
mod tests {
    use x402_escrow_bindings::contracts::auth_capture_escrow::AuthCaptureEscrow as Escrow;

    use super::*;

    #[test]
    fn revert_codes() {
        let data = Escrow::AuthCaptureEscrowErrors::ZeroAmount(Escrow::ZeroAmount {});
        let hex_data = format!(
            "0x{}",
            hex::encode(alloy::sol_types::SolInterface::abi_encode(&data))
        );
        assert_eq!(revert_code(Some(&hex_data)), "ZeroAmount");
        assert_eq!(
            revert_code(Some(&format!("execution reverted: {hex_data}"))),
            "ZeroAmount"
        );
        assert_eq!(
            revert_code(Some("AfterAuthorizationExpiry(1, 2)")),
            "AfterAuthorizationExpiry"
        );
        assert_eq!(revert_code(Some("")), "reverted");
        assert_eq!(revert_code(None), "reverted");
        assert_eq!(revert_code(Some("0xdeadbeef")), "reverted");
    }

    #[test]
    fn one_turn_per_row_until_it_is_given_back() {
        let applying = Applying::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let first = applying.enter(a).expect("a is free");
        assert!(applying.enter(a).is_none(), "a is held");
        // A refused entry neither blocks nor gives back the holder's turn.
        assert!(applying.enter(a).is_none(), "a is still held");
        let other = applying.enter(b).expect("b is another row");
        drop(first);
        let again = applying.enter(a).expect("a was given back");
        drop((again, other));
        assert!(applying.rows.lock().unwrap().is_empty());
    }
}
