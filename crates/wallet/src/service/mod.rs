//! The wallet's work: `fetch` (request, pay the 402 within the key's rules, settle from the
//! receipt), `sign`, approvals, usage. See the crate documentation for the design.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | [`Wallet`], its configuration, authentication, refusals and the audit log |
//! | `fetch.rs` | `POST /v1/fetch`: the request, the offer, the reservation, signing, sending, settling from the receipt |
//! | `sign.rs` | `POST /v1/sign`: the payment header for a challenge the caller received |
//! | `approvals.rs` | approvals by the owner, and a key's usage |

mod approvals;
mod fetch;
mod sign;

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
