//! `PaymentView::tx_hash`: the transaction that made an escrow call for a payment, whether it
//! went out on its own or inside a batch (the receipt the merchant layer gives the buyer names it).

use serde_json::json;
use x402_escrow_types::PaymentView;

fn view(transactions: serde_json::Value) -> PaymentView {
    serde_json::from_value(json!({
        "id": "0191d0a6-0000-7000-8000-000000000001",
        "paymentHash": format!("0x{}", "11".repeat(32)),
        "status": "captured",
        "amounts": {
            "authorized": "100", "captured": "100", "refunded": "0",
            "capturable": "0", "refundable": "100"
        },
        "transactions": transactions,
    }))
    .expect("a payment view")
}

fn hash(byte: &str) -> String {
    format!("0x{}", byte.repeat(32))
}

#[test]
fn a_call_made_inside_a_batch_is_found_by_its_call() {
    let payment = view(json!([
        {"kind": "authorize", "hash": hash("aa"), "status": "final"},
        {"kind": "execute", "hash": hash("bb"), "status": "final", "call": "capture"},
    ]));
    assert_eq!(
        payment.tx_hash("capture").map(|h| h.to_string()),
        Some(hash("bb"))
    );
    assert_eq!(
        payment.tx_hash("authorize").map(|h| h.to_string()),
        Some(hash("aa"))
    );
    assert_eq!(payment.tx_hash("void"), None);
}

#[test]
fn the_newest_transaction_of_the_call_wins_and_one_without_a_hash_is_skipped() {
    let payment = view(json!([
        {"kind": "capture", "hash": hash("cc"), "status": "reverted"},
        {"kind": "capture_batch", "hash": hash("dd"), "status": "final", "call": "capture"},
        {"kind": "capture", "status": "queued"},
    ]));
    assert_eq!(
        payment.tx_hash("capture").map(|h| h.to_string()),
        Some(hash("dd"))
    );
    // A batch whose call for this payment was another one is not taken for a capture.
    let voided = view(json!([
        {"kind": "execute", "hash": hash("ee"), "status": "final", "call": "void"},
    ]));
    assert_eq!(voided.tx_hash("capture"), None);
    assert_eq!(
        voided.tx_hash("void").map(|h| h.to_string()),
        Some(hash("ee"))
    );
}
