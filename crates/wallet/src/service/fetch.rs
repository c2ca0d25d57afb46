//! `POST /v1/fetch`: request, pay the 402 within the key's rules, send, settle from the receipt.

use super::*;

impl Wallet {
    /// `POST /v1/fetch`.
    pub async fn fetch(
        &self,
        key: &KeyRow,
        idempotency_key: Option<String>,
        request: FetchRequest,
    ) -> Result<FetchOutcome, WalletError> {
        if let Err(refusal) = rules::check_key(key, now_secs()) {
            return Err(self.refuse_key(key, refusal).await);
        }
        let prepared = Prepared::new(&request)?;
        let url = prepared.url.to_string();
        let meta = Meta {
            url: &url,
            method: prepared.method.as_str(),
            hash: &prepared.hash,
        };
        if let Err(refusal) = rules::check_url(&key.rules, &prepared.url) {
            return Err(self.record_refusal(key, &meta, None, refusal).await);
        }
        if let Err(error) =
            guard::check_destination(&key.rules, &prepared.url, &self.inner.pins).await
        {
            return Err(match error {
                WalletError::Refused { refusal, .. } => {
                    self.record_refusal(key, &meta, None, refusal).await
                }
                other => other,
            });
        }
        let idempotency_key = idempotency_key.unwrap_or_else(new_id);
        if let Some(existing) = self
            .inner
            .store
            .payment_by_idempotency(&key.id, &idempotency_key)
            .await?
        {
            return self.resume_fetch(key, existing, &prepared).await;
        }
        let response = self
            .send(&prepared, None)
            .await
            .map_err(|e| WalletError::Upstream {
                message: e.to_string(),
                payment_id: None,
            })?;
        if response.status() != StatusCode::PAYMENT_REQUIRED {
            self.inner.metrics.fetch("free");
            return Ok(FetchOutcome::Done(Box::new(
                self.answer(response, None, None).await?,
            )));
        }
        let challenge = read_challenge(response).await?;
        let candidates = self.payable(key, &meta, &challenge).await?;
        match self
            .reserve(key, &meta, &idempotency_key, candidates)
            .await?
        {
            Reserve::Exists(existing) => self.resume_fetch(key, *existing, &prepared).await,
            Reserve::Made(row, option) => {
                if row.state == State::PendingApproval {
                    self.notify_owner(&row);
                    return Ok(FetchOutcome::Pending(Box::new(pending(*row))));
                }
                let span = tracing::info_span!("wallet_payment", payment_id = %row.id, payment_hash = tracing::field::Empty);
                async {
                    let signed = self.sign_row(key, *row, &challenge, &option).await?;
                    self.deliver(signed, &prepared).await
                }
                .instrument(span)
                .await
            }
        }
    }

    /// A fetch whose idempotency key is already in the ledger.
    pub(super) async fn resume_fetch(
        &self,
        key: &KeyRow,
        row: PaymentRow,
        prepared: &Prepared,
    ) -> Result<FetchOutcome, WalletError> {
        if row.request_hash != prepared.hash {
            return Err(WalletError::Conflict {
                code: "idempotency_conflict",
                message: "this Idempotency-Key was used for another request".to_owned(),
                payment_id: Some(row.id),
            });
        }
        let span = tracing::info_span!("wallet_payment", payment_id = %row.id, payment_hash = tracing::field::Empty);
        async {
            match row.state {
                State::PendingApproval => Ok(FetchOutcome::Pending(Box::new(pending(row)))),
                State::Rejected => Err(rejected(row)),
                State::Signed => self.deliver(row, prepared).await,
                State::Reserved => {
                    let response =
                        self.send(prepared, None)
                            .await
                            .map_err(|e| WalletError::Upstream {
                                message: e.to_string(),
                                payment_id: Some(row.id.clone()),
                            })?;
                    if response.status() != StatusCode::PAYMENT_REQUIRED {
                        self.release(&row, "the resource no longer asks for payment")
                            .await?;
                        return Ok(FetchOutcome::Done(Box::new(
                            self.answer(response, None, None).await?,
                        )));
                    }
                    let challenge = read_challenge(response).await?;
                    let option = self.matching_offer(key, &row, &challenge).await?;
                    let signed = self.sign_row(key, row, &challenge, &option).await?;
                    self.deliver(signed, prepared).await
                }
                _ => Err(completed(&row)),
            }
        }
        .instrument(span)
        .await
    }

