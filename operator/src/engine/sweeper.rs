//! The timers: auto-void of holds past their merchant's capture deadline, `Expired` past the
//! authorization expiry, and the loop ([`Engine::run`]) that drives them with outcomes and events.

use std::time::Duration;

use tracing::Instrument;

use super::{BATCH, Engine, EngineError};
use crate::lifecycle::PaymentEvent;
use crate::store::{StoreError, TransitionExtras};

impl Engine {
    /// The sweeps: auto-void holds whose merchant capture deadline passed (store clock), then
    /// mark `Expired` what passed `authorizationExpiry` (chain clock). Returns (voids queued,
    /// payments expired).
    pub async fn tick(&self) -> Result<(usize, usize), EngineError> {
        let mut voids = 0;
        if self.inner.config.auto_void {
            let due = self
                .store()
                .payments_due_for_auto_void(self.store().now_ms(), BATCH)
                .await?;
            for payment in due {
                let span = tracing::info_span!("auto_void", payment_id = %payment.id, payment_hash = %payment.payment_hash, request_id = payment.request_id.as_deref().unwrap_or(""));
                let Ok((payment, outbox)) = self.void_outbox(payment) else {
                    continue;
                };
                let result = self
                    .store()
                    .transition_payment(
                        payment.id,
                        payment.version,
                        &PaymentEvent::VoidRequested,
                        TransitionExtras {
                            outbox: Some(outbox),
                            ..Default::default()
                        },
                    )
                    .instrument(span)
                    .await;
                match result {
                    Ok(_) => voids += 1,
                    // Someone acted on it meanwhile; the next sweep looks again.
                    Err(
                        e @ (StoreError::VersionMismatch { .. } | StoreError::IllegalTransition(_)),
                    ) => {
                        tracing::debug!(error = %e, "auto-void skipped");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if voids > 0 {
                self.inner.relayer.notify_one();
            }
        }
        let now = self
            .inner
            .verifier
            .chain_now()
            .await
            .map_err(|e| EngineError::Chain(e.to_string()))?;
        let mut expired = 0;
        for payment in self
            .store()
            .payments_past_authorization_expiry(now, BATCH)
            .await?
        {
            match self
                .store()
                .transition_payment(
                    payment.id,
                    payment.version,
                    &PaymentEvent::Expired,
                    TransitionExtras::default(),
                )
                .await
            {
                Ok(_) => expired += 1,
                Err(
                    e @ (StoreError::VersionMismatch { .. } | StoreError::IllegalTransition(_)),
                ) => {
                    tracing::debug!(error = %e, "expiry skipped");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((voids, expired))
    }

    /// Runs outcomes, events and sweeps every `interval` until `shutdown` turns true.
    pub async fn run(&self, interval: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.process_outcomes().await {
                tracing::warn!(error = %e, "processing outcomes failed");
            }
            if let Err(e) = self.process_events().await {
                tracing::warn!(error = %e, "processing chain events failed");
            }
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "sweep failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}
