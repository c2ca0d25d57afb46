//! Confirmations pushed by the node, not polled (`[chain] receipts = "push"`, the default).
//!
//! A freshly signed group is handed to the node with `eth_sendRawTransactionSync` (EIP-7966),
//! one request per transaction, each in its own task: the node answers with the receipt once the
//! transaction is mined. The pass does not wait for those answers (a block time would otherwise
//! hold every new claim back by a block); each answer lands in a channel and wakes the relayer,
//! whose next pass settles every pushed receipt of the round in **one** write
//! ([`Store::mark_mined_finals`](crate::store::Store::mark_mined_finals)) — no nonce read, no
//! receipt lookup, no poll interval between "mined" and the request waiting on it.
//!
//! Nothing here is trusted more than a polled answer: the attempt was stored before it was sent
//! (a crash loses nothing, the monitor finds the receipt by hash after a restart), and any answer
//! but a receipt — a timeout, a transport error, a refusal — only takes the row off the "being
//! pushed" list, so the ordinary monitor (`monitor.rs`) looks it up, re-broadcasts or replaces it
//! as it would have without push. A node that does not know the method (`-32601`, "method not
//! found") switches push off for the relayer's life; those rows are sent the plain way by the
//! monitor at once.
//!
//! A node may also take a send and never mine it. anvil (1.7) reads the sender's nonce before
//! it adds a transaction to its pool: when the block with the predecessor is mined in between,
//! the transaction waits in the pool's `queued` part for a predecessor that will not come, and
//! so do the later ones (seen with the sends of one group, under CPU load). No answer comes
//! until the node's own timeout; the row is the monitor's again after the patience, and the
//! monitor's replacement (new fees, a new hash) gets it and the later ones mined.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use alloy::primitives::B256;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::json_rpc::RpcError;
use alloy::rpc::types::TransactionReceipt;
use alloy::transports::TransportError;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::config::ReceiptSource;
use crate::store::{ChainTx, TxAttempt};

/// The node's answer to one pushed send.
#[derive(Debug)]
pub(super) struct Pushed {
    /// The row sent.
    pub chain_tx_id: Uuid,
    /// The receipt, or why there is none.
    pub answer: Result<TransactionReceipt, TransportError>,
}

/// What the relayer keeps about pushed sends.
#[derive(Debug)]
pub(super) struct Push {
    /// Still pushing (configured, and the node has not refused the method).
    active: bool,
    /// Rows whose send is outstanding (the hash sent, and when): the monitor leaves them alone
    /// until the answer is in, or for `patience` at most.
    sending: HashMap<Uuid, (B256, Instant)>,
    /// How long an outstanding send keeps the monitor away (the relayer's `bump_after`).
    patience: Duration,
    /// Receipts taken from the channel (in a block, for the bytes sent), by row, until the
    /// pass reaches the row.
    receipts: HashMap<Uuid, TransactionReceipt>,
    tx: mpsc::UnboundedSender<Pushed>,
    rx: mpsc::UnboundedReceiver<Pushed>,
}

impl Push {
    /// Push state for `source`; an unanswered send keeps the monitor away for `patience`.
    pub fn new(source: ReceiptSource, patience: Duration) -> Push {
        let (tx, rx) = mpsc::unbounded_channel();
        Push {
            active: source == ReceiptSource::Push,
            sending: HashMap::new(),
            patience,
            receipts: HashMap::new(),
            tx,
            rx,
        }
    }

    /// Whether new transactions go out with `eth_sendRawTransactionSync`.
    pub fn active(&self) -> bool {
        self.active
    }

    /// Whether `row`'s send is outstanding and recent (the monitor must not act on it yet). A
    /// send unanswered for longer than the patience is the monitor's again (it re-broadcasts or
    /// replaces as for any transaction without a receipt).
    pub fn is_sending(&self, row: Uuid) -> bool {
        self.sending
            .get(&row)
            .is_some_and(|(_, since)| since.elapsed() < self.patience)
    }