    /// The offer of a new challenge that a reserved payment may be signed for: same scheme,
    /// network, token, payee and amount, still within the key's rules.
    pub(super) async fn matching_offer(
        &self,
        key: &KeyRow,
        row: &PaymentRow,
        challenge: &AnyPaymentRequired,
    ) -> Result<PaymentOption, WalletError> {
        let found = self.candidates(key, challenge).ok().and_then(|candidates| {
            candidates.into_iter().find(|o| {
                let r = &o.requirements;
                Some(&r.scheme) == row.scheme.as_ref()
                    && Some(r.network) == row.network
                    && Some(r.asset) == row.asset
                    && Some(r.pay_to) == row.payee
                    && r.amount == row.amount
            })
        });
        match found {
            Some(option) => Ok(option),
            None => {
                self.release(row, "the resource's offer changed").await?;
                Err(WalletError::Conflict {
                    code: "offer_changed",
                    message: "the resource no longer offers what was reserved; the reservation \
                              was released, retry with a new Idempotency-Key"
                        .to_owned(),
                    payment_id: Some(row.id.clone()),
                })
            }
        }
    }

    /// [`Wallet::candidates`], with a refusal by rule recorded (audit log, refused row) and
    /// returned as the error.
    pub(super) async fn payable(
        &self,
        key: &KeyRow,
        meta: &Meta<'_>,
        challenge: &AnyPaymentRequired,
    ) -> Result<Vec<PaymentOption>, WalletError> {
        match self.candidates(key, challenge) {
            Ok(candidates) => Ok(candidates),
            Err(Ok((option, refusal))) => {
                Err(self.record_refusal(key, meta, Some(&option), refusal).await)
            }
            Err(Err(error)) => Err(error),
        }
    }

    /// The offers this wallet may pay, best first (`auth-capture` before `exact`, then
    /// cheaper); or the rule that refused the best payable offer; or why none is payable.
    // The refused offer and the error are the cold path, matched once by the caller.
    #[allow(clippy::type_complexity, clippy::result_large_err)]
    pub(super) fn candidates(
        &self,
        key: &KeyRow,
        challenge: &AnyPaymentRequired,
    ) -> Result<Vec<PaymentOption>, Result<(PaymentOption, Refusal), WalletError>> {
        let Some(signer) = self.inner.buyers.get(&key.buyer) else {
            return Err(Err(WalletError::BuyerUnavailable(key.buyer.clone())));
        };
        let now = unix_now();
        let mut payable = Vec::new();
        let mut unpayable = Vec::new();
        for option in offers(challenge) {
            match check_payable(
                &option.requirements,
                signer.address(),
                signer.chain_id(),
                now,
                &self.inner.registry,
            ) {
                Ok(()) => payable.push(option),
                Err(reason) => unpayable.push(format!(
                    "accepts[{}] ({}): {reason}",
                    option.index, option.requirements.scheme
                )),
            }
        }
        payable.sort_by_key(PaymentOption::rank);
        let mut refused = None;
        let mut allowed = Vec::new();
        for option in payable {
            match rules::check_offer(&key.rules, &option) {
                Ok(()) => allowed.push(option),
                Err(refusal) => {
                    refused.get_or_insert((option, refusal));
                }
            }
        }
        if !allowed.is_empty() {
            return Ok(allowed);
        }
        match refused {
            Some(refusal) => Err(Ok(refusal)),
            None if unpayable.is_empty() => Err(Err(WalletError::NoPayableOffer(
                "the challenge lists no offer".to_owned(),
            ))),
            None => Err(Err(WalletError::NoPayableOffer(unpayable.join("; ")))),
        }
    }

