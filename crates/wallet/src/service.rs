//! The wallet's work: `fetch` (request, pay the 402 within the key's rules, settle from the
//! receipt), `sign`, approvals, usage. See the crate documentation for the design.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::Instrument as _;
use x402_escrow_sdk::buyer::receipt::{Disposition, ReceiptInfo, classify, read_receipt};
use x402_escrow_sdk::buyer::select::check_payable;
use x402_escrow_sdk::buyer::{
    PaymentOption, PaymentStatus, RetryPolicy, challenge_from_json, offers, sign_offer, unix_now,
};
use x402_escrow_sdk::facilitator::SettleResponse;
use x402_escrow_sdk::types::wallet::{
    FetchRequest, FetchResponse, KeyUsage, SignRequest, SignResponse, WalletPaymentView,
};
use x402_escrow_sdk::wire::codec::{self, AnyPaymentRequired, MAX_BODY_LEN, PAYMENT_REQUIRED};
use x402_escrow_sdk::{Amount, EscrowRegistry};

use crate::buyers::Buyers;
use crate::error::WalletError;
use crate::guard;
use crate::keys::{audit_entry, hash_token};
use crate::metrics::Metrics;
use crate::rules::{self, Refusal};
use crate::store::{KeyRow, PaymentRow, State, Store, new_id, now_ms};

/// Where a test can make the wallet "die" (the error [`WalletError::InjectedCrash`] stands for
/// the process ending there: nothing after it runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The signed payment is persisted; it has not been sent.
    AfterSign,
}

/// Settings of a wallet.
#[derive(Debug, Clone)]
pub struct WalletConfig {
    /// The owner's token (key management, approvals, the whole ledger).
    pub owner_token: String,
    /// Notified (`POST`, JSON) when a payment waits for approval.
    pub owner_webhook: Option<Url>,
    /// Largest JSON body accepted by the API.
    pub max_request_body: usize,
    /// Largest resource body returned by `/v1/fetch`.
    pub max_response_body: usize,
    /// Timeout of one request to a resource.
    pub request_timeout: Duration,
    /// Retries of a paid request (same signed bytes).
    pub retry: RetryPolicy,
    /// How often the background reconcile reads the chain.
    pub reconcile_interval: Duration,
    /// Cookies and sessions of the owner's page.
    pub owner_page: crate::owner::OwnerPageSettings,
}

impl WalletConfig {
    /// Defaults around an owner token: 1 MiB requests, 4 MiB responses, 60 s timeout, the
    /// SDK's retry policy, a reconcile every 30 s, the owner's page with
    /// plain-http cookies and 8-hour sessions.
    pub fn new(owner_token: String) -> Self {
        Self {
            owner_token,
            owner_webhook: None,
            max_request_body: 1024 * 1024,
            max_response_body: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            reconcile_interval: Duration::from_secs(30),
            owner_page: crate::owner::OwnerPageSettings::default(),
        }
    }
}

/// The result of `/v1/fetch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The resource's answer (paid or free).
    Done(Box<FetchResponse>),
    /// The payment waits for the owner's approval (retry with the same `Idempotency-Key`).
    Pending(Box<WalletPaymentView>),
}

/// The result of `/v1/sign`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutcome {
    /// The header.
    Signed(Box<SignResponse>),
    /// Waiting for approval.
    Pending(Box<WalletPaymentView>),
}

/// The wallet: cheap to clone.
#[derive(Clone)]
pub struct Wallet {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    buyers: Buyers,
    registry: EscrowRegistry,
    http: reqwest::Client,
    config: WalletConfig,
    owner_hash: [u8; 32],
    /// Non-public hosts a key named exactly (the HTTP client's resolver reads them).
    pins: guard::HostPins,
    metrics: Metrics,
    chain: Option<DynProvider>,
    crash_point: Mutex<Option<CrashPoint>>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("store", &self.inner.store)
            .field("buyers", &self.inner.buyers)
            .finish_non_exhaustive()
    }
}

/// A checked request.
struct Prepared {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Vec<u8>,
    hash: String,
}

