//! The transaction outbox (`chain_txs`), every signed attempt (`tx_attempts`), and the signers
//! whose nonces the database owns (`signers`, with the lease that says which instance drives a
//! key).
//!
//! Chain transaction statuses:
//!
//! ```text
//! queued ──claim (nonce reserved)──► reserved ──attempt signed──► signed ──► broadcast ──► mined ──► final
//!    │                                  │                           │            │          │  └─(receipt failed)─► reverted
//!    └──────────────────────────────────┴────── abandoned ◄─────────┴────────────┘          └─reorg─► broadcast
//! ```

use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::codec::{self, get_i64, get_opt_i64, get_opt_str, get_u64, get_uuid};
use super::{Backend, Result, Store, StoreError, StoreTx, in_tx};

/// What a chain transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKind {
    /// `authorize(paymentInfo, amount, collector, data)`.
    Authorize,
    /// `charge(…)`.
    Charge,
    /// `capture(paymentInfo, amount, feeBps, feeReceiver)`.
    Capture,
    /// `void(paymentInfo)`.
    Void,
    /// `refund(paymentInfo, amount, collector, data)`.
    Refund,
    /// `captureBatch(requests)`.
    CaptureBatch,
    /// `voidBatch(paymentInfos)`.
    VoidBatch,
    /// A zero-value self-transfer that fills a nonce that can never be used otherwise.
    NonceFill,
    /// An ERC-3009 `transferWithAuthorization` of an `exact` payment (no payment row; found again
    /// by its intent key, see [`Store::enqueue_keyed_tx`]).
    Transfer,
    /// An ERC-20 `approve` (the refund float's allowance to the refund collector; no payment row).
    Approve,
}

/// Where a chain transaction is in the pipeline (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    /// Written, no nonce yet.
    Queued,
    /// Claimed by the signer's lease holder with a reserved nonce; not signed yet.
    Reserved,
    /// At least one attempt is signed and stored; maybe not sent.
    Signed,
    /// An attempt was handed to the node.
    Broadcast,
    /// A receipt exists (successful or not; see `succeeded`); not yet deep enough to be final.
    Mined,
    /// Mined successfully and confirmed to the configured depth.
    Final,
    /// Mined with a failed receipt and confirmed to the configured depth.
    Reverted,
    /// Given up: never sent, or its nonce was used by another transaction.
    Abandoned,
}

macro_rules! text_enum {
    ($ty:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The database spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = $crate::lifecycle::ParseEnumError;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err($crate::lifecycle::ParseEnumError { kind: $kind, value: other.to_owned() }),
                }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(TxKind, "tx kind", {
    Authorize => "authorize", Charge => "charge", Capture => "capture", Void => "void",
    Refund => "refund", CaptureBatch => "capture_batch", VoidBatch => "void_batch",
    NonceFill => "nonce_fill", Transfer => "transfer", Approve => "approve",
});

text_enum!(TxStatus, "tx status", {
    Queued => "queued", Reserved => "reserved", Signed => "signed", Broadcast => "broadcast",
    Mined => "mined", Final => "final", Reverted => "reverted", Abandoned => "abandoned",
});

impl TxStatus {
    /// Nothing more will happen to it.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            TxStatus::Final | TxStatus::Reverted | TxStatus::Abandoned
        )
    }
}

/// An outbox row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChainTx {
    /// The chain.
    pub chain_id: u64,
    /// The key that will sign it.
    pub signer: Address,
    /// What it does.
    pub kind: TxKind,
    /// The payment it acts on (set automatically by payment inserts and transitions).
    pub payment_id: Option<Uuid>,
    /// The call's arguments as JSON (for humans, `reconcile` and re-encoding).
    pub request: serde_json::Value,
    /// The contract called.
    pub to: Address,
    /// ABI-encoded call.
    pub calldata: Bytes,
    /// Wei sent along (zero for every escrow call).
    pub value: U256,
    /// A fixed gas limit, or `None` to estimate at signing time.
    pub gas_limit: Option<u64>,
}

/// An outbox row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTx {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// The chain.
    pub chain_id: u64,
    /// The signing key's address.
    pub signer: Address,
    /// What it does.
    pub kind: TxKind,
    /// The payment it acts on.
    pub payment_id: Option<Uuid>,
    /// The call's arguments.
    pub request: serde_json::Value,
    /// The contract called.
    pub to: Address,
    /// ABI-encoded call.
    pub calldata: Bytes,
    /// Wei sent along.
    pub value: U256,
    /// Fixed gas limit, if any.
    pub gas_limit: Option<u64>,
    /// The reserved nonce (`None` while queued).
    pub nonce: Option<u64>,
    /// Pipeline status.
    pub status: TxStatus,
    /// Receipt status once mined.
    pub succeeded: Option<bool>,
    /// Decoded revert reason (custom error name and arguments).
    pub revert_reason: Option<String>,
    /// The attempt that was mined.
    pub mined_tx_hash: Option<B256>,
    /// Block it was mined in.
    pub block_number: Option<u64>,
    /// Hash of that block (to notice reorgs).
    pub block_hash: Option<B256>,
    /// Gas used by the receipt.
    pub gas_used: Option<u64>,
    /// Effective gas price of the receipt (wei).
    pub effective_gas_price: Option<u128>,
    /// Signed attempts so far.
    pub attempts: i64,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