    /// Reserves the first candidate the key's sums allow, in one transaction that holds the
    /// key (SQLite's write lock, PostgreSQL's row lock): concurrent reservations of one key
    /// run one after the other, each seeing the others' amounts.
    pub(super) async fn reserve(
        &self,
        key: &KeyRow,
        meta: &Meta<'_>,
        idempotency_key: &str,
        candidates: Vec<PaymentOption>,
    ) -> Result<Reserve, WalletError> {
        let mut tx = self.inner.store.begin().await?;
        let locked = tx
            .lock_key(&key.id)
            .await?
            .ok_or_else(|| WalletError::NotFound(format!("key {}", key.id)))?;
        if let Err(refusal) = rules::check_key(&locked, now_secs()) {
            tx.rollback().await?;
            return Err(self.refuse_key(key, refusal).await);
        }
        let counting = tx.counting_payments(&key.id).await?;
        let now = now_ms();
        let mut first_refusal = None;
        for option in candidates {
            match rules::check_amounts(&locked.rules, option.requirements.amount, &counting, now) {
                Ok(()) => {
                    let state = if rules::needs_approval(&locked.rules, option.requirements.amount)
                    {
                        State::PendingApproval
                    } else {
                        State::Reserved
                    };
                    let row = new_row(key, meta, idempotency_key, Some(&option), state);
                    if let Err(error) = tx.insert_payment(&row).await {
                        tx.rollback().await?;
                        if error.is_unique_violation()
                            && let Some(existing) = self
                                .inner
                                .store
                                .payment_by_idempotency(&key.id, idempotency_key)
                                .await?
                        {
                            return Ok(Reserve::Exists(Box::new(existing)));
                        }
                        return Err(error.into());
                    }
                    tx.audit(&audit_entry(
                        &format!("key:{}", key.id),
                        Some(&key.id),
                        Some(&row.id),
                        state.as_str(),
                        None,
                        format!(
                            "{} {} of {} to {} for {}",
                            option.requirements.scheme,
                            option.requirements.amount,
                            option.requirements.asset,
                            option.requirements.pay_to,
                            meta.url
                        ),
                    ))
                    .await?;
                    tx.commit().await?;
                    self.inner.metrics.decision(state.as_str(), "");
                    tracing::info!(payment_id = %row.id, state = state.as_str(), amount = %row.amount, "reserved");
                    return Ok(Reserve::Made(Box::new(row), Box::new(option)));
                }
                Err(refusal) => {
                    first_refusal.get_or_insert((option, refusal));
                }
            }
        }
        let Some((option, refusal)) = first_refusal else {
            tx.rollback().await?;
            return Err(WalletError::NoPayableOffer("no candidate".to_owned()));
        };
        let row = self.refused_row(key, meta, Some(&option), &refusal);
        tx.insert_payment(&row).await?;
        tx.audit(&refusal_audit(key, &row, &refusal)).await?;
        tx.commit().await?;
        self.inner.metrics.decision("refused", refusal.rule);
        tracing::info!(payment_id = %row.id, rule = refusal.rule, "refused");
        Err(WalletError::Refused {
            refusal,
            payment_id: Some(row.id),
        })
    }

