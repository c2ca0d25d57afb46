//! Reading the server's answer to a paid request: the receipt (`PAYMENT-RESPONSE` /
//! `X-PAYMENT-RESPONSE`) and what it means for the ledger.
//!
//! | receipt | HTTP status | ledger | client |
//! |---|---|---|---|
//! | success, [`RECEIPT_EXTENSION`] status `voided` / `reclaimed` | any | voided / reclaimed | done |
//! | success, extension status `refunded` (+ `refundedAmount`) | any | refunded | done |
//! | success, 2xx, `releasedAmount` (a metered route captured less) | 2xx | refunded by the released amount | done |
//! | success | 2xx | paid | done |
//! | success | non-2xx | paid, `void_expected` | done (no retry: the payment was taken) |
//! | `settlement_pending` | non-2xx | reserved (+ tx hash) | retry, same payment |
//! | `settlement_pending` | 2xx | reserved (+ tx hash) | done (reconcile settles it) |
//! | failure (no transaction) | any | failed (released) | error `PaymentRejected` |
//! | none | 2xx | paid | done |
//! | none | 402, 400, 422 | failed (released) | error `PaymentRejected` |
//! | none | 5xx, 408, 409, 429 | reserved | retry, same payment |
//! | none | other | reserved (unknown) | done |
//!
//! A non-2xx answer after a successful settlement is *not* recorded as voided: the merchant's
//! layer is expected to void it, but budget is only returned on evidence (a receipt saying so,
//! or the escrow's state read by [`reconcile`](super::reconcile())). A network error is retried
//! like a 5xx; after the last retry the payment stays reserved.

use alloy::primitives::B256;
use http::StatusCode;
use serde_json::Value;

use super::ledger::PaymentStatus;
use crate::amount::Amount;
use crate::facilitator::SettleResponse;
use crate::wire::codec::{
    PAYMENT_RESPONSE, X_PAYMENT_RESPONSE, decode_payment_response, decode_x_payment_response,
};

/// The receipt extension key carrying x402-escrow's view of the payment
/// (`extensions["x402-escrow"] = {paymentId?, paymentHash?, status?, refundedAmount?,
/// releasedAmount?, capturedAmount?, meteredPrice?}`).
pub const RECEIPT_EXTENSION: &str = "x402-escrow";

/// The [`RECEIPT_EXTENSION`] of a receipt (every field optional; unknown ones ignored).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiptInfo {
    /// The operator's payment id.
    pub payment_id: Option<String>,
    /// The escrow payment hash.
    pub payment_hash: Option<B256>,
    /// The payment's state (`authorized`, `captured`, `voided`, `refunded`, …).
    pub status: Option<String>,
    /// Refunded so far.
    pub refunded_amount: Option<Amount>,
    /// Released back to the payer without being captured (a metered route that captured less
    /// than was authorized, or a void).
    pub released_amount: Option<Amount>,
}

impl ReceiptInfo {
    /// Reads the extension from a receipt (lenient: a malformed field is ignored).
    pub fn from_receipt(receipt: &SettleResponse) -> Self {
        let Some(ext) = receipt
            .extensions
            .as_ref()
            .and_then(|e| e.get(RECEIPT_EXTENSION))
            .and_then(Value::as_object)
        else {
            return Self::default();
        };
        let text = |key: &str| ext.get(key).and_then(Value::as_str).map(str::to_owned);
        Self {
            payment_id: text("paymentId"),
            payment_hash: text("paymentHash").and_then(|h| h.parse().ok()),
            status: text("status").map(|s| s.to_ascii_lowercase()),
            refunded_amount: text("refundedAmount").and_then(|a| Amount::parse(&a).ok()),
            released_amount: text("releasedAmount").and_then(|a| Amount::parse(&a).ok()),
        }
    }
}

/// The receipt of a response, from `PAYMENT-RESPONSE` (v2) or `X-PAYMENT-RESPONSE` (v1).
/// A malformed receipt is logged and treated as absent.
pub fn read_receipt(headers: &http::HeaderMap) -> Option<SettleResponse> {
    let decoded = if let Some(value) = headers.get(PAYMENT_RESPONSE) {
        decode_payment_response(value.as_bytes())
    } else if let Some(value) = headers.get(X_PAYMENT_RESPONSE) {
        decode_x_payment_response(value.as_bytes())
    } else {
        return None;
    };
    match decoded {
        Ok(receipt) => Some(receipt),
        Err(error) => {
            tracing::warn!(%error, "ignoring a malformed payment receipt");
            None
        }
    }
}