/// A signed attempt to record before broadcasting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTxAttempt {
    /// Its hash.
    pub tx_hash: B256,
    /// The signed bytes (EIP-2718 envelope), for re-broadcast without re-signing.
    pub raw_tx: Bytes,
    /// EIP-1559 max fee per gas (wei).
    pub max_fee_per_gas: u128,
    /// EIP-1559 priority fee (wei).
    pub max_priority_fee_per_gas: u128,
}

/// A signed attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxAttempt {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// The chain transaction it belongs to.
    pub chain_tx_id: Uuid,
    /// Its hash.
    pub tx_hash: B256,
    /// The signed bytes.
    pub raw_tx: Bytes,
    /// Max fee per gas (wei).
    pub max_fee_per_gas: u128,
    /// Priority fee (wei).
    pub max_priority_fee_per_gas: u128,
    /// When it was signed and stored (unix ms).
    pub created_at: i64,
    /// When it was last handed to the node (unix ms).
    pub broadcast_at: Option<i64>,
}

/// What a receipt says, for [`Store::mark_mined`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinedReceipt {
    /// The attempt that was mined.
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: B256,
    /// Gas used.
    pub gas_used: u64,
    /// Effective gas price (wei).
    pub effective_gas_price: u128,
    /// Receipt status.
    pub succeeded: bool,
    /// Decoded revert reason for a failed receipt.
    pub revert_reason: Option<String>,
}

/// A signer: its next nonce and who holds its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The chain.
    pub chain_id: u64,
    /// The key's address.
    pub address: Address,
    /// The nonce the next reservation gets.
    pub next_nonce: u64,
    /// The instance that holds the lease, if any.
    pub lease_owner: Option<String>,
    /// When that lease runs out (unix ms).
    pub lease_expires_at: Option<i64>,
    /// Last change (unix ms).
    pub updated_at: i64,
}

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The chain.
    pub chain_id: u64,
    /// The signer.
    pub signer: Address,
    /// The holder.
    pub owner: String,
    /// When it runs out unless renewed (unix ms).
    pub expires_at: i64,
}

pub(super) const TX_COLUMNS: &str = "id, chain_id, signer, kind, payment_id, request, to_address, calldata, value, \
    gas_limit, nonce, status, succeeded, revert_reason, mined_tx_hash, block_number, block_hash, gas_used, \
    effective_gas_price, attempts, created_at, updated_at";

pub(super) fn tx_from_row(row: &AnyRow) -> Result<ChainTx> {
    Ok(ChainTx {
        id: get_uuid(row, "id")?,
        chain_id: get_u64(row, "chain_id")?,
        signer: codec::get_addr(row, "signer")?,
        kind: codec::get_parsed(row, "kind")?,
        payment_id: codec::get_opt_uuid(row, "payment_id")?,
        request: codec::get_json(row, "request")?,
        to: codec::get_addr(row, "to_address")?,
        calldata: codec::get_bytes(row, "calldata")?,
        value: codec::get_u256(row, "value")?,
        gas_limit: codec::get_opt_u64(row, "gas_limit")?,
        nonce: codec::get_opt_u64(row, "nonce")?,
        status: codec::get_parsed(row, "status")?,
        succeeded: get_opt_i64(row, "succeeded")?.map(|v| v != 0),
        revert_reason: get_opt_str(row, "revert_reason")?,
        mined_tx_hash: codec::get_opt_b256(row, "mined_tx_hash")?,
        block_number: codec::get_opt_u64(row, "block_number")?,
        block_hash: codec::get_opt_b256(row, "block_hash")?,
        gas_used: codec::get_opt_u64(row, "gas_used")?,
        effective_gas_price: codec::get_opt_u128(row, "effective_gas_price")?,
        attempts: get_i64(row, "attempts")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
    })
}

const ATTEMPT_COLUMNS: &str = "id, chain_tx_id, tx_hash, raw_tx, max_fee_per_gas, max_priority_fee_per_gas, created_at, broadcast_at";

fn attempt_from_row(row: &AnyRow) -> Result<TxAttempt> {
    Ok(TxAttempt {
        id: get_uuid(row, "id")?,
        chain_tx_id: get_uuid(row, "chain_tx_id")?,
        tx_hash: codec::get_b256(row, "tx_hash")?,
        raw_tx: codec::get_bytes(row, "raw_tx")?,
        max_fee_per_gas: codec::get_u128(row, "max_fee_per_gas")?,
        max_priority_fee_per_gas: codec::get_u128(row, "max_priority_fee_per_gas")?,
        created_at: get_i64(row, "created_at")?,
        broadcast_at: get_opt_i64(row, "broadcast_at")?,
    })
}

const SIGNER_COLUMNS: &str =
    "chain_id, address, next_nonce, lease_owner, lease_expires_at, updated_at";

fn signer_from_row(row: &AnyRow) -> Result<Signer> {
    Ok(Signer {
        chain_id: get_u64(row, "chain_id")?,
        address: codec::get_addr(row, "address")?,
        next_nonce: get_u64(row, "next_nonce")?,
        lease_owner: get_opt_str(row, "lease_owner")?,
        lease_expires_at: get_opt_i64(row, "lease_expires_at")?,
        updated_at: get_i64(row, "updated_at")?,
    })
}

