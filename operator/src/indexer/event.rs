//! [`EscrowEvent`]: the escrow's events decoded into one typed enum, their JSON form in
//! `chain_events.data` (what each one means for a payment is in `effect`).
//!
//! Both interface versions are decoded: v1.0's `PaymentCaptured` / `PaymentCharged` carry
//! `uint16 feeBps`, v1.1's (other topic0 values) `uint256 feeAmount` ([`EventFee`]); every other
//! event is the same in both.

use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolEventInterface;
use serde_json::{Value, json};
use x402_escrow_bindings::AuthCaptureEscrow::AuthCaptureEscrowEvents;
use x402_escrow_bindings::IAuthCaptureEscrowV1_1::IAuthCaptureEscrowV1_1Events;
use x402_escrow_bindings::PaymentInfo;

use crate::lifecycle::Amount;
use crate::store::ChainEvent;

/// The fee of a capture or charge as the escrow's event states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFee {
    /// A v1.0 escrow: the rate in basis points (JSON `feeBps`).
    Bps(u16),
    /// A v1.1 escrow: the fee in token units (JSON `feeAmount`, a decimal string).
    Amount(Amount),
}

/// An escrow event, decoded. Amounts are token units (the escrow caps them at `uint120`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscrowEvent {
    /// `PaymentAuthorized`: `amount` is now held for the payment.
    Authorized {
        /// The payment (`paymentInfoHash`).
        payment_hash: B256,
        /// The full `PaymentInfo`.
        payment_info: PaymentInfo,
        /// The amount held.
        amount: Amount,
        /// The collector that pulled the payer's tokens.
        token_collector: Address,
    },
    /// `PaymentCharged`: authorized and captured in one transaction.
    Charged {
        /// The payment.
        payment_hash: B256,
        /// The full `PaymentInfo`.
        payment_info: PaymentInfo,
        /// The amount charged (fee included).
        amount: Amount,
        /// The collector that pulled the payer's tokens.
        token_collector: Address,
        /// The fee taken (a rate on v1.0 escrows, an amount on v1.1).
        fee: EventFee,
        /// Where the fee went.
        fee_receiver: Address,
    },
    /// `PaymentCaptured`: part or all of the hold went to the receiver and fee receiver.
    Captured {
        /// The payment.
        payment_hash: B256,
        /// The amount captured (fee included).
        amount: Amount,
        /// The fee taken (a rate on v1.0 escrows, an amount on v1.1).
        fee: EventFee,
        /// Where the fee went.
        fee_receiver: Address,
    },
    /// `PaymentVoided`: the operator returned the hold to the payer.
    Voided {
        /// The payment.
        payment_hash: B256,
        /// The amount returned.
        amount: Amount,
    },
    /// `PaymentReclaimed`: the payer took the hold back after `authorizationExpiry`.
    Reclaimed {
        /// The payment.
        payment_hash: B256,
        /// The amount returned.
        amount: Amount,
    },
    /// `PaymentRefunded`: captured tokens went back to the payer.
    Refunded {
        /// The payment.
        payment_hash: B256,
        /// The amount refunded.
        amount: Amount,
        /// The refund collector that supplied the tokens.
        token_collector: Address,
    },
    /// `TokenStoreCreated`: an operator's TokenStore clone was deployed (no payment).
    TokenStoreCreated {
        /// The operator.
        operator: Address,
        /// The store's address.
        token_store: Address,
    },
}

/// An event that could not be decoded (or a stored one whose JSON is not what we wrote).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode escrow event {event}: {message}")]
pub struct EventDecodeError {
    /// The event name (or topic0) concerned.
    pub event: String,
    /// What was wrong.
    pub message: String,
}

fn decode_err(event: impl Into<String>, message: impl Into<String>) -> EventDecodeError {
    EventDecodeError {
        event: event.into(),
        message: message.into(),
    }
}

