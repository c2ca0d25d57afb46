//! The REST types of `x402-escrow wallet` (the spend-controlled payment service for agents):
//! payment keys and their rules, `POST /v1/fetch`, `POST /v1/sign`, the spend ledger, usage,
//! the audit log and the error envelope with its codes. The wallet serializes these; clients
//! (workflow engines, scripts, tests) read the same definitions.

use std::collections::BTreeMap;

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::amount::Amount;
use crate::network::Network;

/// What a payment key may spend. Every field is optional: an absent allowlist allows
/// everything, an absent limit does not limit. Amounts are atomic units of the token and count
/// every payment of the key together, so a key with an amount limit must list its `assets`
/// (tokens with the same decimals).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRules {
    /// Largest single payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_payment: Option<Amount>,
    /// Largest sum over any rolling 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_cap: Option<Amount>,
    /// Largest sum over the key's life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_budget: Option<Amount>,
    /// Payments above this amount wait in `pending_approval` for the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_threshold: Option<Amount>,
    /// Recipients (`payTo`) that may be paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payees: Option<Vec<Address>>,
    /// Where requests may go: host patterns (`api.example.com`, `*.example.com`, `127.0.0.1`)
    /// or URL prefixes (`https://api.example.com/v1/`). Also the SSRF guard: the wallet
    /// requests nothing else, and a private or loopback address only when an entry names that
    /// host exactly (never through `*.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// Tokens that may be spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<Vec<Address>>,
    /// Networks that may be paid on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<Network>>,
    /// Schemes that may be paid (`auth-capture`, `exact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemes: Option<Vec<String>>,
}

/// `POST /v1/keys` (owner): a new payment key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// A label.
    pub name: String,
    /// The buyer key (by its configured name) that signs this key's payments.
    pub buyer: String,
    /// The rules.
    #[serde(default)]
    pub rules: KeyRules,
    /// Unix seconds after which the key stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// `PATCH /v1/keys/{id}` (owner): the kill switch and new rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateKeyRequest {
    /// `true` stops every payment of the key until set back to `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Replaces the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<KeyRules>,
}

/// A payment key as the owner sees it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    /// Id.
    pub id: String,
    /// Label.
    pub name: String,
    /// The buyer key's name.
    pub buyer: String,
    /// The rules.
    pub rules: KeyRules,
    /// Creation (Unix ms).
    pub created_at: i64,
    /// Expiry (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Revocation (Unix ms): final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// The kill switch.
    pub disabled: bool,
}

/// A key with its token, shown once (create, rotate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyCreated {
    /// The key.
    pub key: KeyView,
    /// The API token (`x402_wk_…`): only its SHA-256 is stored.
    pub token: String,
}

/// `GET /v1/keys` (owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    /// Every key, oldest first.
    pub keys: Vec<KeyView>,
}

/// `GET /v1/keys/{id}/usage`: what the key's rules count now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyUsage {
    /// The key.
    pub key_id: String,
    /// Counted over the last 24 hours (reserved, pending approval and kept).
    pub spent_24h: Amount,
    /// Counted over the key's life.
    pub spent_total: Amount,
    /// Part of the totals not final yet (pending approval, reserved, signed, authorized).
    pub in_flight: Amount,
    /// Returned to the budget (voids, refunds, expired signatures).
    pub returned: Amount,
    /// Payments per state.
    pub payments: BTreeMap<String, u64>,
    /// `dailyCap - spent24h`, when there is a cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_24h: Option<Amount>,
    /// `totalBudget - spentTotal`, when there is a budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_total: Option<Amount>,
}

/// `POST /v1/fetch`: one HTTP request, paid if it answers 402.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchRequest {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Method (default `GET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request headers (no `Host`, hop-by-hop, payment or length headers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Body text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Body bytes, base64 (instead of `body`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

/// `POST /v1/fetch`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchResponse {
    /// The final HTTP status of the resource.
    pub status: u16,
    /// Its headers (repeated headers joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// Its body: text when UTF-8, else base64.
    pub body: String,
    /// `text` or `base64`.
    pub body_encoding: String,
    /// The payment receipt (`PAYMENT-RESPONSE` decoded), when one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Value>,
    /// The wallet's payment id, when a payment was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The payment, when one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<WalletPaymentView>,
}

