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
//!
//! This file holds the types and their row codecs; the operations live by job: `outbox.rs`
//! (writing and reading rows, intent keys), `claim.rs` (claiming with a nonce, nonce fills),
//! `attempts.rs` (signed attempts and the status moves after signing), `signers.rs` (signers
//! and leases).

mod attempts;
mod claim;
mod outbox;
mod signers;

pub use outbox::OUTBOX_CHANNEL;

use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::Result;
use super::codec::{self, Record, get_i64, get_opt_i64, get_opt_str, get_u64, get_uuid};

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
    /// `execute(calls)` sent by the signer to itself, run by the `OperatorBatchExecutor` its
    /// account delegates to (EIP-7702): the calls of several payments' single rows, any escrow
    /// kind mixed, each made as the signer (members in `chain_tx_members`).
    Execute,
    /// The EIP-7702 transaction that delegates the signer's account to the executor (no payment
    /// row; found again by its intent key).
    Delegate,
}

impl TxKind {
    /// Rows that carry several payments (`chain_tx_members`) and fan their outcome out to them.
    pub const fn is_batch(self) -> bool {
        matches!(
            self,
            TxKind::CaptureBatch | TxKind::VoidBatch | TxKind::Execute
        )
    }

    /// How many of the signer's nonces the transaction uses: two for `delegate` (its own, and the
    /// next one, which the account's EIP-7702 authorization consumes when it is applied; the
    /// authorization is signed with it), one for everything else.
    pub const fn nonces(self) -> u64 {
        match self {
            TxKind::Delegate => 2,
            _ => 1,
        }
    }
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
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

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
    Execute => "execute", Delegate => "delegate",
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

/// An outbox row as stored: the fields it was written with (reachable directly through `Deref`,
/// e.g. `tx.kind`) and its progress through the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTx {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// What was written: chain, signer, kind, payment, request, target, calldata, value and gas
    /// limit (`payment_id` as stored).
    pub inserted: NewChainTx,
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

codec::deref_to!(ChainTx => inserted: NewChainTx);

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

/// A signed attempt as stored: the attempt (reachable directly through `Deref`, e.g.
/// `attempt.tx_hash`) and its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxAttempt {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// The chain transaction it belongs to.
    pub chain_tx_id: Uuid,
    /// The attempt: hash, signed bytes and fees.
    pub attempt: NewTxAttempt,
    /// When it was signed and stored (unix ms).
    pub created_at: i64,
    /// When it was last handed to the node (unix ms).
    pub broadcast_at: Option<i64>,
}

codec::deref_to!(TxAttempt => attempt: NewTxAttempt);

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

impl Record for ChainTx {
    const TABLE: &'static str = "chain_txs";
    const COLUMNS: &'static str = "id, chain_id, signer, kind, payment_id, request, to_address, calldata, \
        value, gas_limit, nonce, status, succeeded, revert_reason, mined_tx_hash, block_number, block_hash, \
        gas_used, effective_gas_price, attempts, created_at, updated_at";
    const ENTITY: &'static str = "chain tx";

    fn decode(row: &AnyRow) -> Result<ChainTx> {
        Ok(ChainTx {
            id: get_uuid(row, "id")?,
            inserted: NewChainTx {
                chain_id: get_u64(row, "chain_id")?,
                signer: codec::get_addr(row, "signer")?,
                kind: codec::get_parsed(row, "kind")?,
                payment_id: codec::get_opt_uuid(row, "payment_id")?,
                request: codec::get_json(row, "request")?,
                to: codec::get_addr(row, "to_address")?,
                calldata: codec::get_bytes(row, "calldata")?,
                value: codec::get_u256(row, "value")?,
                gas_limit: codec::get_opt_u64(row, "gas_limit")?,
            },
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
}

impl Record for TxAttempt {
    const TABLE: &'static str = "tx_attempts";
    const COLUMNS: &'static str = "id, chain_tx_id, tx_hash, raw_tx, max_fee_per_gas, \
        max_priority_fee_per_gas, created_at, broadcast_at";
    const ENTITY: &'static str = "tx attempt";

    fn decode(row: &AnyRow) -> Result<TxAttempt> {
        Ok(TxAttempt {
            id: get_uuid(row, "id")?,
            chain_tx_id: get_uuid(row, "chain_tx_id")?,
            attempt: NewTxAttempt {
                tx_hash: codec::get_b256(row, "tx_hash")?,
                raw_tx: codec::get_bytes(row, "raw_tx")?,
                max_fee_per_gas: codec::get_u128(row, "max_fee_per_gas")?,
                max_priority_fee_per_gas: codec::get_u128(row, "max_priority_fee_per_gas")?,
            },
            created_at: get_i64(row, "created_at")?,
            broadcast_at: get_opt_i64(row, "broadcast_at")?,
        })
    }
}

impl Record for Signer {
    const TABLE: &'static str = "signers";
    const COLUMNS: &'static str =
        "chain_id, address, next_nonce, lease_owner, lease_expires_at, updated_at";
    const ENTITY: &'static str = "signer";

    fn decode(row: &AnyRow) -> Result<Signer> {
        Ok(Signer {
            chain_id: get_u64(row, "chain_id")?,
            address: codec::get_addr(row, "address")?,
            next_nonce: get_u64(row, "next_nonce")?,
            lease_owner: get_opt_str(row, "lease_owner")?,
            lease_expires_at: get_opt_i64(row, "lease_expires_at")?,
            updated_at: get_i64(row, "updated_at")?,
        })
    }
}

pub(in crate::store) use outbox::{for_payment, get, insert};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        assert_eq!(TxKind::ALL.len(), 12);
        for k in TxKind::ALL {
            assert_eq!(k.as_str().parse::<TxKind>().unwrap(), *k);
        }
        assert_eq!(TxStatus::ALL.len(), 8);
        for s in TxStatus::ALL {
            assert_eq!(s.as_str().parse::<TxStatus>().unwrap(), *s);
        }
        assert!("x".parse::<TxStatus>().is_err());
    }
}