    /// Hands `attempt` to the node in its own task; the answer arrives through the channel and
    /// `wake` is notified.
    pub fn spawn(
        &mut self,
        provider: DynProvider,
        chain_tx_id: Uuid,
        attempt: &TxAttempt,
        wake: std::sync::Arc<tokio::sync::Notify>,
    ) {
        self.sending
            .insert(chain_tx_id, (attempt.tx_hash, Instant::now()));
        let raw = attempt.raw_tx.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let answer = provider.send_raw_transaction_sync(&raw).await;
            // The relayer may be gone (shut down, or a test's crash): nothing waits then.
            let _ = tx.send(Pushed {
                chain_tx_id,
                answer,
            });
            wake.notify_one();
        });
    }

    /// Takes every answer that arrived. Rows answered with anything but a receipt go back to the
    /// monitor (they are no longer "sending" and keep no answer); a node without the method
    /// turns push off.
    pub fn collect(&mut self) {
        while let Ok(Pushed {
            chain_tx_id,
            answer,
        }) = self.rx.try_recv()
        {
            let sent = self.sending.remove(&chain_tx_id).map(|(hash, _)| hash);
            match answer {
                Ok(receipt)
                    if receipt.block_hash.is_some()
                        && receipt.block_number.is_some()
                        && sent == Some(receipt.transaction_hash) =>
                {
                    self.receipts.insert(chain_tx_id, receipt);
                }
                Ok(receipt) => {
                    tracing::info!(chain_tx = %chain_tx_id, tx_hash = %receipt.transaction_hash, "pushed receipt without a block, or not for the bytes sent: polling");
                }
                Err(e) if method_unsupported(&e) => {
                    if self.active {
                        tracing::info!(error = %e, "node has no eth_sendRawTransactionSync: polling for receipts from now on");
                    }
                    self.active = false;
                }
                Err(e) => {
                    tracing::info!(chain_tx = %chain_tx_id, error = %e, "no pushed receipt: the monitor takes over");
                }
            }
        }
    }

    /// The pushed receipt for `row` (a receipt in a block, for the bytes that were sent), if
    /// one arrived.
    pub fn take_receipt(&mut self, row: &ChainTx) -> Option<TransactionReceipt> {
        self.receipts.remove(&row.id)
    }

    /// Whether a receipt is waiting for `row`.
    #[cfg(test)]
    pub fn has_receipt(&self, row: Uuid) -> bool {
        self.receipts.contains_key(&row)
    }

    /// Forgets receipts of rows no longer in flight (settled by the monitor meanwhile).
    pub fn retain(&mut self, in_flight: &HashSet<Uuid>) {
        self.receipts.retain(|id, _| in_flight.contains(id));
    }
}

/// The node does not know `eth_sendRawTransactionSync`.
fn method_unsupported(err: &TransportError) -> bool {
    match err {
        RpcError::ErrorResp(payload) => {
            let msg = payload.message.to_lowercase();
            payload.code == -32601
                || msg.contains("method not found")
                || msg.contains("not supported")
                || msg.contains("does not exist")
                || msg.contains("unknown method")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use alloy::rpc::json_rpc::ErrorPayload;

    use super::*;

    fn resp(code: i64, msg: &str) -> TransportError {
        RpcError::ErrorResp(ErrorPayload {
            code,
            message: msg.to_owned().into(),
            data: None,
        })
    }

    #[test]
    fn only_a_missing_method_turns_push_off() {
        assert!(method_unsupported(&resp(-32601, "Method not found")));
        assert!(method_unsupported(&resp(
            -32000,
            "the method eth_sendRawTransactionSync does not exist/is not available"
        )));
        assert!(!method_unsupported(&resp(
            -32603,
            "Transaction confirmation timeout"
        )));
        assert!(!method_unsupported(&resp(-32000, "nonce too low")));
    }

    /// A push state with one outstanding send, after the node answered it with `err`.
    fn answered_with(err: TransportError) -> (Push, Uuid) {
        let mut push = Push::new(ReceiptSource::Push, Duration::from_secs(30));
        let row = Uuid::new_v4();
        push.sending.insert(row, (B256::ZERO, Instant::now()));
        assert!(push.is_sending(row));
        push.tx
            .send(Pushed {
                chain_tx_id: row,
                answer: Err(err),
            })
            .unwrap();
        push.collect();
        (push, row)
    }

    #[test]
    fn a_refusal_of_the_method_switches_to_polling_and_frees_the_row() {
        let (push, row) = answered_with(resp(-32601, "Method not found"));
        assert!(!push.active());
        assert!(!push.is_sending(row));
        assert!(!push.has_receipt(row));
    }

    #[test]
    fn a_timeout_frees_the_row_and_keeps_pushing() {
        let (push, row) = answered_with(resp(-32603, "Transaction confirmation timeout"));
        assert!(push.active());
        assert!(!push.is_sending(row));
        assert!(!push.has_receipt(row));
    }

    #[test]
    fn poll_never_pushes() {
        assert!(!Push::new(ReceiptSource::Poll, Duration::from_secs(30)).active());
    }

    #[test]
    fn an_unanswered_send_is_the_monitors_again_after_the_patience() {
        let mut push = Push::new(ReceiptSource::Push, Duration::ZERO);
        let row = Uuid::new_v4();
        push.sending.insert(row, (B256::ZERO, Instant::now()));
        assert!(!push.is_sending(row));
    }
}