/// `POST /v1/sign`: a payment header for a 402 the caller received itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignRequest {
    /// The challenge: the v2 `PAYMENT-REQUIRED` object (or its base64 header text), or the v1
    /// 402 body.
    pub payment_required: Value,
    /// The URL that answered 402 (checked against the `hosts` rule).
    pub url: String,
}

/// `POST /v1/sign`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignResponse {
    /// `PAYMENT-SIGNATURE` or `X-PAYMENT`.
    pub header_name: String,
    /// Its value: send these bytes on every retry.
    pub header_value: String,
    /// The payment (state `signed`).
    pub payment: WalletPaymentView,
}

/// One entry of the spend ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletPaymentView {
    /// Id (UUIDv7).
    pub id: String,
    /// The payment key.
    pub key_id: String,
    /// `pending_approval`, `reserved`, `signed`, `authorized`, `captured`, `voided`,
    /// `refunded`, `refused`, `rejected`, `failed`, `expired`.
    pub state: String,
    /// The rule that refused it (`max_per_payment`, `daily_cap`, …), for `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why it is in this state, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The URL paid for.
    pub url: String,
    /// The request method.
    pub method: String,
    /// Scheme, when an offer was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<Address>,
    /// Recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<Address>,
    /// Amount (atomic units).
    pub amount: Amount,
    /// Returned to the budget so far.
    pub returned: Amount,
    /// auth-capture: the escrow's payment hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_hash: Option<String>,
    /// The settlement transaction, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// The merchant's HTTP status for the paid request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Creation (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

/// `GET /v1/payments`: one page, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletPaymentList {
    /// The page.
    pub payments: Vec<WalletPaymentView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One decision of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Id (UUIDv7).
    pub id: String,
    /// When (Unix ms).
    pub at: i64,
    /// `owner` or `key:<id>` or `wallet` (background work).
    pub actor: String,
    /// The key concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The payment concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// `reserved`, `refused`, `pending_approval`, `approved`, `rejected`, `signed`, `settled`,
    /// `key_created`, `key_rotated`, `key_revoked`, `key_updated`, `reconciled`, `released`.
    pub decision: String,
    /// The rule that decided, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Details.
    pub detail: String,
}

/// `GET /v1/audit` (owner): one page, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditList {
    /// The page.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The wallet's error body: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletErrorEnvelope {
    /// The error.
    pub error: WalletErrorBody,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletErrorBody {
    /// Stable code (see [`WALLET_ERROR_CODES`]).
    pub code: String,
    /// Human text with the numbers.
    pub message: String,
    /// The spend rule that refused, for refusals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The payment concerned (refused or waiting), when one was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

/// Every error code of the wallet API, each with its HTTP status.
pub const WALLET_ERROR_CODES: &[(&str, u16)] = &[
    ("unauthorized", 401),
    ("key_revoked", 403),
    ("key_disabled", 403),
    ("key_expired", 403),
    ("forbidden", 403),
    ("max_per_payment_exceeded", 403),
    ("daily_cap_exceeded", 403),
    ("total_budget_exceeded", 403),
    ("payee_not_allowed", 403),
    ("host_not_allowed", 403),
    ("asset_not_allowed", 403),
    ("network_not_allowed", 403),
    ("scheme_not_allowed", 403),
    ("private_address", 403),
    ("approval_rejected", 403),
    ("approval_pending", 202),
    ("no_payable_offer", 422),
    ("invalid_url", 400),
    ("invalid_header", 400),
    ("header_not_allowed", 400),
    ("invalid_method", 400),
    ("invalid_body", 400),
    ("invalid_request", 400),
    ("invalid_rules", 400),
    ("invalid_challenge", 422),
    ("body_too_large", 413),
    ("idempotency_conflict", 409),
    ("payment_in_progress", 409),
    ("payment_completed", 409),
    ("offer_changed", 409),
    ("not_found", 404),
    ("not_pending", 409),
    ("payment_refused_by_server", 402),
    ("upstream_unreachable", 502),
    ("upstream_body_too_large", 502),
    ("buyer_unavailable", 503),
    ("internal", 500),
];