/// Inserts a queued outbox row (or a reserved one when `nonce` is given: nonce fills), with its
/// intent key when it has one.
async fn insert_with(
    conn: &mut AnyConnection,
    now: i64,
    id: Uuid,
    new: &NewChainTx,
    nonce: Option<u64>,
    intent_key: Option<&str>,
) -> Result<ChainTx> {
    let status = if nonce.is_some() {
        TxStatus::Reserved
    } else {
        TxStatus::Queued
    };
    let request = serde_json::to_string(&new.request).map_err(|e| StoreError::Decode {
        column: "request",
        message: e.to_string(),
    })?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO chain_txs (id, chain_id, signer, kind, payment_id, request, to_address, calldata, value, \
             gas_limit, nonce, status, created_at, updated_at, intent_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) \
         RETURNING {TX_COLUMNS}"
    )))
    .bind(codec::uuid(&id))
    .bind(codec::int(new.chain_id))
    .bind(codec::addr(&new.signer))
    .bind(new.kind.as_str())
    .bind(new.payment_id.as_ref().map(codec::uuid))
    .bind(request)
    .bind(codec::addr(&new.to))
    .bind(codec::bytes(&new.calldata))
    .bind(new.value.to_string())
    .bind(new.gas_limit.map(codec::int))
    .bind(nonce.map(codec::int))
    .bind(status.as_str())
    .bind(now)
    .bind(intent_key)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match intent_key {
        Some(key) => codec::conflict_or(e, "chain tx", format!("intent {key} already queued")),
        None => codec::conflict_or(e, "chain tx", format!("nonce {nonce:?} of {:#x} already taken", new.signer)),
    })?;
    tx_from_row(&row)
}

/// Inserts a queued outbox row with the given id.
pub(super) async fn insert(
    conn: &mut AnyConnection,
    now: i64,
    id: Uuid,
    new: &NewChainTx,
) -> Result<ChainTx> {
    insert_with(conn, now, id, new, None, None).await
}

pub(super) async fn get(conn: &mut AnyConnection, id: Uuid) -> Result<ChainTx> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TX_COLUMNS} FROM chain_txs WHERE id = $1"
    )))
    .bind(codec::uuid(&id))
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => tx_from_row(&row),
        None => Err(StoreError::NotFound {
            entity: "chain tx",
            key: id.to_string(),
        }),
    }
}

/// A payment's transactions: its own rows (except single rows merged into a batch) and the
/// batch rows that carry it, oldest first.
pub(super) async fn for_payment(
    conn: &mut AnyConnection,
    payment_id: Uuid,
) -> Result<Vec<ChainTx>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TX_COLUMNS} FROM chain_txs \
         WHERE (payment_id = $1 \
                AND NOT EXISTS (SELECT 1 FROM chain_tx_members m WHERE m.source_tx_id = chain_txs.id)) \
            OR id IN (SELECT m.batch_tx_id FROM chain_tx_members m WHERE m.payment_id = $1) \
         ORDER BY id"
    )))
    .bind(codec::uuid(&payment_id))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(tx_from_row).collect()
}

/// Runs a guarded status update (`… WHERE id = $1 AND status IN (…) RETURNING …`); when no row
/// matches, reports the status the row is actually in.
async fn guarded(
    conn: &mut AnyConnection,
    id: Uuid,
    action: &'static str,
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
) -> Result<ChainTx> {
    match query.fetch_optional(&mut *conn).await? {
        Some(row) => tx_from_row(&row),
        None => {
            let current = get(conn, id).await?;
            Err(StoreError::TxState {
                id,
                status: current.status,
                action,
            })
        }
    }
}

/// Reserves the signer's next nonce, fenced by its lease: the update matches only while `owner`
/// holds an unexpired lease, so an instance whose lease ran out cannot hand out nonces.
async fn reserve_nonce(
    conn: &mut AnyConnection,
    now: i64,
    chain_id: u64,
    signer: Address,
    owner: &str,
) -> Result<u64> {
    let row = sqlx::query(
        "UPDATE signers SET next_nonce = next_nonce + 1, updated_at = $4 \
         WHERE chain_id = $1 AND address = $2 AND lease_owner = $3 AND lease_expires_at > $4 \
         RETURNING next_nonce - 1 AS nonce",
    )
    .bind(codec::int(chain_id))
    .bind(codec::addr(&signer))
    .bind(owner)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => get_u64(&row, "nonce"),
        None => Err(StoreError::LeaseNotHeld {
            chain_id,
            signer: codec::addr(&signer),
            owner: owner.to_owned(),
        }),
    }
}

impl StoreTx {
    /// Writes a queued outbox row.
    pub async fn enqueue_tx(&mut self, new: &NewChainTx) -> Result<ChainTx> {
        let now = self.now_ms();
        insert(self.conn(), now, Uuid::now_v7(), new).await
    }

    /// Takes the signer's oldest queued transaction and reserves the signer's next nonce for it,
    /// in this one transaction (`queued` → `reserved`). `owner` must hold the signer's lease
    /// ([`StoreError::LeaseNotHeld`] otherwise). Two concurrent claimers never get the same row
    /// (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one writer at a time) and always get
    /// distinct nonces. `None` when nothing is queued.
    pub async fn claim_next_tx(
        &mut self,
        chain_id: u64,
        signer: Address,
        owner: &str,
    ) -> Result<Option<ChainTx>> {
        self.claim_next_tx_where(chain_id, signer, owner, i64::MAX, None)
            .await
    }

