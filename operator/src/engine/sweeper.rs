//! The timers: auto-void of holds past their merchant's capture deadline, `Expired` past the
//! authorization expiry, and the loop ([`Engine::run`]) that drives them with outcomes and events.

use std::time::Duration;

use tracing::Instrument;

use super::{BATCH, Engine, EngineError};
use crate::lifecycle::PaymentEvent;
use crate::store::{Payment, StoreError, TransitionExtras};

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
                let extras = TransitionExtras {
                    outbox: Some(outbox),
                    ..Default::default()
                };
                let event = &PaymentEvent::VoidRequested;
                if self
                    .sweep_one(&payment, event, extras, span, "auto-void skipped")
                    .await?
                {
                    voids += 1;
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
            // No span of its own (the auto-void's carries the payment's ids).
            let span = tracing::Span::none();
            let event = &PaymentEvent::Expired;
            let extras = TransitionExtras::default();
            if self
                .sweep_one(&payment, event, extras, span, "expiry skipped")
                .await?
            {
                expired += 1;
            }
        }
        Ok((voids, expired))
    }

    /// Applies a sweep's `event` to `payment` in its own transaction (the store call runs in
    /// `span`): `true` when it took effect, `false` when someone acted on the payment meanwhile
    /// (logged as `skipped`; the next sweep looks again).
    async fn sweep_one(
        &self,
        payment: &Payment,
        event: &PaymentEvent,
        extras: TransitionExtras,
        span: tracing::Span,
        skipped: &str,
    ) -> Result<bool, EngineError> {
        let result = self
            .store()
            .transition_from(payment, event, extras)
            .instrument(span)
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e @ (StoreError::VersionMismatch { .. } | StoreError::IllegalTransition(_))) => {
                tracing::debug!(error = %e, "{skipped}");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
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