fn amount(event: &str, v: U256) -> Result<Amount, EventDecodeError> {
    u128::try_from(v).map_err(|_| decode_err(event, format!("amount {v} does not fit in u128")))
}

impl EscrowEvent {
    /// Decodes a log of the escrow. `Ok(None)`: a log whose topic is none of the escrow's events
    /// (nothing to store); `Err`: a known event whose data does not decode.
    pub fn decode(log: &alloy::primitives::Log) -> Result<Option<EscrowEvent>, EventDecodeError> {
        let Some(topic0) = log.topics().first().copied() else {
            return Ok(None);
        };
        let decoded = match AuthCaptureEscrowEvents::decode_log(log) {
            Ok(decoded) => decoded.data,
            Err(e) => {
                let known = AuthCaptureEscrowEvents::SELECTORS
                    .iter()
                    .any(|s| s.as_slice() == topic0.as_slice());
                return if known {
                    Err(decode_err(topic0.to_string(), e.to_string()))
                } else {
                    Self::decode_v1_1(log, topic0)
                };
            }
        };
        use AuthCaptureEscrowEvents as E;
        Ok(Some(match decoded {
            E::PaymentAuthorized(e) => EscrowEvent::Authorized {
                payment_hash: e.paymentInfoHash,
                payment_info: e.paymentInfo,
                amount: amount("PaymentAuthorized", e.amount)?,
                token_collector: e.tokenCollector,
            },
            E::PaymentCharged(e) => EscrowEvent::Charged {
                payment_hash: e.paymentInfoHash,
                payment_info: e.paymentInfo,
                amount: amount("PaymentCharged", e.amount)?,
                token_collector: e.tokenCollector,
                fee: EventFee::Bps(e.feeBps),
                fee_receiver: e.feeReceiver,
            },
            E::PaymentCaptured(e) => EscrowEvent::Captured {
                payment_hash: e.paymentInfoHash,
                amount: amount("PaymentCaptured", e.amount)?,
                fee: EventFee::Bps(e.feeBps),
                fee_receiver: e.feeReceiver,
            },
            E::PaymentVoided(e) => EscrowEvent::Voided {
                payment_hash: e.paymentInfoHash,
                amount: amount("PaymentVoided", e.amount)?,
            },
            E::PaymentReclaimed(e) => EscrowEvent::Reclaimed {
                payment_hash: e.paymentInfoHash,
                amount: amount("PaymentReclaimed", e.amount)?,
            },
            E::PaymentRefunded(e) => EscrowEvent::Refunded {
                payment_hash: e.paymentInfoHash,
                amount: amount("PaymentRefunded", e.amount)?,
                token_collector: e.tokenCollector,
            },
            E::TokenStoreCreated(e) => EscrowEvent::TokenStoreCreated {
                operator: e.operator,
                token_store: e.tokenStore,
            },
        }))
    }

    /// The v1.1 events (`PaymentCaptured` / `PaymentCharged` with `uint256 feeAmount`), whose
    /// topic0 differs from v1.0's; `Ok(None)` for a topic of neither version.
    fn decode_v1_1(
        log: &alloy::primitives::Log,
        topic0: B256,
    ) -> Result<Option<EscrowEvent>, EventDecodeError> {
        let decoded = match IAuthCaptureEscrowV1_1Events::decode_log(log) {
            Ok(decoded) => decoded.data,
            Err(e) => {
                let known = IAuthCaptureEscrowV1_1Events::SELECTORS
                    .iter()
                    .any(|s| s.as_slice() == topic0.as_slice());
                return if known {
                    Err(decode_err(topic0.to_string(), e.to_string()))
                } else {
                    Ok(None)
                };
            }
        };
        use IAuthCaptureEscrowV1_1Events as E;
        Ok(Some(match decoded {
            E::PaymentCharged(e) => EscrowEvent::Charged {
                payment_hash: e.paymentInfoHash,
                payment_info: e.paymentInfo.into(),
                amount: amount("PaymentCharged", e.amount)?,
                token_collector: e.tokenCollector,
                fee: EventFee::Amount(amount("PaymentCharged", e.feeAmount)?),
                fee_receiver: e.feeReceiver,
            },
            E::PaymentCaptured(e) => EscrowEvent::Captured {
                payment_hash: e.paymentInfoHash,
                amount: amount("PaymentCaptured", e.amount)?,
                fee: EventFee::Amount(amount("PaymentCaptured", e.feeAmount)?),
                fee_receiver: e.feeReceiver,
            },
        }))
    }

