//! One delivery attempt: the merchant's endpoint and secret, the Standard Webhooks signed
//! request, and the answer classified into a [`DeliveryOutcome`].

use x402_escrow_sdk::webhooks::{self as sdk, WebhookSecret};

use crate::store::{ClaimedDelivery, DeliveryOutcome, ENDPOINT_DISABLED, Merchant, NO_ENDPOINT};

use super::{WebhookMetrics, WebhookWorker};

impl WebhookWorker {
    /// Sends one attempt and classifies the answer.
    pub(super) async fn attempt(&self, claimed: &ClaimedDelivery) -> DeliveryOutcome {
        let store = &self.inner.store;
        let merchant = match store.get_merchant(claimed.delivery.merchant_id).await {
            Ok(m) => m,
            Err(e) => return self.failed(claimed, None, format!("cannot load merchant: {e}")),
        };
        let now = store.now_ms();
        let (url, secrets) = match endpoint(&merchant, now) {
            Endpoint::Ready { url, secrets } => (url, secrets),
            Endpoint::Missing(reason) => {
                return DeliveryOutcome::GiveUp {
                    response_status: None,
                    error: reason.to_owned(),
                };
            }
            Endpoint::BadSecret(reason) => return self.failed(claimed, None, reason),
        };
        let body = match serde_json::to_vec(&claimed.event.payload) {
            Ok(b) => b,
            Err(e) => {
                return DeliveryOutcome::GiveUp {
                    response_status: None,
                    error: format!("cannot serialize the payload: {e}"),
                };
            }
        };
        let msg_id = claimed.event.id.to_string();
        let timestamp = u64::try_from(now.max(0) / 1000).unwrap_or(0);
        // During a rotation's grace period: one signature per secret, space-separated.
        let signed = sdk::headers_rotating(&secrets, &msg_id, timestamp, &body);
        let mut request = self
            .inner
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        WebhookMetrics::inc(&self.inner.metrics.attempts);
        match request.body(body).send().await {
            Ok(response) => {
                let status = response.status();
                // The body is not read: the answer is the status alone.
                drop(response);
                if status.is_success() {
                    DeliveryOutcome::Delivered {
                        response_status: status.as_u16(),
                    }
                } else if status == reqwest::StatusCode::GONE {
                    DeliveryOutcome::Gone
                } else {
                    self.failed(
                        claimed,
                        Some(status.as_u16()),
                        format!("HTTP {}", status.as_u16()),
                    )
                }
            }
            Err(e) => self.failed(claimed, None, describe(e)),
        }
    }

    /// A failed attempt: retry at the next step of the schedule, or give up after the last.
    fn failed(
        &self,
        claimed: &ClaimedDelivery,
        response_status: Option<u16>,
        error: String,
    ) -> DeliveryOutcome {
        match self.inner.config.retry_delay(claimed.delivery.attempts) {
            Some(delay) => {
                let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                DeliveryOutcome::Retry {
                    response_status,
                    error,
                    next_attempt_at: self.inner.store.now_ms().saturating_add(delay_ms),
                }
            }
            None => DeliveryOutcome::GiveUp {
                response_status,
                error,
            },
        }
    }
}

enum Endpoint {
    /// The URL and the secrets to sign with (current first).
    Ready {
        url: String,
        secrets: Vec<WebhookSecret>,
    },
    Missing(&'static str),
    BadSecret(String),
}

fn endpoint(merchant: &Merchant, now: i64) -> Endpoint {
    if merchant.webhook_disabled_at.is_some() {
        return Endpoint::Missing(ENDPOINT_DISABLED);
    }
    let Some(url) = merchant.webhook_url.clone().filter(|u| !u.is_empty()) else {
        return Endpoint::Missing(NO_ENDPOINT);
    };
    let secrets = merchant.signing_secrets(now);
    if secrets.is_empty() {
        return Endpoint::Missing("the merchant has no webhook secret");
    }
    match secrets
        .iter()
        .map(|s| WebhookSecret::parse(s.expose()))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(secrets) => Endpoint::Ready { url, secrets },
        // The error text never contains the secret.
        Err(e) => Endpoint::BadSecret(format!("unusable webhook secret: {e}")),
    }
}

/// An error text without the URL (it may carry credentials) but with its causes.
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_redirect() {
        "redirect"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
