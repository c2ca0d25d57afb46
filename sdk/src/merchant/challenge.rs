//! The requirements a route offers, the 402 challenge, and matching a payment against them.
//!
//! `captureDeadline` and `refundDeadline` are relative to the time of the challenge. So that a
//! payment signed against an earlier challenge (and a v1 payment, which does not echo the
//! requirements) can be matched, challenge times are quantized to [`EPOCH_SECS`] and a payment
//! is matched against every epoch from now back to `maxTimeoutSeconds` ago.

use alloy::primitives::Address;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use super::config::{PaymentRoute, PaymentsConfig};
use crate::DecodeError;
use crate::amount::AmountError;
use crate::schemes::auth_capture::{self, AssetTransferMethod, AuthCaptureExtra, PaymentFlow};
use crate::schemes::exact::ExactExtra;
use crate::schemes::{AUTH_CAPTURE, EXACT};
use crate::wire::codec::{self, CACHE_CONTROL_402, PAYMENT_REQUIRED};
use crate::wire::extensions::{PAYMENT_IDENTIFIER, advertise_payment_identifier};
use crate::wire::{
    Extra, PaymentPayload, PaymentPayloadV1, PaymentRequired, PaymentRequiredV1,
    PaymentRequirements, PaymentRequirementsV1, ResourceInfo,
};

/// Granularity of challenge times, in seconds (defined with the terms it enters).
pub use x402_escrow_types::terms::EPOCH_SECS;

/// The requirements of one route at one challenge epoch, naming `authorizer` (one of
/// [`PaymentsConfig::authorizers`]) as `captureAuthorizer`.
pub(crate) fn offers(
    config: &PaymentsConfig,
    route: &PaymentRoute,
    epoch: u64,
    authorizer: Address,
) -> Result<Vec<PaymentRequirements>, AmountError> {
    let amount = route.price.resolve(config.asset.decimals)?;
    let extra = AuthCaptureExtra {
        name: config.asset.name.clone(),
        version: config.asset.version.clone(),
        capture_authorizer: authorizer,
        capture_deadline: epoch + config.capture_deadline_secs,
        refund_deadline: epoch + config.refund_deadline_secs,
        fee_recipient: config.fee_recipient,
        min_fee_bps: config.min_fee_bps,
        max_fee_bps: config.max_fee_bps,
        auth_capture_escrow: config.escrow,
        receiver_authorizer: None,
        policy: None,
        // Absent means `escrow`; the key is written only for the `authorization` flow.
        payment_flow: match route.effective_flow(config) {
            PaymentFlow::Escrow => None,
            PaymentFlow::Authorization => Some(PaymentFlow::Authorization),
        },
        capture_mode: None,
        asset_transfer_method: None,
        other: Map::new(),
    };
    let base = |scheme: &str, extra: Extra| PaymentRequirements {
        scheme: scheme.to_owned(),
        network: config.network,
        amount,
        asset: config.asset.address,
        pay_to: config.pay_to,
        max_timeout_seconds: config.max_timeout_seconds,
        extra: Some(extra),
    };
    // One auth-capture option per transfer method; `assetTransferMethod` is written only for
    // Permit2 (absent means `eip3009`).
    let mut offers: Vec<PaymentRequirements> = config
        .asset_transfer_methods
        .iter()
        .map(|method| {
            let extra = AuthCaptureExtra {
                asset_transfer_method: match method {
                    AssetTransferMethod::Eip3009 => None,
                    AssetTransferMethod::Permit2 => Some(AssetTransferMethod::Permit2),
                },
                ..extra.clone()
            };
            base(AUTH_CAPTURE, Extra::AuthCapture(extra))
        })
        .collect();
    // A transfer cannot give back what a metered handler does not use.
    if config.offer_exact && !route.metered {
        offers.push(base(
            EXACT,
            Extra::Exact(ExactExtra::new(
                config.asset.name.clone(),
                config.asset.version.clone(),
            )),
        ));
    }
    Ok(offers)
}

impl PaymentsConfig {
    /// The requirements a 402 challenge for `route` carries at unix time `now` (the
    /// `accepts` list: `auth-capture` once per
    /// [`asset_transfer_methods`](Self::asset_transfer_methods), and `exact` when
    /// [`offer_exact`](Self::offer_exact)),
    /// for a caller that pays or settles without asking the route first (a facilitator client,
    /// a load driver). Times are quantized to [`EPOCH_SECS`] as in the challenge itself; the
    /// `captureAuthorizer` is the next lane's ([`PaymentsConfig::next_authorizer`]).
    pub fn offers(
        &self,
        route: &PaymentRoute,
        now: u64,
    ) -> Result<Vec<PaymentRequirements>, AmountError> {
        offers(self, route, epoch_of(now), self.next_authorizer())
    }
}

/// The current epoch.
pub(crate) fn epoch_of(now: u64) -> u64 {
    now - now % EPOCH_SECS
}

/// Epochs a payment made now may have been signed against, newest first.
fn epochs(config: &PaymentsConfig, now: u64) -> impl Iterator<Item = u64> {
    let newest = epoch_of(now);
    let count = config.max_timeout_seconds / EPOCH_SECS + 2;
    (0..count).filter_map(move |k| newest.checked_sub(k * EPOCH_SECS))
}

