//! The paying HTTP client.
//!
//! [`BuyerClient::send`] sends a request; on `402 Payment Required` it reads the challenge
//! (v2 `PAYMENT-REQUIRED` header, or the v1 JSON body), chooses an option
//! ([`select`](super::select)), reserves the amount in the ledger under the spend policy
//! **before** signing, signs with the local key, and sends the request again with the payment
//! (`PAYMENT-SIGNATURE`, or `X-PAYMENT` for v1) and an `Idempotency-Key` carrying the payment
//! id (also sent as the `payment-identifier` extension's id when the server advertises it).
//!
//! Retries (network error, 5xx, `settlement_pending`; see [`receipt`](super::receipt)) resend
//! the very same header bytes: one request, one signature, whatever happens on the wire.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::{Signer, SignerSync};
use http::{HeaderName, HeaderValue, StatusCode};
use tracing::Instrument as _;

use super::challenge::{challenge_error, offers, sign_offer};
use super::error::BuyerError;
use super::ledger::{LedgerRecord, PaymentStatus, ReserveError, SignedDetails, SpendLedger};
use super::policy::{PolicyViolation, SpendPolicy, normalize_host};
use super::receipt::{Disposition, ReceiptInfo, classify, read_receipt};
use super::select::{PaymentOption, Rejection, RejectionReason, check_payable};
use crate::amount::Amount;
use crate::facilitator::{SettleResponse, reasons};
use crate::network::Network;
use crate::wire::codec::{
    self, AnyPaymentRequired, IDEMPOTENCY_KEY, MAX_BODY_LEN, PAYMENT_REQUIRED,
};
use crate::wire::extensions::new_payment_id;
use crate::{DecodeError, EscrowRegistry};

/// How often and how patiently a paid request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first paid attempt.
    pub max_retries: u32,
    /// Wait before the first retry; doubled each time.
    pub initial_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries, 250 ms doubling up to 5 s.
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// What happened to the payment attached to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOutcome {
    /// The payment id (ledger id, `Idempotency-Key`, `payment-identifier` id).
    pub payment_id: String,
    /// The operator's payment id, when the receipt names it.
    pub merchant_payment_id: Option<String>,
    /// The scheme paid.
    pub scheme: String,
    /// The network.
    pub network: Network,
    /// The token.
    pub asset: Address,
    /// The recipient.
    pub payee: Address,
    /// The amount, atomic units.
    pub amount: Amount,
    /// auth-capture: the escrow's payment hash.
    pub payment_hash: Option<B256>,
    /// The settlement transaction, when known.
    pub transaction: Option<B256>,
    /// The ledger status after this request.
    pub status: PaymentStatus,
    /// Taken, but the server answered non-2xx (a void is expected; see the ledger).
    pub void_expected: bool,
    /// Paid attempts sent (1 + retries).
    pub attempts: u32,
    /// The receipt, when the server sent one.
    pub receipt: Option<SettleResponse>,
}

/// A response, with the payment made for it (if any).
#[derive(Debug)]
pub struct PaidResponse {
    /// The final response (body unread).
    pub response: reqwest::Response,
    /// `None` when the server did not ask for payment.
    pub payment: Option<PaymentOutcome>,
}

/// Reads the challenge of a 402: the v2 header when present, otherwise the v1 body.
async fn read_challenge(response: reqwest::Response) -> Result<AnyPaymentRequired, BuyerError> {
    let header = response
        .headers()
        .get(PAYMENT_REQUIRED)
        .map(|h| h.as_bytes().to_vec());
    let body = match header {
        Some(_) => Vec::new(),
        None => read_limited(response, MAX_BODY_LEN).await?,
    };
    Ok(codec::decode_402(header.as_deref(), &body)?)
}

