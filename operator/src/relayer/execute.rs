//! The general batch path: the signer's account delegates (EIP-7702) to our
//! `OperatorBatchExecutor`, and the relayer sends several escrow calls (any mix of `authorize`,
//! `charge`, `capture`, `void`, `refund`, on any `AuthCaptureEscrow`, the canonical one
//! included) as one transaction from the signer to itself: `execute(calls)`. The executor makes
//! each call as the signer, so the escrow's `msg.sender == paymentInfo.operator` holds; a call
//! that reverts is reported in the receipt (`CallFailed(index, revertData)`) and does not undo
//! the others (the engine fans the outcome out: `engine/batch.rs`).
//!
//! Delegation is set up once per signer by a `delegate` row (an EIP-7702 transaction, signed
//! like any other row by `sender.rs`, written under an intent key so a restart or a second
//! instance finds it again). Until the signer's code designates the executor, nothing is
//! merged into `execute` rows.

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use serde_json::{Value, json};
use x402_escrow_bindings::contracts::OperatorBatchExecutor as Executor;

use crate::store::{ChainTx, NewChainTx, TxKind};

/// The EIP-7702 delegation designator: the code of a delegating account is this prefix
/// followed by the delegate's address.
const DESIGNATOR: [u8; 3] = [0xef, 0x01, 0x00];

/// Gas of the `delegate` transaction: 21,000 + 25,000 per authorization (the cost of an empty
/// account; a refund follows when the account exists) + a margin.
pub(super) const DELEGATE_GAS: u64 = 60_000;

/// Where the signer's delegation to the executor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Delegation {
    /// Not looked at yet (after start-up).
    #[default]
    Unknown,
    /// The `delegate` row (this id) is on its way; nothing else is claimed until its
    /// transaction is mined (it takes two nonces: a transaction queued behind it would wait in
    /// the node's pool for a nonce only the mined authorization fills).
    Pending(uuid::Uuid),
    /// The signer's code designates the executor: `execute` batches may go out.
    Active,
    /// The `delegate` row settled and the code still designates something else: no `execute`
    /// batches until restart (logged once).
    Unavailable,
}

/// The account an EIP-7702 designator `code` delegates to, if it is one (the relayer's check
/// before batching through the executor, and start-up's wait for the delegation).
pub(crate) fn delegated_to(code: &[u8]) -> Option<Address> {
    match code.split_at_checked(DESIGNATOR.len()) {
        Some((prefix, rest)) if prefix == DESIGNATOR && rest.len() == 20 => {
            Some(Address::from_slice(rest))
        }
        _ => None,
    }
}

/// The intent key of the `delegate` row of `signer` to `executor` on `chain_id`.
pub(super) fn delegate_key(chain_id: u64, signer: Address, executor: Address) -> String {
    format!("delegate:{chain_id}:{signer:#x}:{executor:#x}")
}

/// The `delegate` row: a transaction to the signer itself whose authorization list points the
/// account at `executor` (the authorization is signed with the row's nonce, see `sender.rs`).
pub(super) fn delegate_row(chain_id: u64, signer: Address, executor: Address) -> NewChainTx {
    NewChainTx {
        chain_id,
        signer,
        kind: TxKind::Delegate,
        payment_id: None,
        request: json!({ "call": "delegate", "executor": executor }),
        to: signer,
        calldata: Bytes::new(),
        value: U256::ZERO,
        gas_limit: Some(DELEGATE_GAS),
    }
}

/// How the request of a batch row names its member `row`: the member's payment, row and
/// request, and (`with_kind`, for `execute` rows, whose members may be of any kind) its kind.
pub(super) fn member_json(row: &ChainTx, with_kind: bool) -> Value {
    let mut member = json!({
        "paymentId": row.payment_id,
        "txId": row.id,
        "request": row.request,
    });
    if with_kind {
        member["kind"] = json!(row.kind.as_str());
    }
    member
}

/// The executor calls of `rows` (each member's own calldata to its own escrow), in order.
fn calls_of(rows: &[ChainTx]) -> Vec<Executor::Call> {
    rows.iter()
        .map(|row| Executor::Call {
            target: row.to,
            data: row.calldata.clone(),
        })
        .collect()
}

/// The `execute` row carrying `rows` (single escrow calls of payments), and the calldata of
/// the same calls through `executeAll`, which reverts on the first failing member: what the
/// batch is simulated with before it is merged.
pub(super) fn execute_row(chain_id: u64, signer: Address, rows: &[ChainTx]) -> (NewChainTx, Bytes) {
    let members: Vec<_> = rows.iter().map(|row| member_json(row, true)).collect();
    let calls = calls_of(rows);
    let simulation = Executor::executeAllCall {
        calls: calls.clone(),
    }
    .abi_encode();
    let row = NewChainTx {
        chain_id,
        signer,
        kind: TxKind::Execute,
        payment_id: None,
        request: json!({ "call": "execute", "members": members }),
        to: signer,
        calldata: Bytes::from(Executor::executeCall { calls }.abi_encode()),
        value: U256::ZERO,
        gas_limit: None,
    };
    (row, Bytes::from(simulation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn designator_is_recognised() {
        let executor = Address::repeat_byte(0x42);
        let mut code = DESIGNATOR.to_vec();
        code.extend_from_slice(executor.as_slice());
        assert_eq!(delegated_to(&code), Some(executor));
        assert_eq!(delegated_to(&[]), None);
        assert_eq!(delegated_to(&code[..22]), None);
        code[0] = 0x60;
        assert_eq!(delegated_to(&code), None);
    }

    #[test]
    fn delegate_key_names_chain_signer_and_executor() {
        let key = delegate_key(8453, Address::repeat_byte(1), Address::repeat_byte(2));
        assert_eq!(
            key,
            "delegate:8453:0x0101010101010101010101010101010101010101:0x0202020202020202020202020202020202020202"
        );
    }
}