impl Prepared {
    fn new(request: &FetchRequest) -> Result<Prepared, WalletError> {
        let method_text = request.method.as_deref().unwrap_or("GET");
        let method =
            Method::from_bytes(method_text.to_ascii_uppercase().as_bytes()).map_err(|_| {
                WalletError::invalid("invalid_method", format!("{method_text:?} is not a method"))
            })?;
        if matches!(method, Method::CONNECT | Method::TRACE) {
            return Err(WalletError::invalid(
                "invalid_method",
                format!("{method} is not allowed"),
            ));
        }
        let url = guard::parse_url(&request.url)?;
        let headers = guard::request_headers(&request.headers)?;
        let body = match (&request.body, &request.body_base64) {
            (Some(_), Some(_)) => {
                return Err(WalletError::invalid(
                    "invalid_body",
                    "give `body` or `bodyBase64`, not both".to_owned(),
                ));
            }
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(b64)) => BASE64
                .decode(b64)
                .map_err(|e| WalletError::invalid("invalid_body", format!("bodyBase64: {e}")))?,
            (None, None) => Vec::new(),
        };
        let mut hasher = Sha256::new();
        hasher.update(method.as_str());
        hasher.update([0]);
        hasher.update(url.as_str());
        for (name, value) in &request.headers {
            hasher.update([0]);
            hasher.update(name.to_ascii_lowercase());
            hasher.update([b':']);
            hasher.update(value);
        }
        hasher.update([0]);
        hasher.update(&body);
        Ok(Prepared {
            method,
            url,
            headers,
            body,
            hash: hex::encode(hasher.finalize()),
        })
    }
}

/// What a refusal or reservation records about the request.
struct Meta<'a> {
    url: &'a str,
    method: &'a str,
    hash: &'a str,
}

/// A reservation made, or the idempotency key already taken.
enum Reserve {
    Made(Box<PaymentRow>, Box<PaymentOption>),
    Exists(Box<PaymentRow>),
}

fn pending(row: PaymentRow) -> WalletPaymentView {
    row.view()
}