/// Every (epoch, `captureAuthorizer`) a payment made now may have been signed against, newest
/// epoch first.
fn epochs_and_authorizers(config: &PaymentsConfig, now: u64) -> Vec<(u64, Address)> {
    let authorizers = config.authorizers();
    epochs(config, now)
        .flat_map(|epoch| authorizers.iter().map(move |a| (epoch, *a)))
        .collect()
}

/// Why a payment does not answer this route's challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MatchError {
    /// The price could not be converted (a configuration error).
    #[error("route price: {0}")]
    Price(#[from] AmountError),
    /// No offer matches.
    #[error("{0}")]
    NoMatch(String),
}

/// The requirements (of some recent epoch) the v2 payment's `accepted` equals.
pub(crate) fn match_v2(
    config: &PaymentsConfig,
    route: &PaymentRoute,
    payment: &PaymentPayload,
    now: u64,
) -> Result<PaymentRequirements, MatchError> {
    let mut first_mismatch = None;
    for (epoch, authorizer) in epochs_and_authorizers(config, now) {
        for offer in offers(config, route, epoch, authorizer)? {
            match offer.check_matches(&payment.accepted) {
                Ok(()) => return Ok(offer),
                Err(mismatch) => {
                    first_mismatch.get_or_insert(mismatch);
                }
            }
        }
    }
    Err(MatchError::NoMatch(match first_mismatch {
        Some(m) => m.to_string(),
        None => "no payment option matches".to_owned(),
    }))
}

/// The v2 form of a v1 payment: the offer of a recent epoch whose scheme and network match and,
/// for auth-capture, whose PaymentInfo the payment's nonce commits to.
pub(crate) fn match_v1(
    config: &PaymentsConfig,
    route: &PaymentRoute,
    resource: &ResourceInfo,
    payment: &PaymentPayloadV1,
    now: u64,
) -> Result<(PaymentPayload, PaymentRequirements), MatchError> {
    let mut last_error = None;
    for (epoch, authorizer) in epochs_and_authorizers(config, now) {
        for offer in offers(config, route, epoch, authorizer)? {
            let v1 = PaymentRequirementsV1::from_v2(&offer, resource);
            let converted = match payment.clone().into_v2(&v1) {
                Ok(converted) => converted,
                Err(e) => {
                    last_error = Some(e.to_string());
                    continue;
                }
            };
            if offer.scheme == AUTH_CAPTURE
                && let Err(e) =
                    auth_capture::derive_from_payment_payload(&offer, &converted, &config.registry)
            {
                last_error = Some(e.to_string());
                continue;
            }
            return Ok((converted, offer));
        }
    }
    Err(MatchError::NoMatch(last_error.unwrap_or_else(|| {
        "the payment matches no payment option".to_owned()
    })))
}

/// The resource of a request: `public_base_url` + path and query, else `http://{Host}…`.
pub(crate) fn resource(
    config: &PaymentsConfig,
    route: &PaymentRoute,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
) -> ResourceInfo {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = if let Some(base) = &config.public_base_url {
        format!("{}{}", base.trim_end_matches('/'), path)
    } else if uri.scheme().is_some() {
        uri.to_string()
    } else {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}{path}")
    };
    ResourceInfo {
        url,
        description: route.description.clone(),
        mime_type: route.mime_type.clone(),
    }
}

/// A 402 answer: the v2 `PAYMENT-REQUIRED` header and the v1-compatible JSON body.
pub(crate) fn payment_required(
    config: &PaymentsConfig,
    resource: ResourceInfo,
    accepts: Vec<PaymentRequirements>,
    error: Option<String>,
) -> Response<Body> {
    let v1_accepts = accepts
        .iter()
        .map(|r| PaymentRequirementsV1::from_v2(r, &resource))
        .collect();
    let mut extensions = Map::new();
    extensions.insert(
        PAYMENT_IDENTIFIER.to_owned(),
        advertise_payment_identifier(config.payment_identifier_required),
    );
    let mut v2 = PaymentRequired::new(resource, accepts);
    v2.error = error.clone();
    v2.extensions = Some(extensions);
    let mut v1 = PaymentRequiredV1::new(v1_accepts);
    v1.error = error;
    let body = serde_json::to_vec(&v1).unwrap_or_default();
    let mut response = json_response(StatusCode::PAYMENT_REQUIRED, body);
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL_402),
    );
    match codec::encode_payment_required(&v2)
        .ok()
        .and_then(|h| HeaderValue::from_str(&h).ok())
    {
        Some(value) => {
            headers.insert(PAYMENT_REQUIRED, value);
        }
        None => tracing::error!("cannot encode the PAYMENT-REQUIRED header"),
    }
    response
}

/// A JSON error answer `{"error": code, "message": …}` (plus the field at fault for decode
/// errors).
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = json!({ "error": code, "message": message });
    json_response(status, serde_json::to_vec(&body).unwrap_or_default())
}

/// 400 for an undecodable payment header.
pub(crate) fn bad_header(error: &DecodeError) -> Response<Body> {
    let mut body = json!({ "error": error.code(), "message": error.to_string() });
    if let (Some(field), Some(object)) = (error.field(), body.as_object_mut()) {
        object.insert("field".to_owned(), Value::String(field.to_owned()));
    }
    json_response(
        StatusCode::BAD_REQUEST,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
