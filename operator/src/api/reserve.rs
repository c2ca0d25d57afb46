//! The merchant's refund reserve: `GET /v1/reserve` (balances, deposit addresses, top-up rule)
//! and `GET /v1/reserve/statement` (the ledger, newest first, cursor-paginated). Read straight
//! from the store: the reserve is the merchant's own, so these never reach the engine.

use alloy::primitives::Address;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;
use x402_escrow_types::reserve::{
    MAX_STATEMENT_PAGE, ReserveBalanceView, ReserveEntryView, ReserveStatement, ReserveView,
};

use super::ApiState;
use super::auth::CurrentMerchant;
use super::errors::{ApiError, ApiQuery, json};
use crate::service::PaymentService;
use crate::store::{ReserveBalance, ReserveEntry};

/// Statement page size when `limit` is not given.
pub const DEFAULT_STATEMENT_PAGE: u32 = 50;

/// The view of one asset's balance.
pub fn balance_view(b: &ReserveBalance) -> ReserveBalanceView {
    ReserveBalanceView {
        asset: b.asset,
        balance: b.balance,
        credited: b.credited,
        debited: b.debited,
        released: b.released,
    }
}

/// The view of one ledger entry.
pub fn entry_view(e: &ReserveEntry) -> ReserveEntryView {
    ReserveEntryView {
        id: e.id.to_string(),
        asset: e.asset,
        kind: e.kind.as_str().to_owned(),
        amount: e.amount,
        balance_after: e.balance_after,
        reason: e.reason.as_str().to_owned(),
        payment_id: e.payment_id.map(|p| p.to_string()),
        transaction_hash: e.tx_hash,
        log_index: e.log_index,
        note: e.note.clone(),
        created_at: e.created_at,
    }
}

/// `GET /v1/reserve` → [`ReserveView`].
pub async fn get_reserve<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
) -> Response {
    let read = async {
        let balances = state.store.reserve_balances(merchant.id).await?;
        let deposit_addresses = state.store.deposit_addresses(merchant.id).await?;
        let topup_bps = state.store.topup_rule(merchant.id).await?;
        Ok::<_, crate::store::StoreError>((balances, deposit_addresses, topup_bps))
    };
    match read.await {
        Ok((balances, deposit_addresses, topup_bps)) => json(
            StatusCode::OK,
            &ReserveView {
                merchant_id: merchant.id.to_string(),
                refund_account: state.service.terms(&merchant).capture_authorizer,
                deposit_addresses,
                topup_bps,
                balances: balances.iter().map(balance_view).collect(),
            },
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Query of `GET /v1/reserve/statement`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    /// Only this asset's entries.
    pub asset: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1..=200 (default 50).
    pub limit: Option<u32>,
}

/// `GET /v1/reserve/statement[?asset=&cursor=&limit=]` → [`ReserveStatement`], newest first.
pub async fn get_statement<S: PaymentService>(
    State(state): State<ApiState<S>>,
    CurrentMerchant(merchant): CurrentMerchant,
    ApiQuery(query): ApiQuery<StatementQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(DEFAULT_STATEMENT_PAGE);
    if limit == 0 || limit > MAX_STATEMENT_PAGE {
        return ApiError::invalid_request(format!(
            "limit must be between 1 and {MAX_STATEMENT_PAGE}"
        ))
        .into_response();
    }
    let asset = match query.asset.as_deref().map(str::parse::<Address>) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            return ApiError::invalid_request("asset must be a 0x-prefixed 20-byte address")
                .into_response();
        }
    };
    let cursor = match query.cursor.as_deref().map(Uuid::parse_str) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            return ApiError::invalid_request("cursor is not one this API gave out")
                .into_response();
        }
    };
    // One more than asked tells whether another page follows.
    match state
        .store
        .reserve_statement(merchant.id, asset, cursor, limit + 1)
        .await
    {
        Ok(mut entries) => {
            let more = entries.len() > limit as usize;
            entries.truncate(limit as usize);
            let next_cursor = more
                .then(|| entries.last().map(|e| e.id.to_string()))
                .flatten();
            json(
                StatusCode::OK,
                &ReserveStatement {
                    entries: entries.iter().map(entry_view).collect(),
                    next_cursor,
                },
            )
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
