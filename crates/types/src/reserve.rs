//! The refund reserve's REST types: `GET /v1/reserve` ([`ReserveView`]) and
//! `GET /v1/reserve/statement` ([`ReserveStatement`]). Refunds are charged to the merchant that
//! owns the payment, from this reserve (`409 refund_reserve_insufficient` when it cannot cover
//! one).

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::api::decimal;
use crate::lifecycle::Amount;

/// Most entries one statement page holds.
pub const MAX_STATEMENT_PAGE: u32 = 200;

/// `GET /v1/reserve`: the calling merchant's reserve in every asset it has one in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveView {
    /// The merchant.
    pub merchant_id: String,
    /// The operator's refund account: deposits to it from one of the merchant's registered
    /// addresses (or its receivers) are credited to the reserve.
    pub refund_account: Address,
    /// The addresses the merchant registered for deposits.
    pub deposit_addresses: Vec<Address>,
    /// The automatic top-up rule: this share (basis points) of each capture goes to the
    /// reserve, when the payment's signed fee bounds allow it (absent: no rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topup_bps: Option<u16>,
    /// One entry per asset.
    pub balances: Vec<ReserveBalanceView>,
}

/// The reserve in one asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveBalanceView {
    /// The token.
    pub asset: Address,
    /// What refunds can draw on now: `credited − debited + released`.
    #[serde(with = "decimal")]
    pub balance: Amount,
    /// Every credit so far (deposits, admin credits, top-ups).
    #[serde(with = "decimal")]
    pub credited: Amount,
    /// Every debit so far (refunds queued, deposits a reorg took back).
    #[serde(with = "decimal")]
    pub debited: Amount,
    /// Debits given back (refunds that failed on chain).
    #[serde(with = "decimal")]
    pub released: Amount,
}

/// `GET /v1/reserve/statement`: the ledger, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveStatement {
    /// At most `limit` entries, newest first.
    pub entries: Vec<ReserveEntryView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReserveEntryView {
    /// The entry's id (UUIDv7, ordered by creation).
    pub id: String,
    /// The token.
    pub asset: Address,
    /// `credit`, `debit` or `release`.
    pub kind: String,
    /// Token units.
    #[serde(with = "decimal")]
    pub amount: Amount,
    /// The balance right after this entry.
    #[serde(with = "decimal")]
    pub balance_after: Amount,
    /// `admin`, `deposit`, `capture_topup`, `refund`, `refund_failed` or `deposit_reorged`.
    pub reason: String,
    /// The payment refunded or captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// A deposit's transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_hash: Option<B256>,
    /// A deposit's log index in its block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u64>,
    /// A note (admin credits, the failed refund's error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When written (unix milliseconds).
    pub created_at: i64,
}