    /// [`StoreTx::claim_next_tx`], holding back single capture / void rows of a payment created
    /// after `hold_after` (batching; `i64::MAX` holds nothing back); with `only`, just that row
    /// (if queued), held or not.
    pub(super) async fn claim_next_tx_where(
        &mut self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        hold_after: i64,
        only: Option<Uuid>,
    ) -> Result<Option<ChainTx>> {
        let now = self.now_ms();
        // Rows waiting for company in a batch: young single captures / voids of a payment that
        // are not the fallback of a failed batch.
        const HELD: &str = "NOT (kind IN ('capture', 'void') AND payment_id IS NOT NULL AND created_at > $3 \
             AND NOT EXISTS (SELECT 1 FROM chain_tx_members m WHERE m.fallback_tx_id = chain_txs.id))";
        let (hold_after, held) = match only {
            // `$3` is i64::MAX here: every row qualifies.
            Some(_) => (i64::MAX, "id = $4 AND created_at <= $3"),
            None => (hold_after, HELD),
        };
        let pick = match self.backend {
            Backend::Postgres => format!(
                "SELECT id FROM chain_txs WHERE chain_id = $1 AND signer = $2 AND status = 'queued' \
                 AND {held} ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            Backend::Sqlite => format!(
                "SELECT id FROM chain_txs WHERE chain_id = $1 AND signer = $2 AND status = 'queued' \
                 AND {held} ORDER BY created_at, id LIMIT 1"
            ),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(pick))
            .bind(codec::int(chain_id))
            .bind(codec::addr(&signer))
            .bind(hold_after);
        if let Some(id) = &only {
            query = query.bind(codec::uuid(id));
        }
        let Some(row) = query.fetch_optional(self.conn()).await? else {
            return Ok(None);
        };
        let id = get_uuid(&row, "id")?;
        let nonce = reserve_nonce(self.conn(), now, chain_id, signer, owner).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE chain_txs SET nonce = $2, status = 'reserved', updated_at = $3 \
             WHERE id = $1 AND status = 'queued' RETURNING {TX_COLUMNS}"
        )))
        .bind(codec::uuid(&id))
        .bind(codec::int(nonce))
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        let tx = tx_from_row(&row)?;
        tracing::debug!(chain_tx = %id, nonce, signer = %signer, "nonce reserved");
        Ok(Some(tx))
    }

    /// Abandons `original_id` (a reserved nonce that can never be sent as is) and gives its nonce
    /// to `fill`, a [`TxKind::NonceFill`] transaction written as `reserved`.
    pub async fn replace_with_nonce_fill(
        &mut self,
        original_id: Uuid,
        fill: &NewChainTx,
    ) -> Result<ChainTx> {
        let original = self
            .mark_abandoned(original_id, "replaced by a nonce fill")
            .await?;
        let Some(nonce) = original.nonce else {
            return Err(StoreError::TxState {
                id: original_id,
                status: TxStatus::Queued,
                action: "fill nonce",
            });
        };
        let now = self.now_ms();
        let fill = NewChainTx {
            kind: TxKind::NonceFill,
            chain_id: original.chain_id,
            signer: original.signer,
            ..fill.clone()
        };
        insert_with(self.conn(), now, Uuid::now_v7(), &fill, Some(nonce), None).await
    }

    /// A `reserved` transaction refused before it was ever signed or sent (its gas estimate
    /// reverted): recorded as `reverted` (`succeeded` = 0, `revert_reason` = `reason`, no
    /// receipt) and its nonce moved to `fill`, a [`TxKind::NonceFill`] written as `reserved`, in
    /// this one transaction. The rejected row keeps no nonce (it never used one on chain), so the
    /// per-signer nonce stays gap-free. Returns `(rejected, fill)`. (Added for the relayer.)
    pub async fn reject_with_nonce_fill(
        &mut self,
        original_id: Uuid,
        reason: &str,
        fill: &NewChainTx,
    ) -> Result<(ChainTx, ChainTx)> {
        let original = get(self.conn(), original_id).await?;
        let (TxStatus::Reserved, Some(nonce)) = (original.status, original.nonce) else {
            return Err(StoreError::TxState {
                id: original_id,
                status: original.status,
                action: "reject before sending",
            });
        };
        let now = self.now_ms();
        let rejected = guarded(
            self.conn(),
            original_id,
            "reject before sending",
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE chain_txs SET status = 'reverted', succeeded = 0, revert_reason = $2, nonce = NULL, \
                     updated_at = $3 \
                 WHERE id = $1 AND status = 'reserved' RETURNING {TX_COLUMNS}"
            )))
            .bind(codec::uuid(&original_id))
            .bind(reason)
            .bind(now),
        )
        .await?;
        let fill = NewChainTx {
            kind: TxKind::NonceFill,
            chain_id: original.chain_id,
            signer: original.signer,
            ..fill.clone()
        };
        let fill = insert_with(self.conn(), now, Uuid::now_v7(), &fill, Some(nonce), None).await?;
        Ok((rejected, fill))
    }

    /// Stores a signed attempt (`reserved` → `signed`; later attempts keep the status) and counts it.
    pub async fn record_attempt(
        &mut self,
        chain_tx_id: Uuid,
        attempt: &NewTxAttempt,
    ) -> Result<TxAttempt> {
        let now = self.now_ms();
        guarded(
            self.conn(),
            chain_tx_id,
            "record an attempt",
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE chain_txs SET attempts = attempts + 1, updated_at = $2, \
                     status = CASE status WHEN 'reserved' THEN 'signed' ELSE status END \
                 WHERE id = $1 AND status IN ('reserved', 'signed', 'broadcast') RETURNING {TX_COLUMNS}"
            )))
            .bind(codec::uuid(&chain_tx_id))
            .bind(now),
        )
        .await?;
        let id = Uuid::now_v7();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tx_attempts (id, chain_tx_id, tx_hash, raw_tx, max_fee_per_gas, max_priority_fee_per_gas, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {ATTEMPT_COLUMNS}"
        )))
        .bind(codec::uuid(&id))
        .bind(codec::uuid(&chain_tx_id))
        .bind(codec::b256(&attempt.tx_hash))
        .bind(codec::bytes(&attempt.raw_tx))
        .bind(attempt.max_fee_per_gas.to_string())
        .bind(attempt.max_priority_fee_per_gas.to_string())
        .bind(now)
        .fetch_one(self.conn())
        .await
        .map_err(|e| codec::conflict_or(e, "tx attempt", format!("hash {:#x} already recorded", attempt.tx_hash)))?;
        attempt_from_row(&row)
    }

    /// Notes that `tx_hash` was handed to the node (`signed` → `broadcast`; idempotent).
    pub async fn mark_broadcast(&mut self, chain_tx_id: Uuid, tx_hash: B256) -> Result<ChainTx> {
        let now = self.now_ms();
        let updated = sqlx::query(
            "UPDATE tx_attempts SET broadcast_at = $3 WHERE chain_tx_id = $1 AND tx_hash = $2",
        )
        .bind(codec::uuid(&chain_tx_id))
        .bind(codec::b256(&tx_hash))
        .bind(now)
        .execute(self.conn())
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                entity: "tx attempt",
                key: format!("{tx_hash:#x}"),
            });
        }
        guarded(
            self.conn(),
            chain_tx_id,
            "mark broadcast",
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE chain_txs SET status = 'broadcast', updated_at = $2 \
                 WHERE id = $1 AND status IN ('signed', 'broadcast') RETURNING {TX_COLUMNS}"
            )))
            .bind(codec::uuid(&chain_tx_id))
            .bind(now),
        )
        .await
    }

    /// Records a receipt (`signed` / `broadcast` / `mined` → `mined`). A transaction found mined
    /// after a crash before `mark_broadcast` goes straight from `signed`.
    pub async fn mark_mined(
        &mut self,
        chain_tx_id: Uuid,
        receipt: &MinedReceipt,
    ) -> Result<ChainTx> {
        let now = self.now_ms();
        guarded(
            self.conn(),
            chain_tx_id,
            "mark mined",
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE chain_txs SET status = 'mined', mined_tx_hash = $2, block_number = $3, block_hash = $4, \
                     gas_used = $5, effective_gas_price = $6, succeeded = $7, revert_reason = $8, updated_at = $9 \
                 WHERE id = $1 AND status IN ('signed', 'broadcast', 'mined') RETURNING {TX_COLUMNS}"
            )))
            .bind(codec::uuid(&chain_tx_id))
            .bind(codec::b256(&receipt.tx_hash))
            .bind(codec::int(receipt.block_number))
            .bind(codec::b256(&receipt.block_hash))
            .bind(codec::int(receipt.gas_used))
            .bind(receipt.effective_gas_price.to_string())
            .bind(i64::from(receipt.succeeded))
            .bind(receipt.revert_reason.clone())
            .bind(now),
        )
        .await
    }

    /// A reorg dropped the block it was mined in: back to `broadcast`, receipt fields cleared.
    pub async fn mark_unmined(&mut self, chain_tx_id: Uuid) -> Result<ChainTx> {
        let now = self.now_ms();
        guarded(
            self.conn(),
            chain_tx_id,
            "mark unmined",
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE chain_txs SET status = 'broadcast', mined_tx_hash = NULL, block_number = NULL, \
                     block_hash = NULL, gas_used = NULL, effective_gas_price = NULL, succeeded = NULL, \
                     revert_reason = NULL, updated_at = $2 \
                 WHERE id = $1 AND status = 'mined' RETURNING {TX_COLUMNS}"
            )))
            .bind(codec::uuid(&chain_tx_id))
            .bind(now),
        )
        .await
    }

    /// Deep enough: `mined` → `final` (successful receipt) or `reverted` (failed receipt).
    pub async fn mark_final(&mut self, chain_tx_id: Uuid) -> Result<ChainTx> {
        let now = self.now_ms();
        guarded(
            self.conn(),
            chain_tx_id,
            "mark final",
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE chain_txs SET status = CASE succeeded WHEN 1 THEN 'final' ELSE 'reverted' END, \
                     updated_at = $2 \
                 WHERE id = $1 AND status = 'mined' RETURNING {TX_COLUMNS}"
            )))
            .bind(codec::uuid(&chain_tx_id))
            .bind(now),
        )
        .await
    }

    /// Gives up on a transaction that was never mined (`reason` goes to `revert_reason`).
    pub async fn mark_abandoned(&mut self, chain_tx_id: Uuid, reason: &str) -> Result<ChainTx> {
        let now = self.now_ms();
        guarded(
            self.conn(),
            chain_tx_id,
            "abandon",
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE chain_txs SET status = 'abandoned', revert_reason = $2, updated_at = $3 \
                 WHERE id = $1 AND status IN ('queued', 'reserved', 'signed', 'broadcast') RETURNING {TX_COLUMNS}"
            )))
            .bind(codec::uuid(&chain_tx_id))
            .bind(reason)
            .bind(now),
        )
        .await
    }
}