    /// The Solidity event name (`PaymentAuthorized`, …), as stored in `chain_events.event_name`.
    pub const fn name(&self) -> &'static str {
        match self {
            EscrowEvent::Authorized { .. } => "PaymentAuthorized",
            EscrowEvent::Charged { .. } => "PaymentCharged",
            EscrowEvent::Captured { .. } => "PaymentCaptured",
            EscrowEvent::Voided { .. } => "PaymentVoided",
            EscrowEvent::Reclaimed { .. } => "PaymentReclaimed",
            EscrowEvent::Refunded { .. } => "PaymentRefunded",
            EscrowEvent::TokenStoreCreated { .. } => "TokenStoreCreated",
        }
    }

    /// The payment the event concerns (`None` for `TokenStoreCreated`).
    pub const fn payment_hash(&self) -> Option<B256> {
        match self {
            EscrowEvent::Authorized { payment_hash, .. }
            | EscrowEvent::Charged { payment_hash, .. }
            | EscrowEvent::Captured { payment_hash, .. }
            | EscrowEvent::Voided { payment_hash, .. }
            | EscrowEvent::Reclaimed { payment_hash, .. }
            | EscrowEvent::Refunded { payment_hash, .. } => Some(*payment_hash),
            EscrowEvent::TokenStoreCreated { .. } => None,
        }
    }

    /// The event's amount (`None` for `TokenStoreCreated`).
    pub const fn amount(&self) -> Option<Amount> {
        match self {
            EscrowEvent::Authorized { amount, .. }
            | EscrowEvent::Charged { amount, .. }
            | EscrowEvent::Captured { amount, .. }
            | EscrowEvent::Voided { amount, .. }
            | EscrowEvent::Reclaimed { amount, .. }
            | EscrowEvent::Refunded { amount, .. } => Some(*amount),
            EscrowEvent::TokenStoreCreated { .. } => None,
        }
    }

    /// The JSON stored in `chain_events.data`: `{"event": name, …fields}` with camelCase
    /// fields, amounts and `maxAmount` as decimal strings, `salt` as a 32-byte hex word.
    pub fn to_json(&self) -> Value {
        let hash = |h: &B256| h.to_string();
        match self {
            EscrowEvent::Authorized {
                payment_hash,
                payment_info,
                amount,
                token_collector,
            } => json!({
                "event": self.name(),
                "paymentHash": hash(payment_hash),
                "paymentInfo": payment_info_json(payment_info),
                "amount": amount.to_string(),
                "tokenCollector": token_collector.to_string(),
            }),
            EscrowEvent::Charged {
                payment_hash,
                payment_info,
                amount,
                token_collector,
                fee,
                fee_receiver,
            } => with_fee(
                json!({
                    "event": self.name(),
                    "paymentHash": hash(payment_hash),
                    "paymentInfo": payment_info_json(payment_info),
                    "amount": amount.to_string(),
                    "tokenCollector": token_collector.to_string(),
                    "feeReceiver": fee_receiver.to_string(),
                }),
                *fee,
            ),
            EscrowEvent::Captured {
                payment_hash,
                amount,
                fee,
                fee_receiver,
            } => with_fee(
                json!({
                    "event": self.name(),
                    "paymentHash": hash(payment_hash),
                    "amount": amount.to_string(),
                    "feeReceiver": fee_receiver.to_string(),
                }),
                *fee,
            ),
            EscrowEvent::Voided {
                payment_hash,
                amount,
            }
            | EscrowEvent::Reclaimed {
                payment_hash,
                amount,
            } => json!({
                "event": self.name(),
                "paymentHash": hash(payment_hash),
                "amount": amount.to_string(),
            }),
            EscrowEvent::Refunded {
                payment_hash,
                amount,
                token_collector,
            } => json!({
                "event": self.name(),
                "paymentHash": hash(payment_hash),
                "amount": amount.to_string(),
                "tokenCollector": token_collector.to_string(),
            }),
            EscrowEvent::TokenStoreCreated {
                operator,
                token_store,
            } => json!({
                "event": self.name(),
                "operator": operator.to_string(),
                "tokenStore": token_store.to_string(),
            }),
        }
    }

    /// Reads back an event from its stored JSON ([`EscrowEvent::to_json`]).
    pub fn from_json(data: &Value) -> Result<EscrowEvent, EventDecodeError> {
        let name = data
            .get("event")
            .and_then(Value::as_str)
            .ok_or_else(|| decode_err("?", "no \"event\" field"))?;
        let r = JsonReader { name, obj: data };
        Ok(match name {
            "PaymentAuthorized" => EscrowEvent::Authorized {
                payment_hash: r.parse("paymentHash")?,
                payment_info: r.payment_info()?,
                amount: r.parse("amount")?,
                token_collector: r.parse("tokenCollector")?,
            },
            "PaymentCharged" => EscrowEvent::Charged {
                payment_hash: r.parse("paymentHash")?,
                payment_info: r.payment_info()?,
                amount: r.parse("amount")?,
                token_collector: r.parse("tokenCollector")?,
                fee: r.fee()?,
                fee_receiver: r.parse("feeReceiver")?,
            },
            "PaymentCaptured" => EscrowEvent::Captured {
                payment_hash: r.parse("paymentHash")?,
                amount: r.parse("amount")?,
                fee: r.fee()?,
                fee_receiver: r.parse("feeReceiver")?,
            },
            "PaymentVoided" => EscrowEvent::Voided {
                payment_hash: r.parse("paymentHash")?,
                amount: r.parse("amount")?,
            },
            "PaymentReclaimed" => EscrowEvent::Reclaimed {
                payment_hash: r.parse("paymentHash")?,
                amount: r.parse("amount")?,
            },
            "PaymentRefunded" => EscrowEvent::Refunded {
                payment_hash: r.parse("paymentHash")?,
                amount: r.parse("amount")?,
                token_collector: r.parse("tokenCollector")?,
            },
            "TokenStoreCreated" => EscrowEvent::TokenStoreCreated {
                operator: r.parse("operator")?,
                token_store: r.parse("tokenStore")?,
            },
            other => return Err(decode_err(other, "unknown event name")),
        })
    }

    /// The typed event of a stored row (what the engine reads from `unprocessed_events`).
    pub fn from_stored(event: &ChainEvent) -> Result<EscrowEvent, EventDecodeError> {
        let decoded = EscrowEvent::from_json(&event.data)?;
        if decoded.name() != event.event_name {
            return Err(decode_err(
                event.event_name.clone(),
                format!("data describes {}", decoded.name()),
            ));
        }
        Ok(decoded)
    }
}