/// What to do after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Send the same payment again (after a backoff).
    Retry,
    /// The payment's fate is known: record `status`.
    Settled {
        /// The ledger status.
        status: PaymentStatus,
        /// Taken, but the server answered non-2xx: a void is expected.
        void_expected: bool,
    },
    /// Unknown: leave the reservation as it is (reconcile later).
    Unknown,
    /// The server refused the payment; nothing was taken.
    Rejected,
}

/// Classifies one answer to a paid request (see the module's table).
pub fn classify(status: StatusCode, receipt: Option<&SettleResponse>) -> Disposition {
    let ok = status.is_success();
    let Some(receipt) = receipt else {
        return match status.as_u16() {
            _ if ok => Disposition::Settled {
                status: PaymentStatus::Paid,
                void_expected: false,
            },
            400 | 402 | 422 => Disposition::Rejected,
            408 | 409 | 429 | 500..=599 => Disposition::Retry,
            _ => Disposition::Unknown,
        };
    };
    if receipt.is_pending() {
        return if ok {
            Disposition::Unknown
        } else {
            Disposition::Retry
        };
    }
    if !receipt.success {
        return Disposition::Rejected;
    }
    let info = ReceiptInfo::from_receipt(receipt);
    let settled = |status| Disposition::Settled {
        status,
        void_expected: false,
    };
    // What a metered capture released without capturing comes back like a refund.
    let released = info.released_amount.unwrap_or(Amount::ZERO);
    match info.status.as_deref() {
        Some("voided" | "void") => settled(PaymentStatus::Voided),
        Some("reclaimed") => settled(PaymentStatus::Reclaimed),
        // Without the amount, a refund cannot be counted: stay conservative.
        Some("refunded" | "partially_refunded") => match info.refunded_amount {
            Some(amount) => settled(PaymentStatus::Refunded {
                amount: Amount(amount.0.saturating_add(released.0)),
            }),
            None => settled(PaymentStatus::Paid),
        },
        _ if ok && released != Amount::ZERO => {
            settled(PaymentStatus::Refunded { amount: released })
        }
        _ if ok => settled(PaymentStatus::Paid),
        _ => Disposition::Settled {
            status: PaymentStatus::Paid,
            void_expected: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facilitator::SettleResponse;
    use crate::network::Network;
    use alloy::primitives::Address;
    use serde_json::json;

    fn receipt(info: Value) -> SettleResponse {
        let mut receipt = SettleResponse::success(
            B256::repeat_byte(1),
            Network::eip155(8453),
            Address::ZERO,
            None,
        );
        let mut extensions = serde_json::Map::new();
        extensions.insert(RECEIPT_EXTENSION.to_owned(), info);
        receipt.extensions = Some(extensions);
        receipt
    }

    #[test]
    fn a_metered_capture_returns_what_it_released() {
        let metered = receipt(json!({
            "status": "captured", "capturedAmount": "2500", "releasedAmount": "7500"
        }));
        assert_eq!(
            classify(StatusCode::OK, Some(&metered)),
            Disposition::Settled {
                status: PaymentStatus::Refunded {
                    amount: Amount::from(7500u64)
                },
                void_expected: false
            }
        );
        let refunded_too = receipt(json!({
            "status": "partially_refunded", "refundedAmount": "1000", "releasedAmount": "7500"
        }));
        assert_eq!(
            classify(StatusCode::OK, Some(&refunded_too)),
            Disposition::Settled {
                status: PaymentStatus::Refunded {
                    amount: Amount::from(8500u64)
                },
                void_expected: false
            }
        );
        let whole = receipt(json!({"status": "captured"}));
        assert_eq!(
            classify(StatusCode::OK, Some(&whole)),
            Disposition::Settled {
                status: PaymentStatus::Paid,
                void_expected: false
            }
        );
    }
}