/// Reads at most `max` bytes of a body.
async fn read_limited(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, BuyerError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        DecodeError::check_len("402 response body", body.len() + chunk.len(), max)?;
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The option chosen and reserved.
struct Chosen {
    id: String,
    option: PaymentOption,
    record: LedgerRecord,
}

/// A signed payment, ready to attach.
struct Signed {
    header_name: HeaderName,
    header_value: HeaderValue,
    details: SignedDetails,
}

/// The current Unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An x402 client that pays with a local key under a spend policy (see the module docs).
pub struct BuyerClient<S = PrivateKeySigner> {
    http: reqwest::Client,
    signer: Arc<S>,
    policy: Arc<SpendPolicy>,
    ledger: SpendLedger,
    registry: Arc<EscrowRegistry>,
    retry: RetryPolicy,
}

impl<S> Clone for BuyerClient<S> {
    fn clone(&self) -> Self {
        Self {
            http: self.http.clone(),
            signer: Arc::clone(&self.signer),
            policy: Arc::clone(&self.policy),
            ledger: self.ledger.clone(),
            registry: Arc::clone(&self.registry),
            retry: self.retry,
        }
    }
}

impl<S> std::fmt::Debug for BuyerClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuyerClient")
            .field("ledger", &self.ledger.path())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<S> BuyerClient<S>
where
    S: Signer + SignerSync + Send + Sync + 'static,
{
    /// A client paying with `signer` under `policy`, recording in `ledger`, accepting the
    /// canonical escrow deployments ([`EscrowRegistry::canonical`]) and the default
    /// [`RetryPolicy`]. When the signer has a chain id, only that chain is paid on.
    pub fn new(http: reqwest::Client, signer: S, policy: SpendPolicy, ledger: SpendLedger) -> Self {
        Self {
            http,
            signer: Arc::new(signer),
            policy: Arc::new(policy),
            ledger,
            registry: Arc::new(EscrowRegistry::canonical()),
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the escrow deployments this client signs for.
    pub fn with_registry(mut self, registry: EscrowRegistry) -> Self {
        self.registry = Arc::new(registry);
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The payer's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The spend ledger.
    pub fn ledger(&self) -> &SpendLedger {
        &self.ledger
    }

    /// The spend policy.
    pub fn policy(&self) -> &SpendPolicy {
        &self.policy
    }

    /// The underlying HTTP client (to build requests for [`send`](Self::send)).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET url`, paying if asked to.
    pub async fn get(&self, url: impl reqwest::IntoUrl) -> Result<PaidResponse, BuyerError> {
        let request = self.http.get(url).build()?;
        self.send(request).await
    }

    /// Sends `request`, paying if the server answers 402 (see the module documentation).
    /// The body must be buffered (not a stream), since the request is sent at least twice.
    pub async fn send(&self, request: reqwest::Request) -> Result<PaidResponse, BuyerError> {
        let span = tracing::info_span!(
            "x402_send",
            method = %request.method(),
            url = %request.url(),
            payment_id = tracing::field::Empty,
        );
        self.send_inner(request).instrument(span).await
    }

    async fn send_inner(&self, request: reqwest::Request) -> Result<PaidResponse, BuyerError> {
        let template = request.try_clone().ok_or(BuyerError::BodyNotReplayable)?;
        let host = request
            .url()
            .host_str()
            .map(normalize_host)
            .unwrap_or_default();
        let url = request.url().to_string();
        let response = self.http.execute(request).await?;
        if response.status() != StatusCode::PAYMENT_REQUIRED {
            return Ok(PaidResponse {
                response,
                payment: None,
            });
        }
        let challenge = read_challenge(response).await?;
        let now = unix_now();
        let chosen = self
            .choose_and_reserve(&challenge, &host, &url, now)
            .await?;
        tracing::Span::current().record("payment_id", chosen.id.as_str());
        tracing::info!(
            scheme = %chosen.option.requirements.scheme,
            network = %chosen.option.requirements.network,
            amount = %chosen.option.requirements.amount,
            "payment reserved"
        );
        let signed = match self.sign(&challenge, &chosen, now) {
            Ok(signed) => signed,
            Err(error) => {
                let id = chosen.id.clone();
                self.ledger_op(move |l| l.record_failed(&id, now)).await??;
                return Err(error);
            }
        };
        let id = chosen.id.clone();
        let details = signed.details;
        self.ledger_op(move |l| l.record_signed(&id, details, unix_now()))
            .await??;
        self.pay(template, chosen, signed, details).await
    }

    /// Runs a ledger operation off the async runtime's threads.
    async fn ledger_op<R: Send + 'static>(
        &self,
        op: impl FnOnce(&SpendLedger) -> R + Send + 'static,
    ) -> Result<R, BuyerError> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || op(&ledger))
            .await
            .map_err(|e| BuyerError::Internal(format!("ledger task failed: {e}")))
    }

    /// Vets every option, then reserves the first candidate (by preference) the ledger
    /// accepts under the policy.
    async fn choose_and_reserve(
        &self,
        challenge: &AnyPaymentRequired,
        host: &str,
        url: &str,
        now: u64,
    ) -> Result<Chosen, BuyerError> {
        let payer = self.signer.address();
        let chain_id = self.signer.chain_id();
        let mut rejections = Vec::new();
        let mut candidates = Vec::new();
        for option in offers(challenge) {
            let vetted = check_payable(&option.requirements, payer, chain_id, now, &self.registry)
                .and_then(|()| {
                    let intent = option.intent(host, Some(url.to_owned()));
                    self.policy
                        .check_static(&intent)
                        .map(|_| intent)
                        .map_err(RejectionReason::Policy)
                });
            match vetted {
                Ok(intent) => candidates.push((option, intent)),
                Err(reason) => rejections.push((option.rank(), Rejection::new(&option, reason))),
            }
        }
        candidates.sort_by_key(|(option, _)| option.rank());
        for (option, intent) in candidates {
            let id = new_payment_id();
            let policy = Arc::clone(&self.policy);
            let reserve_id = id.clone();
            let reserved = self
                .ledger_op(move |l| l.reserve(&reserve_id, &policy, &intent, now))
                .await?;
            match reserved {
                Ok(record) => return Ok(Chosen { id, option, record }),
                Err(ReserveError::Policy(violation)) => rejections.push((
                    option.rank(),
                    Rejection::new(&option, RejectionReason::Policy(violation)),
                )),
                Err(ReserveError::Ledger(error)) => return Err(error.into()),
            }
        }
        Err(refusal(rejections))
    }

    /// Signs the chosen option and builds the payment header.
    fn sign(
        &self,
        challenge: &AnyPaymentRequired,
        chosen: &Chosen,
        now: u64,
    ) -> Result<Signed, BuyerError> {
        let signed = sign_offer(
            challenge,
            &chosen.option,
            &*self.signer,
            &self.registry,
            now,
            &chosen.id,
        )?;
        Ok(Signed {
            header_name: header_name(signed.header_name)?,
            header_value: HeaderValue::from_str(&signed.header_value)
                .map_err(|e| BuyerError::Internal(e.to_string()))?,
            details: signed.details,
        })
    }

    /// Sends the paid request, retrying with the same bytes, and records the outcome.
    async fn pay(
        &self,
        template: reqwest::Request,
        chosen: Chosen,
        signed: Signed,
        details: SignedDetails,
    ) -> Result<PaidResponse, BuyerError> {
        let id = chosen.id.clone();
        let idempotency_key = HeaderValue::from_str(&format!("\"{id}\""))
            .map_err(|e| BuyerError::Internal(e.to_string()))?;
        let idempotency_name = header_name(IDEMPOTENCY_KEY)?;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut request = template.try_clone().ok_or(BuyerError::BodyNotReplayable)?;
            let headers = request.headers_mut();
            headers.insert(signed.header_name.clone(), signed.header_value.clone());
            headers.insert(idempotency_name.clone(), idempotency_key.clone());
            let may_retry = attempts <= self.retry.max_retries;
            let response = match self.http.execute(request).await {
                Ok(response) => response,
                Err(error) if may_retry => {
                    tracing::warn!(%error, attempts, "paid request failed; retrying the same payment");
                    tokio::time::sleep(self.retry.backoff(attempts)).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, attempts, "paid request failed; payment stays reserved");
                    return Err(error.into());
                }
            };
            let status = response.status();
            let receipt = read_receipt(response.headers());
            if let Some(tx) = receipt.as_ref().and_then(|r| r.transaction)
                && receipt.as_ref().is_some_and(SettleResponse::is_pending)
            {
                let id = id.clone();
                self.ledger_op(move |l| l.record_transaction(&id, tx, unix_now()))
                    .await??;
            }
            let disposition = classify(status, receipt.as_ref());
            tracing::debug!(%status, ?disposition, attempts, "paid attempt answered");
            let record = match disposition {
                Disposition::Retry if may_retry => {
                    tracing::warn!(%status, attempts, "retrying the same payment");
                    tokio::time::sleep(self.retry.backoff(attempts)).await;
                    continue;
                }
                Disposition::Retry | Disposition::Unknown => {
                    let id = id.clone();
                    self.ledger_op(move |l| l.get(&id))
                        .await??
                        .unwrap_or(chosen.record.clone())
                }
                Disposition::Settled {
                    status: new_status,
                    void_expected,
                } => {
                    let id = id.clone();
                    let tx = receipt.as_ref().and_then(|r| r.transaction);
                    let now = unix_now();
                    self.ledger_op(move |l| match new_status {
                        PaymentStatus::Paid => l.record_paid(&id, tx, void_expected, now),
                        other => {
                            if let Some(tx) = tx {
                                l.record_transaction(&id, tx, now)?;
                            }
                            l.set_status(&id, other, now)
                        }
                    })
                    .await??
                }
                Disposition::Rejected => {
                    let fail_id = id.clone();
                    self.ledger_op(move |l| l.record_failed(&fail_id, unix_now()))
                        .await??;
                    let reason = rejection_reason(response, receipt.as_ref()).await;
                    tracing::warn!(%status, ?reason, "payment refused by the server");
                    if reason
                        .as_deref()
                        .is_some_and(|r| r.starts_with(reasons::PERMIT2_ALLOWANCE_MISSING))
                    {
                        return Err(BuyerError::Permit2ApprovalMissing {
                            token: chosen.option.requirements.asset,
                            reason,
                        });
                    }
                    return Err(BuyerError::PaymentRejected {
                        status: status.as_u16(),
                        reason,
                    });
                }
            };
            tracing::info!(status = record.status.name(), attempts, "payment recorded");
            let info = receipt
                .as_ref()
                .map(ReceiptInfo::from_receipt)
                .unwrap_or_default();
            let payment = PaymentOutcome {
                payment_id: id,
                merchant_payment_id: info.payment_id,
                scheme: record.scheme.clone(),
                network: record.network,
                asset: record.asset,
                payee: record.payee,
                amount: record.amount,
                payment_hash: details.payment_hash,
                transaction: record.transaction,
                status: record.status,
                void_expected: record.void_expected,
                attempts,
                receipt,
            };
            return Ok(PaidResponse {
                response,
                payment: Some(payment),
            });
        }
    }
}