/// `event` (an object) with its fee field: `feeBps` (a number) or `feeAmount` (a decimal string).
fn with_fee(mut event: Value, fee: EventFee) -> Value {
    if let Some(obj) = event.as_object_mut() {
        match fee {
            EventFee::Bps(bps) => obj.insert("feeBps".into(), json!(bps)),
            EventFee::Amount(amount) => obj.insert("feeAmount".into(), json!(amount.to_string())),
        };
    }
    event
}

fn payment_info_json(p: &PaymentInfo) -> Value {
    json!({
        "operator": p.operator.to_string(),
        "payer": p.payer.to_string(),
        "receiver": p.receiver.to_string(),
        "token": p.token.to_string(),
        "maxAmount": p.maxAmount.to_string(),
        "preApprovalExpiry": p.preApprovalExpiry.to::<u64>(),
        "authorizationExpiry": p.authorizationExpiry.to::<u64>(),
        "refundExpiry": p.refundExpiry.to::<u64>(),
        "minFeeBps": p.minFeeBps,
        "maxFeeBps": p.maxFeeBps,
        "feeReceiver": p.feeReceiver.to_string(),
        "salt": B256::from(p.salt).to_string(),
    })
}

struct JsonReader<'a> {
    name: &'a str,
    obj: &'a Value,
}