impl Store {
    /// Writes a queued outbox row.
    pub async fn enqueue_tx(&self, new: &NewChainTx) -> Result<ChainTx> {
        in_tx!(self, |tx| tx.enqueue_tx(new).await?)
    }

    /// See [`StoreTx::claim_next_tx`].
    pub async fn claim_next_tx(
        &self,
        chain_id: u64,
        signer: Address,
        owner: &str,
    ) -> Result<Option<ChainTx>> {
        in_tx!(self, |tx| tx.claim_next_tx(chain_id, signer, owner).await?)
    }

    /// See [`StoreTx::replace_with_nonce_fill`].
    pub async fn replace_with_nonce_fill(
        &self,
        original_id: Uuid,
        fill: &NewChainTx,
    ) -> Result<ChainTx> {
        in_tx!(self, |tx| tx
            .replace_with_nonce_fill(original_id, fill)
            .await?)
    }

    /// See [`StoreTx::reject_with_nonce_fill`].
    pub async fn reject_with_nonce_fill(
        &self,
        original_id: Uuid,
        reason: &str,
        fill: &NewChainTx,
    ) -> Result<(ChainTx, ChainTx)> {
        in_tx!(self, |tx| tx
            .reject_with_nonce_fill(original_id, reason, fill)
            .await?)
    }