    /// Releases a reservation that was never signed (or whose signature never left).
    pub(super) async fn release(&self, row: &PaymentRow, why: &str) -> Result<(), WalletError> {
        let mut released = row.clone();
        released.state = State::Failed;
        released.detail = Some(why.to_owned());
        released.updated_at = now_ms();
        let mut tx = self.inner.store.begin().await?;
        if tx.update_payment(&released, row.state).await? {
            tx.audit(&audit_entry(
                "wallet",
                Some(&row.key_id),
                Some(&row.id),
                "released",
                None,
                why.to_owned(),
            ))
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Signs a reserved payment and persists the header before anything is sent.
    pub(super) async fn sign_row(
        &self,
        key: &KeyRow,
        row: PaymentRow,
        challenge: &AnyPaymentRequired,
        option: &PaymentOption,
    ) -> Result<PaymentRow, WalletError> {
        let Some(signer) = self.inner.buyers.get(&key.buyer) else {
            self.release(&row, "the buyer key is not loaded").await?;
            return Err(WalletError::BuyerUnavailable(key.buyer.clone()));
        };
        let signed = match sign_offer(
            challenge,
            option,
            signer,
            &self.inner.registry,
            unix_now(),
            &row.id,
        ) {
            Ok(signed) => signed,
            Err(error) => {
                self.release(&row, "signing failed").await?;
                return Err(WalletError::Internal(format!("signing: {error}")));
            }
        };
        let mut next = row.clone();
        next.state = State::Signed;
        next.header_name = Some(signed.header_name.to_owned());
        next.header_value = Some(signed.header_value);
        next.payment_hash = signed.details.payment_hash;
        next.escrow = signed.details.escrow;
        next.valid_before = signed
            .details
            .valid_before
            .and_then(|v| i64::try_from(v).ok());
        next.random = Some(signed.random);
        next.payer = Some(signed.payer);
        next.updated_at = now_ms();
        if let Some(hash) = next.payment_hash {
            tracing::Span::current().record("payment_hash", tracing::field::display(hash));
        }
        let mut tx = self.inner.store.begin().await?;
        if !tx.update_payment(&next, State::Reserved).await? {
            // Another request signed it first: use what it persisted.
            tx.rollback().await?;
            let current = self
                .inner
                .store
                .payment(&row.id)
                .await?
                .ok_or_else(|| WalletError::NotFound(format!("payment {}", row.id)))?;
            return match current.state {
                State::Signed => Ok(current),
                _ => Err(completed(&current)),
            };
        }
        tx.audit(&audit_entry(
            &format!("key:{}", key.id),
            Some(&key.id),
            Some(&row.id),
            "signed",
            None,
            format!(
                "{} header for {} (valid before {:?})",
                signed.header_name, row.url, next.valid_before
            ),
        ))
        .await?;
        tx.commit().await?;
        self.inner.metrics.decision("signed", "");
        self.crash_point(CrashPoint::AfterSign)?;
        Ok(next)
    }

    /// Sends the resource request with the persisted payment (the same bytes on every retry),
    /// settles the ledger from the answer, and answers the caller.
    pub(super) async fn deliver(
        &self,
        row: PaymentRow,
        prepared: &Prepared,
    ) -> Result<FetchOutcome, WalletError> {
        let (Some(name), Some(value)) = (row.header_name.clone(), row.header_value.clone()) else {
            return Err(WalletError::Internal(format!(
                "payment {} is signed without a header",
                row.id
            )));
        };
        let retry = self.inner.config.retry;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let may_retry = attempts <= retry.max_retries;
            let response = match self.send(prepared, Some((&name, &value, &row.id))).await {
                Ok(response) => response,
                Err(error) if may_retry => {
                    tracing::warn!(%error, attempts, "paid request failed; resending the same payment");
                    tokio::time::sleep(backoff(&retry, attempts)).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, attempts, "paid request failed; the payment stays reserved");
                    self.inner.metrics.fetch("upstream_error");
                    return Err(WalletError::Upstream {
                        message: format!(
                            "{error}; the signed payment stays reserved: retry with the same \
                             Idempotency-Key to resend it"
                        ),
                        payment_id: Some(row.id),
                    });
                }
            };
            let status = response.status();
            let receipt = read_receipt(response.headers());
            let disposition = classify(status, receipt.as_ref());
            if disposition == Disposition::Retry && may_retry {
                tracing::warn!(%status, attempts, "resending the same payment");
                tokio::time::sleep(backoff(&retry, attempts)).await;
                continue;
            }
            let settled = self
                .settle(&row, status, receipt.as_ref(), disposition)
                .await?;
            self.inner.metrics.fetch("paid");
            return Ok(FetchOutcome::Done(Box::new(
                self.answer(response, receipt.as_ref(), Some(settled.view()))
                    .await?,
            )));
        }
    }