impl JsonReader<'_> {
    fn field(&self, obj: &Value, key: &str) -> Result<Value, EventDecodeError> {
        obj.get(key)
            .cloned()
            .ok_or_else(|| decode_err(self.name, format!("missing field {key}")))
    }

    fn parse_in<T: std::str::FromStr>(&self, obj: &Value, key: &str) -> Result<T, EventDecodeError>
    where
        T::Err: std::fmt::Display,
    {
        let v = self.field(obj, key)?;
        let s = v
            .as_str()
            .ok_or_else(|| decode_err(self.name, format!("{key} is not a string")))?;
        s.parse::<T>()
            .map_err(|e| decode_err(self.name, format!("{key}: {e}")))
    }

    fn number_in<T: TryFrom<u64>>(&self, obj: &Value, key: &str) -> Result<T, EventDecodeError> {
        self.field(obj, key)?
            .as_u64()
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| decode_err(self.name, format!("{key} is not a number in range")))
    }

    fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<T, EventDecodeError>
    where
        T::Err: std::fmt::Display,
    {
        self.parse_in(self.obj, key)
    }

    fn number<T: TryFrom<u64>>(&self, key: &str) -> Result<T, EventDecodeError> {
        self.number_in(self.obj, key)
    }

    /// The fee of a stored capture or charge: `feeAmount` (v1.1) when present, else `feeBps`.
    fn fee(&self) -> Result<EventFee, EventDecodeError> {
        if self.obj.get("feeAmount").is_some() {
            Ok(EventFee::Amount(self.parse("feeAmount")?))
        } else {
            Ok(EventFee::Bps(self.number("feeBps")?))
        }
    }

    fn payment_info(&self) -> Result<PaymentInfo, EventDecodeError> {
        let p = self.field(self.obj, "paymentInfo")?;
        let max_amount: u128 = self.parse_in(&p, "maxAmount")?;
        let u48 = |key: &str| -> Result<U48, EventDecodeError> {
            let v: u64 = self.number_in(&p, key)?;
            U48::try_from(v).map_err(|_| decode_err(self.name, format!("{key} exceeds uint48")))
        };
        let salt: B256 = self.parse_in(&p, "salt")?;
        Ok(PaymentInfo {
            operator: self.parse_in(&p, "operator")?,
            payer: self.parse_in(&p, "payer")?,
            receiver: self.parse_in(&p, "receiver")?,
            token: self.parse_in(&p, "token")?,
            maxAmount: U120::try_from(max_amount)
                .map_err(|_| decode_err(self.name, "maxAmount exceeds uint120"))?,
            preApprovalExpiry: u48("preApprovalExpiry")?,
            authorizationExpiry: u48("authorizationExpiry")?,
            refundExpiry: u48("refundExpiry")?,
            minFeeBps: self.number_in(&p, "minFeeBps")?,
            maxFeeBps: self.number_in(&p, "maxFeeBps")?,
            feeReceiver: self.parse_in(&p, "feeReceiver")?,
            salt: U256::from_be_bytes(salt.0),
        })
    }
}