    /// The signer's settled transactions (`final`, `reverted`, `abandoned`) that a payment still
    /// points at (`payments.pending_tx_id`): outcomes the engine may not have handled yet (the
    /// relayer re-announces them when it takes the lease). (Added for the relayer.)
    pub async fn settled_txs_awaiting_engine(
        &self,
        chain_id: u64,
        signer: Address,
    ) -> Result<Vec<ChainTx>> {
        let columns = TX_COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM chain_txs t JOIN payments p ON p.pending_tx_id = t.id \
             WHERE t.chain_id = $1 AND t.signer = $2 AND t.status IN ('final', 'reverted', 'abandoned') \
             ORDER BY t.id"
        )))
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tx_from_row).collect()
    }

    /// Nonces from `from_nonce` up that were reserved, then abandoned, and that no live row
    /// holds: gaps that stall every later nonce until filled ([`Store::fill_nonce`]). (Added for
    /// the relayer.)
    pub async fn abandoned_nonce_gaps(
        &self,
        chain_id: u64,
        signer: Address,
        from_nonce: u64,
    ) -> Result<Vec<u64>> {
        let rows = sqlx::query(
            "SELECT DISTINCT a.nonce AS nonce FROM chain_txs a \
             WHERE a.chain_id = $1 AND a.signer = $2 AND a.status = 'abandoned' \
               AND a.nonce IS NOT NULL AND a.nonce >= $3 \
               AND NOT EXISTS (SELECT 1 FROM chain_txs l WHERE l.chain_id = a.chain_id AND l.signer = a.signer \
                               AND l.nonce = a.nonce AND l.status <> 'abandoned') \
             ORDER BY a.nonce",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .bind(codec::int(from_nonce))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| get_u64(r, "nonce")).collect()
    }

    /// Writes `fill` as a `reserved` [`TxKind::NonceFill`] holding `nonce` (a gap left by an
    /// abandoned row). A live row already holding the nonce makes it a `Conflict`. (Added for the
    /// relayer.)
    pub async fn fill_nonce(&self, fill: &NewChainTx, nonce: u64) -> Result<ChainTx> {
        let now = self.now_ms();
        let fill = NewChainTx {
            kind: TxKind::NonceFill,
            ..fill.clone()
        };
        in_tx!(self, |tx| insert_with(
            tx.conn(),
            now,
            Uuid::now_v7(),
            &fill,
            Some(nonce),
            None
        )
        .await?)
    }

    /// The outbox row written for `intent_key` ([`Store::enqueue_keyed_tx`]), if any.
    pub async fn tx_by_intent_key(&self, intent_key: &str) -> Result<Option<ChainTx>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TX_COLUMNS} FROM chain_txs WHERE intent_key = $1"
        )))
        .bind(intent_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(tx_from_row).transpose()
    }

    /// Writes a queued outbox row that stands for `intent_key` (a row without a payment, such as
    /// an `exact` transfer: what it stands for is unique), or finds the row already written for
    /// it (by this process before a restart, or by another instance racing it). Returns the row
    /// and whether it was written now.
    pub async fn enqueue_keyed_tx(
        &self,
        intent_key: &str,
        new: &NewChainTx,
    ) -> Result<(ChainTx, bool)> {
        if let Some(existing) = self.tx_by_intent_key(intent_key).await? {
            return Ok((existing, false));
        }
        let now = self.now_ms();
        let written: Result<ChainTx> = in_tx!(self, |tx| insert_with(
            tx.conn(),
            now,
            Uuid::now_v7(),
            new,
            None,
            Some(intent_key)
        )
        .await?);
        match written {
            Ok(row) => Ok((row, true)),
            Err(conflict @ StoreError::Conflict { .. }) => {
                match self.tx_by_intent_key(intent_key).await? {
                    Some(existing) => Ok((existing, false)),
                    None => Err(conflict),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// See [`StoreTx::record_attempt`].
    pub async fn record_attempt(
        &self,
        chain_tx_id: Uuid,
        attempt: &NewTxAttempt,
    ) -> Result<TxAttempt> {
        in_tx!(self, |tx| tx.record_attempt(chain_tx_id, attempt).await?)
    }

    /// [`StoreTx::record_attempt`] for several rows in one transaction (in the given order).
    pub async fn record_attempts(
        &self,
        attempts: &[(Uuid, NewTxAttempt)],
    ) -> Result<Vec<TxAttempt>> {
        in_tx!(self, |tx| {
            let mut stored = Vec::with_capacity(attempts.len());
            for (chain_tx_id, attempt) in attempts {
                stored.push(tx.record_attempt(*chain_tx_id, attempt).await?);
            }
            stored
        })
    }

    /// [`StoreTx::mark_broadcast`] for several rows in one transaction (in the given order).
    pub async fn mark_broadcasts(&self, sent: &[(Uuid, B256)]) -> Result<Vec<ChainTx>> {
        in_tx!(self, |tx| {
            let mut rows = Vec::with_capacity(sent.len());
            for (chain_tx_id, tx_hash) in sent {
                rows.push(tx.mark_broadcast(*chain_tx_id, *tx_hash).await?);
            }
            rows
        })
    }

    /// See [`StoreTx::mark_broadcast`].
    pub async fn mark_broadcast(&self, chain_tx_id: Uuid, tx_hash: B256) -> Result<ChainTx> {
        in_tx!(self, |tx| tx.mark_broadcast(chain_tx_id, tx_hash).await?)
    }

    /// See [`StoreTx::mark_mined`].
    pub async fn mark_mined(&self, chain_tx_id: Uuid, receipt: &MinedReceipt) -> Result<ChainTx> {
        in_tx!(self, |tx| tx.mark_mined(chain_tx_id, receipt).await?)
    }

    /// [`StoreTx::mark_mined`] then [`StoreTx::mark_final`] in one transaction: a receipt that
    /// is already deep enough when it is found (one confirmation) settles with one write.
    pub async fn mark_mined_final(
        &self,
        chain_tx_id: Uuid,
        receipt: &MinedReceipt,
    ) -> Result<ChainTx> {
        in_tx!(self, |tx| {
            tx.mark_mined(chain_tx_id, receipt).await?;
            tx.mark_final(chain_tx_id).await?
        })
    }

    /// See [`StoreTx::mark_unmined`].
    pub async fn mark_unmined(&self, chain_tx_id: Uuid) -> Result<ChainTx> {
        in_tx!(self, |tx| tx.mark_unmined(chain_tx_id).await?)
    }

    /// See [`StoreTx::mark_final`].
    pub async fn mark_final(&self, chain_tx_id: Uuid) -> Result<ChainTx> {
        in_tx!(self, |tx| tx.mark_final(chain_tx_id).await?)
    }

    /// See [`StoreTx::mark_abandoned`].
    pub async fn mark_abandoned(&self, chain_tx_id: Uuid, reason: &str) -> Result<ChainTx> {
        in_tx!(self, |tx| tx.mark_abandoned(chain_tx_id, reason).await?)
    }

    /// The chain transaction with this id.
    pub async fn get_tx(&self, id: Uuid) -> Result<ChainTx> {
        get(&mut *self.conn().await?, id).await
    }

    /// Every attempt of a chain transaction, oldest first (all hashes to look receipts up for).
    pub async fn attempts_for(&self, chain_tx_id: Uuid) -> Result<Vec<TxAttempt>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM tx_attempts WHERE chain_tx_id = $1 ORDER BY created_at, id"
        )))
        .bind(codec::uuid(&chain_tx_id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    /// The attempt with this hash, if any.
    pub async fn attempt_by_hash(&self, tx_hash: B256) -> Result<Option<TxAttempt>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM tx_attempts WHERE tx_hash = $1"
        )))
        .bind(codec::b256(&tx_hash))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(attempt_from_row).transpose()
    }

    /// The signer's transactions that hold a nonce and are not settled (`reserved`, `signed`,
    /// `broadcast`, `mined`), by nonce: what a new lease holder resumes.
    pub async fn txs_in_flight(&self, chain_id: u64, signer: Address) -> Result<Vec<ChainTx>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TX_COLUMNS} FROM chain_txs \
             WHERE chain_id = $1 AND signer = $2 AND status IN ('reserved', 'signed', 'broadcast', 'mined') \
             ORDER BY nonce, id"
        )))
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tx_from_row).collect()
    }

    /// How many transactions are queued (not yet claimed) for a signer (metrics).
    pub async fn queued_tx_count(&self, chain_id: u64, signer: Address) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM chain_txs WHERE chain_id = $1 AND signer = $2 AND status = 'queued'",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .fetch_one(&self.pool)
        .await?;
        get_i64(&row, "n")
    }

    /// Creates the signer row if missing, and raises `next_nonce` to at least `chain_nonce` (the
    /// chain's pending nonce: transactions sent by this key from elsewhere move it forward; it
    /// never moves back).
    pub async fn upsert_signer(
        &self,
        chain_id: u64,
        address: Address,
        chain_nonce: u64,
    ) -> Result<Signer> {
        let now = self.now_ms();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO signers (chain_id, address, next_nonce, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (chain_id, address) DO UPDATE SET \
                 next_nonce = CASE WHEN signers.next_nonce < excluded.next_nonce \
                                   THEN excluded.next_nonce ELSE signers.next_nonce END, \
                 updated_at = excluded.updated_at \
             RETURNING {SIGNER_COLUMNS}"
        )))
        .bind(codec::int(chain_id))
        .bind(codec::addr(&address))
        .bind(codec::int(chain_nonce))
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        signer_from_row(&row)
    }

    /// The signer row, if any.
    pub async fn get_signer(&self, chain_id: u64, address: Address) -> Result<Option<Signer>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SIGNER_COLUMNS} FROM signers WHERE chain_id = $1 AND address = $2"
        )))
        .bind(codec::int(chain_id))
        .bind(codec::addr(&address))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(signer_from_row).transpose()
    }

    /// Takes (or renews) the signer's lease for `ttl_ms` if it is free, expired, or already
    /// `owner`'s. `None` when another instance holds a live lease. The signer row must exist
    /// ([`Store::upsert_signer`]).
    pub async fn acquire_lease(
        &self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<Option<Lease>> {
        let now = self.now_ms();
        // One statement: PostgreSQL re-evaluates the WHERE clause on the latest row version after
        // waiting for a concurrent updater, so two contenders can never both match.
        let row = sqlx::query(
            "UPDATE signers SET lease_owner = $3, lease_expires_at = $5, updated_at = $4 \
             WHERE chain_id = $1 AND address = $2 \
               AND (lease_owner IS NULL OR lease_owner = $3 OR lease_expires_at IS NULL OR lease_expires_at <= $4) \
             RETURNING lease_expires_at",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .bind(owner)
        .bind(now)
        .bind(now.saturating_add(ttl_ms))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at = get_i64(&row, "lease_expires_at")?;
        tracing::debug!(chain_id, signer = %signer, owner, expires_at, "signer lease held");
        Ok(Some(Lease {
            chain_id,
            signer,
            owner: owner.to_owned(),
            expires_at,
        }))
    }

    /// Extends a lease `owner` still holds. Fails with [`StoreError::LeaseNotHeld`] once it has
    /// expired (even if nobody took it): the holder must stop and re-acquire, re-reading state.
    pub async fn renew_lease(
        &self,
        chain_id: u64,
        signer: Address,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<Lease> {
        let now = self.now_ms();
        let row = sqlx::query(
            "UPDATE signers SET lease_expires_at = $5, updated_at = $4 \
             WHERE chain_id = $1 AND address = $2 AND lease_owner = $3 AND lease_expires_at > $4 \
             RETURNING lease_expires_at",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .bind(owner)
        .bind(now)
        .bind(now.saturating_add(ttl_ms))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Lease {
                chain_id,
                signer,
                owner: owner.to_owned(),
                expires_at: get_i64(&row, "lease_expires_at")?,
            }),
            None => Err(StoreError::LeaseNotHeld {
                chain_id,
                signer: codec::addr(&signer),
                owner: owner.to_owned(),
            }),
        }
    }

    /// Gives the lease up (on shutdown) so another instance can take over at once. `false` when
    /// `owner` did not hold it.
    pub async fn release_lease(&self, chain_id: u64, signer: Address, owner: &str) -> Result<bool> {
        let now = self.now_ms();
        let done = sqlx::query(
            "UPDATE signers SET lease_owner = NULL, lease_expires_at = NULL, updated_at = $4 \
             WHERE chain_id = $1 AND address = $2 AND lease_owner = $3",
        )
        .bind(codec::int(chain_id))
        .bind(codec::addr(&signer))
        .bind(owner)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for k in [
            TxKind::Authorize,
            TxKind::Charge,
            TxKind::Capture,
            TxKind::Void,
            TxKind::Refund,
            TxKind::CaptureBatch,
            TxKind::VoidBatch,
            TxKind::NonceFill,
        ] {
            assert_eq!(k.as_str().parse::<TxKind>().unwrap(), k);
        }
        for s in [
            TxStatus::Queued,
            TxStatus::Reserved,
            TxStatus::Signed,
            TxStatus::Broadcast,
            TxStatus::Mined,
            TxStatus::Final,
            TxStatus::Reverted,
            TxStatus::Abandoned,
        ] {
            assert_eq!(s.as_str().parse::<TxStatus>().unwrap(), s);
        }
        assert!("x".parse::<TxStatus>().is_err());
    }
}