    /// Records what the answer to a paid request says about the payment.
    pub(super) async fn settle(
        &self,
        row: &PaymentRow,
        status: StatusCode,
        receipt: Option<&SettleResponse>,
        disposition: Disposition,
    ) -> Result<PaymentRow, WalletError> {
        let mut next = row.clone();
        next.http_status = Some(i64::from(status.as_u16()));
        next.receipt = receipt.and_then(|r| serde_json::to_string(r).ok());
        if let Some(tx) = receipt.and_then(|r| r.transaction) {
            next.tx_hash = Some(tx);
        }
        let info = receipt.map(ReceiptInfo::from_receipt).unwrap_or_default();
        match disposition {
            Disposition::Settled {
                status: ledger,
                void_expected,
            } => match ledger {
                PaymentStatus::Voided | PaymentStatus::Reclaimed | PaymentStatus::Failed => {
                    next.state = State::Voided;
                    next.returned = next.amount;
                }
                PaymentStatus::Refunded { amount } => {
                    // A metered capture that released the rest stays `captured`.
                    next.state = if info.status.as_deref() == Some("captured") {
                        State::Captured
                    } else {
                        State::Refunded
                    };
                    next.returned = amount.min(next.amount);
                }
                PaymentStatus::Paid | PaymentStatus::Reserved => {
                    next.state = match info.status.as_deref() {
                        Some("authorized") => State::Authorized,
                        Some("captured") => State::Captured,
                        _ if void_expected => State::Authorized,
                        _ if next.payment_hash.is_some() && receipt.is_none() => State::Authorized,
                        _ => State::Captured,
                    };
                }
            },
            Disposition::Rejected => {
                next.state = State::Failed;
                next.detail = Some(format!(
                    "the resource refused the payment (HTTP {status}){}",
                    receipt
                        .and_then(|r| r.error_reason.clone())
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ));
            }
            Disposition::Retry | Disposition::Unknown => {
                next.detail = Some(format!(
                    "outcome unknown after HTTP {status}; reconcile will settle it"
                ));
            }
        }
        next.updated_at = now_ms();
        let mut tx = self.inner.store.begin().await?;
        if !tx.update_payment(&next, row.state).await? {
            tx.rollback().await?;
            return self
                .inner
                .store
                .payment(&row.id)
                .await?
                .ok_or_else(|| WalletError::NotFound(format!("payment {}", row.id)));
        }
        tx.audit(&audit_entry(
            "wallet",
            Some(&row.key_id),
            Some(&row.id),
            "settled",
            None,
            format!(
                "HTTP {status}: {} (returned {})",
                next.state.as_str(),
                next.returned
            ),
        ))
        .await?;
        tx.commit().await?;
        tracing::info!(payment_id = %row.id, state = next.state.as_str(), %status, "settled");
        Ok(next)
    }

    /// Sends the caller's request, with a payment when given (`name`, `value`, payment id).
    pub(super) async fn send(
        &self,
        prepared: &Prepared,
        payment: Option<(&str, &str, &str)>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut headers = prepared.headers.clone();
        if let Some((name, value, id)) = payment
            && let (Ok(name), Ok(value), Ok(id)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
                HeaderValue::from_str(&format!("\"{id}\"")),
            )
        {
            headers.insert(name, value);
            headers.insert(HeaderName::from_static("idempotency-key"), id);
        }
        self.inner
            .http
            .request(prepared.method.clone(), prepared.url.clone())
            .headers(headers)
            .body(prepared.body.clone())
            .send()
            .await
    }

    /// The caller's view of a resource's answer (body read up to the limit).
    pub(super) async fn answer(
        &self,
        mut response: reqwest::Response,
        receipt: Option<&SettleResponse>,
        payment: Option<WalletPaymentView>,
    ) -> Result<FetchResponse, WalletError> {
        let status = response.status().as_u16();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let max = self.inner.config.max_response_body;
        let mut body = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| WalletError::Upstream {
                message: format!("reading the body: {e}"),
                payment_id: payment.as_ref().map(|p| p.id.clone()),
            })?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > max {
                return Err(WalletError::UpstreamTooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        let (body, body_encoding) = match String::from_utf8(body) {
            Ok(text) => (text, "text"),
            Err(e) => (BASE64.encode(e.as_bytes()), "base64"),
        };
        Ok(FetchResponse {
            status,
            headers,
            body,
            body_encoding: body_encoding.to_owned(),
            receipt: receipt.and_then(|r| serde_json::to_value(r).ok()),
            payment_id: payment.as_ref().map(|p| p.id.clone()),
            payment,
        })
    }
}