impl Wallet {
    /// A wallet over `store` signing with `buyers` for the escrows of `registry`.
    pub fn new(
        store: Store,
        buyers: Buyers,
        registry: EscrowRegistry,
        config: WalletConfig,
    ) -> Result<Wallet, WalletError> {
        if config.owner_token.len() < 16 {
            return Err(WalletError::invalid(
                "invalid_request",
                "the owner token must be at least 16 characters".to_owned(),
            ));
        }
        let pins = guard::HostPins::default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Connections re-check what the name resolves to (DNS rebinding; see `guard`).
            .dns_resolver(Arc::new(guard::PublicOnlyResolver::new(pins.clone())))
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| WalletError::Internal(e.to_string()))?;
        let owner_hash: [u8; 32] = Sha256::digest(config.owner_token.as_bytes()).into();
        Ok(Wallet {
            inner: Arc::new(Inner {
                store,
                buyers,
                registry,
                http,
                config,
                owner_hash,
                pins,
                metrics: Metrics::new(),
                chain: None,
                crash_point: Mutex::new(None),
            }),
        })
    }

    /// Reads `paymentState` through `provider` (the background reconcile); must be called
    /// before the wallet is cloned.
    pub fn with_chain(mut self, provider: DynProvider) -> Wallet {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.chain = Some(provider);
        }
        self
    }

    /// Arms (or clears) a crash point (tests).
    pub fn set_crash_point(&self, point: Option<CrashPoint>) {
        if let Ok(mut guard) = self.inner.crash_point.lock() {
            *guard = point;
        }
    }

    fn crash_point(&self, point: CrashPoint) -> Result<(), WalletError> {
        let armed = self
            .inner
            .crash_point
            .lock()
            .map(|g| *g == Some(point))
            .unwrap_or(false);
        if armed {
            return Err(WalletError::InjectedCrash(point));
        }
        Ok(())
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The settings.
    pub fn config(&self) -> &WalletConfig {
        &self.inner.config
    }

    /// The chain provider, when configured.
    pub fn chain(&self) -> Option<&DynProvider> {
        self.inner.chain.as_ref()
    }

    /// The loaded buyer keys.
    pub fn buyers(&self) -> &Buyers {
        &self.inner.buyers
    }

    /// Whether `token` is the owner's (constant time).
    pub fn is_owner(&self, token: &str) -> bool {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        bool::from(hash.ct_eq(&self.inner.owner_hash))
    }

    /// The payment key of a token.
    pub async fn authenticate(&self, token: &str) -> Result<KeyRow, WalletError> {
        self.inner
            .store
            .key_by_token_hash(&hash_token(token))
            .await?
            .ok_or_else(|| WalletError::Unauthorized("unknown token".to_owned()))
    }

    /// Audits and counts a refusal that has no ledger entry.
    async fn refuse_key(&self, key: &KeyRow, refusal: Refusal) -> WalletError {
        self.inner.metrics.decision("refused", refusal.rule);
        let entry = audit_entry(
            &format!("key:{}", key.id),
            Some(&key.id),
            None,
            "refused",
            Some(refusal.rule),
            refusal.message.clone(),
        );
        if let Err(error) = self.audit(entry).await {
            return error;
        }
        WalletError::refused(refusal)
    }

    async fn audit(
        &self,
        entry: x402_escrow_sdk::types::wallet::AuditEntry,
    ) -> Result<(), WalletError> {
        let mut tx = self.inner.store.begin().await?;
        tx.audit(&entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a refusal in the ledger (state `refused`, amount of the refused offer or 0) and
    /// the audit log; returns the error to answer.
    async fn record_refusal(
        &self,
        key: &KeyRow,
        meta: &Meta<'_>,
        option: Option<&PaymentOption>,
        refusal: Refusal,
    ) -> WalletError {
        let row = self.refused_row(key, meta, option, &refusal);
        let result: Result<(), WalletError> = async {
            let mut tx = self.inner.store.begin().await?;
            tx.insert_payment(&row).await?;
            tx.audit(&refusal_audit(key, &row, &refusal)).await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(error) = result {
            return error;
        }
        self.inner.metrics.decision("refused", refusal.rule);
        tracing::info!(payment_id = %row.id, rule = refusal.rule, "refused");
        WalletError::Refused {
            refusal,
            payment_id: Some(row.id),
        }
    }

    fn refused_row(
        &self,
        key: &KeyRow,
        meta: &Meta<'_>,
        option: Option<&PaymentOption>,
        refusal: &Refusal,
    ) -> PaymentRow {
        let id = new_id();
        let mut row = new_row(key, meta, &format!("refused:{id}"), option, State::Refused);
        row.id = id;
        row.rule = Some(refusal.rule.to_owned());
        row.detail = Some(refusal.message.clone());
        row
    }

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
        let candidates = match self.candidates(key, &challenge) {
            Ok(candidates) => candidates,
            Err(Ok((option, refusal))) => {
                return Err(self
                    .record_refusal(key, &meta, Some(&option), refusal)
                    .await);
            }
            Err(Err(error)) => return Err(error),
        };
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
    async fn resume_fetch(
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
    async fn matching_offer(
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

    /// The offers this wallet may pay, best first (`auth-capture` before `exact`, then
    /// cheaper); or the rule that refused the best payable offer; or why none is payable.
    // The refused offer and the error are the cold path, matched once by the caller.
    #[allow(clippy::type_complexity, clippy::result_large_err)]
    fn candidates(
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
    async fn reserve(
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
    async fn release(&self, row: &PaymentRow, why: &str) -> Result<(), WalletError> {
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
    async fn sign_row(
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
    async fn deliver(
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
    async fn settle(
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
    async fn send(
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
    async fn answer(
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

    /// `POST /v1/sign`: the payment header for a challenge the caller received.
    pub async fn sign(
        &self,
        key: &KeyRow,
        idempotency_key: Option<String>,
        request: SignRequest,
    ) -> Result<SignOutcome, WalletError> {
        if let Err(refusal) = rules::check_key(key, now_secs()) {
            return Err(self.refuse_key(key, refusal).await);
        }
        let url = guard::parse_url(&request.url)?;
        let challenge = challenge_from_json(&request.payment_required)
            .map_err(|e| WalletError::InvalidChallenge(e.to_string()))?;
        let url_text = url.to_string();
        let mut hasher = Sha256::new();
        hasher.update(b"sign\0");
        hasher.update(url_text.as_bytes());
        hasher.update([0]);
        hasher.update(request.payment_required.to_string());
        let hash = hex::encode(hasher.finalize());
        let meta = Meta {
            url: &url_text,
            method: "SIGN",
            hash: &hash,
        };
        if let Err(refusal) = rules::check_url(&key.rules, &url) {
            return Err(self.record_refusal(key, &meta, None, refusal).await);
        }
        let idempotency_key = idempotency_key.unwrap_or_else(new_id);
        let existing = self
            .inner
            .store
            .payment_by_idempotency(&key.id, &idempotency_key)
            .await?;
        let (row, option) = match existing {
            Some(row) => {
                if row.request_hash != hash {
                    return Err(WalletError::Conflict {
                        code: "idempotency_conflict",
                        message: "this Idempotency-Key was used for another request".to_owned(),
                        payment_id: Some(row.id),
                    });
                }
                match row.state {
                    State::PendingApproval => {
                        return Ok(SignOutcome::Pending(Box::new(pending(row))));
                    }
                    State::Rejected => return Err(rejected(row)),
                    State::Signed => return Ok(SignOutcome::Signed(Box::new(sign_response(row)?))),
                    State::Reserved => {
                        let option = self.matching_offer(key, &row, &challenge).await?;
                        (row, option)
                    }
                    _ => return Err(completed(&row)),
                }
            }
            None => {
                let candidates = match self.candidates(key, &challenge) {
                    Ok(candidates) => candidates,
                    Err(Ok((option, refusal))) => {
                        return Err(self
                            .record_refusal(key, &meta, Some(&option), refusal)
                            .await);
                    }
                    Err(Err(error)) => return Err(error),
                };
                match self
                    .reserve(key, &meta, &idempotency_key, candidates)
                    .await?
                {
                    Reserve::Exists(row) => {
                        return match row.state {
                            State::Signed => {
                                Ok(SignOutcome::Signed(Box::new(sign_response(*row)?)))
                            }
                            State::PendingApproval => {
                                Ok(SignOutcome::Pending(Box::new(pending(*row))))
                            }
                            _ => Err(completed(&row)),
                        };
                    }
                    Reserve::Made(row, option) => {
                        if row.state == State::PendingApproval {
                            self.notify_owner(&row);
                            return Ok(SignOutcome::Pending(Box::new(pending(*row))));
                        }
                        (*row, *option)
                    }
                }
            }
        };
        let signed = self.sign_row(key, row, &challenge, &option).await?;
        Ok(SignOutcome::Signed(Box::new(sign_response(signed)?)))
    }

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

    async fn decide(&self, id: &str, to: State, decision: &str) -> Result<PaymentRow, WalletError> {
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
    fn notify_owner(&self, row: &PaymentRow) {
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

fn sign_response(row: PaymentRow) -> Result<SignResponse, WalletError> {
    let (Some(name), Some(value)) = (row.header_name.clone(), row.header_value.clone()) else {
        return Err(WalletError::Internal(format!(
            "payment {} is signed without a header",
            row.id
        )));
    };
    Ok(SignResponse {
        header_name: name,
        header_value: value,
        payment: row.view(),
    })
}

fn rejected(row: PaymentRow) -> WalletError {
    WalletError::Refused {
        refusal: Refusal {
            rule: "approval_threshold",
            code: "approval_rejected",
            message: format!("the owner rejected payment {}", row.id),
        },
        payment_id: Some(row.id),
    }
}

fn completed(row: &PaymentRow) -> WalletError {
    WalletError::Conflict {
        code: "payment_completed",
        message: format!(
            "payment {} for this Idempotency-Key is already {}; use a new key for a new request",
            row.id,
            row.state.as_str()
        ),
        payment_id: Some(row.id.clone()),
    }
}

fn refusal_audit(
    key: &KeyRow,
    row: &PaymentRow,
    refusal: &Refusal,
) -> x402_escrow_sdk::types::wallet::AuditEntry {
    audit_entry(
        &format!("key:{}", key.id),
        Some(&key.id),
        Some(&row.id),
        "refused",
        Some(refusal.rule),
        refusal.message.clone(),
    )
}

fn new_row(
    key: &KeyRow,
    meta: &Meta<'_>,
    idempotency_key: &str,
    option: Option<&PaymentOption>,
    state: State,
) -> PaymentRow {
    let now = now_ms();
    let r = option.map(|o| &o.requirements);
    PaymentRow {
        id: new_id(),
        key_id: key.id.clone(),
        idempotency_key: idempotency_key.to_owned(),
        request_hash: meta.hash.to_owned(),
        url: meta.url.to_owned(),
        method: meta.method.to_owned(),
        scheme: r.map(|r| r.scheme.clone()),
        network: r.map(|r| r.network),
        asset: r.map(|r| r.asset),
        payee: r.map(|r| r.pay_to),
        amount: r.map_or(Amount::ZERO, |r| r.amount),
        returned: Amount::ZERO,
        state,
        rule: None,
        detail: None,
        header_name: None,
        header_value: None,
        payment_hash: None,
        escrow: None,
        random: None,
        payer: None::<Address>,
        valid_before: None,
        receipt: None,
        tx_hash: None,
        http_status: None,
        created_at: now,
        updated_at: now,
    }
}

/// Reads a 402's challenge: the v2 header, else the v1 body (at most 64 KiB).
async fn read_challenge(
    mut response: reqwest::Response,
) -> Result<AnyPaymentRequired, WalletError> {
    let header = response
        .headers()
        .get(PAYMENT_REQUIRED)
        .map(|h| h.as_bytes().to_vec());
    let mut body = Vec::new();
    if header.is_none() {
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| WalletError::InvalidChallenge(e.to_string()))?
        {
            if body.len() + chunk.len() > MAX_BODY_LEN {
                return Err(WalletError::InvalidChallenge(format!(
                    "402 body larger than {MAX_BODY_LEN} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
    }
    codec::decode_402(header.as_deref(), &body)
        .map_err(|e| WalletError::InvalidChallenge(e.to_string()))
}

fn backoff(retry: &RetryPolicy, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    retry
        .initial_backoff
        .saturating_mul(factor)
        .min(retry.max_backoff)
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}
