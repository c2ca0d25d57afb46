//! The owner's approvals (approve, reject, the owner's webhook) and a key's usage.

use super::*;

impl Wallet {
    /// The owner approves a payment waiting for approval: it becomes `reserved`, and the
    /// caller's next request with the same `Idempotency-Key` signs and sends it.
    pub async fn approve(&self, id: &str) -> Result<PaymentRow, WalletError> {
        self.decide(id, State::Reserved, "approved").await
    }

    /// The owner rejects a payment waiting for approval: nothing is signed and its amount
    /// returns to the budget.
    pub async fn reject(&self, id: &str) -> Result<PaymentRow, WalletError> {
        self.decide(id, State::Rejected, "rejected").await
    }

    pub(super) async fn decide(
        &self,
        id: &str,
        to: State,
        decision: &str,
    ) -> Result<PaymentRow, WalletError> {
        let mut tx = self.inner.store.begin().await?;
        let row = tx
            .payment(id)
            .await?
            .ok_or_else(|| WalletError::NotFound(format!("payment {id}")))?;
        if row.state != State::PendingApproval {
            tx.rollback().await?;
            return Err(WalletError::Conflict {
                code: "not_pending",
                message: format!(
                    "payment {id} is {}, not pending_approval",
                    row.state.as_str()
                ),
                payment_id: Some(id.to_owned()),
            });
        }
        let mut next = row.clone();
        next.state = to;
        next.updated_at = now_ms();
        if to == State::Rejected {
            next.rule = Some("approval_threshold".to_owned());
            next.detail = Some("rejected by the owner".to_owned());
        }
        tx.update_payment(&next, State::PendingApproval).await?;
        tx.audit(&audit_entry(
            "owner",
            Some(&row.key_id),
            Some(id),
            decision,
            Some("approval_threshold"),
            format!("{} of {}", row.amount, row.url),
        ))
        .await?;
        tx.commit().await?;
        self.inner.metrics.decision(decision, "approval_threshold");
        Ok(next)
    }

    /// Tells the owner's webhook that a payment waits (in the background; failures are
    /// logged, the payment waits either way).
    pub(super) fn notify_owner(&self, row: &PaymentRow) {
        let Some(url) = self.inner.config.owner_webhook.clone() else {
            return;
        };
        let body = serde_json::json!({
            "type": "payment.pending_approval",
            "payment": row.view(),
        });
        let http = self.inner.http.clone();
        let id = row.id.clone();
        tokio::spawn(async move {
            match http.post(url).json(&body).send().await {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(payment_id = %id, "owner notified");
                }
                Ok(response) => {
                    tracing::warn!(payment_id = %id, status = %response.status(), "owner webhook refused");
                }
                Err(error) => tracing::warn!(payment_id = %id, %error, "owner webhook failed"),
            }
        });
    }

    /// What a key's rules count now.
    pub async fn usage(&self, key: &KeyRow) -> Result<KeyUsage, WalletError> {
        let payments = self.inner.store.key_payments(&key.id).await?;
        let counting: Vec<PaymentRow> = payments
            .iter()
            .filter(|p| p.state.counts())
            .cloned()
            .collect();
        let (day, total) = rules::spent(&counting, now_ms());
        let add = |a: Amount, b: Amount| Amount::new(a.get().saturating_add(b.get()));
        let mut in_flight = Amount::ZERO;
        let mut returned = Amount::ZERO;
        let mut states = BTreeMap::new();
        for p in &payments {
            *states.entry(p.state.as_str().to_owned()).or_insert(0u64) += 1;
            if p.state.in_flight() {
                in_flight = add(in_flight, p.counted());
            }
            if matches!(p.state, State::Voided | State::Refunded | State::Expired) {
                returned = add(returned, p.returned);
            }
        }
        let remaining = |limit: Option<Amount>, spent: Amount| {
            limit.map(|l| Amount::new(l.get().saturating_sub(spent.get())))
        };
        Ok(KeyUsage {
            key_id: key.id.clone(),
            spent_24h: day,
            spent_total: total,
            in_flight,
            returned,
            payments: states,
            remaining_24h: remaining(key.rules.daily_cap, day),
            remaining_total: remaining(key.rules.total_budget, total),
        })
    }
}