/// A header name from the codec's constants (normalised to lowercase).
fn header_name(name: &str) -> Result<HeaderName, BuyerError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|e| BuyerError::Internal(e.to_string()))
}

/// The error when no option could be reserved: the policy's refusal of the most preferred
/// payable option, or the list of reasons when no option was payable at all.
fn refusal(mut rejections: Vec<((u8, Amount), Rejection)>) -> BuyerError {
    rejections.sort_by_key(|(rank, _)| *rank);
    let policy: Option<PolicyViolation> = rejections.iter().find_map(|(_, r)| match &r.reason {
        RejectionReason::Policy(v) => Some(v.clone()),
        _ => None,
    });
    match policy {
        Some(violation) => BuyerError::Policy(violation),
        None => BuyerError::NoAcceptableRequirement {
            reasons: rejections.into_iter().map(|(_, r)| r).collect(),
        },
    }
}

/// The server's reason for refusing a payment: the receipt's, or a new challenge's `error`.
async fn rejection_reason(
    response: reqwest::Response,
    receipt: Option<&SettleResponse>,
) -> Option<String> {
    if let Some(receipt) = receipt {
        return receipt
            .error_message
            .clone()
            .or_else(|| receipt.error_reason.clone());
    }
    if response.status() == StatusCode::PAYMENT_REQUIRED {
        return read_challenge(response)
            .await
            .ok()
            .and_then(|c| challenge_error(&c).map(str::to_owned));
    }
    read_limited(response, 1024)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .filter(|s| !s.trim().is_empty())
}
