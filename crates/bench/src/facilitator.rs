//! The facilitator mode: x402 payloads signed before the timed phase, then posted to the
//! operator's `POST /settle` as a merchant's middleware would (Bearer API key, v2 body).

use std::time::Instant;

use alloy::signers::local::PrivateKeySigner;
use x402_escrow_sdk::buyer::unix_now;
use x402_escrow_sdk::facilitator::{SettleResponse, VerifyRequest};
use x402_escrow_sdk::merchant::{PaymentRoute, PaymentsConfig};
use x402_escrow_sdk::random_b256;
use x402_escrow_sdk::schemes::{auth_capture, exact};
use x402_escrow_sdk::wire::PaymentPayload;

use crate::report::scheme_name;
use crate::{BenchError, BenchScheme, Result, Step};

/// `count` settle bodies of `scheme` for what `config` offers at `route`, payload `n` signed by
/// `payers[n % payers.len()]`; and the seconds the signing took.
pub(crate) fn presign(
    config: &PaymentsConfig,
    route: &PaymentRoute,
    scheme: BenchScheme,
    payers: &[PrivateKeySigner],
    count: u64,
) -> Result<(Vec<String>, f64)> {
    let started = Instant::now();
    let now = unix_now();
    let want = scheme_name(scheme);
    let requirements = config
        .offers(route, now)
        .step("the route's payment requirements")?
        .into_iter()
        .find(|r| r.scheme == want)
        .ok_or_else(|| BenchError::Unexpected(format!("the merchant offers no {want} option")))?;
    let mut bodies = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for n in 0..count {
        let payer = &payers[usize::try_from(n).unwrap_or(0) % payers.len()];
        let payload = match scheme {
            BenchScheme::Exact => PaymentPayload::new(
                requirements.clone(),
                exact::build_payload(&requirements, payer, now, random_b256())
                    .step("signing an exact payload")?,
            ),
            BenchScheme::AuthCapture => PaymentPayload::new(
                requirements.clone(),
                auth_capture::build_payload(
                    &requirements,
                    payer,
                    now,
                    random_b256(),
                    &config.registry,
                )
                .step("signing an auth-capture payload")?,
            ),
        };
        let body = VerifyRequest::new(payload, requirements.clone());
        bodies.push(serde_json::to_string(&body).step("encoding a settle body")?);
    }
    Ok((bodies, started.elapsed().as_secs_f64()))
}

/// Posts one settle body; `Ok` only for `success: true` with a transaction.
pub(crate) async fn settle(
    http: &reqwest::Client,
    url: &str,
    api_key: &str,
    body: String,
) -> std::result::Result<(), String> {
    let response = http
        .post(url)
        .bearer_auth(api_key)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    let answer: SettleResponse = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "HTTP {status}, not a settle response ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    if !answer.success || answer.transaction.is_none() {
        return Err(format!(
            "HTTP {status}: {} ({})",
            answer.error_reason.unwrap_or_default(),
            answer.error_message.unwrap_or_default()
        ));
    }
    Ok(())
}
