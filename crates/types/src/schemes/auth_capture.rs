//! Wire types of the `auth-capture` scheme: the requirements' `extra`, the client's collect
//! payload, and the lifecycle payloads (`capture`, `void`, `refund`) with their `paymentInfo`.

use alloy_primitives::{Address, B256, Bytes};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::DecodeError;
use crate::amount::{Amount, UINT48_MAX};
use crate::json::{self, FromJson, Obj};
use crate::schemes::Eip3009Authorization;

/// Largest fee in basis points (100%).
pub const MAX_FEE_BPS: u16 = 10_000;

/// `extra.paymentFlow`: which escrow operation the client's payload settles as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentFlow {
    /// `authorize`, then `capture` / `void` (the default).
    #[default]
    Escrow,
    /// `charge` (authorize and capture at once), then `refund`.
    Authorization,
}

json::from_json_one_of!(PaymentFlow, "expected \"escrow\" or \"authorization\"", {
    "escrow" => Escrow,
    "authorization" => Authorization,
});

/// `extra.captureMode`: when the post-resource capture runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureMode {
    /// In the paid request (the default).
    #[default]
    Sync,
    /// Later, from durable state.
    Deferred,
}

json::from_json_one_of!(CaptureMode, "expected \"sync\" or \"deferred\"", {
    "sync" => Sync,
    "deferred" => Deferred,
});

/// `extra.assetTransferMethod`: which token collector the client authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetTransferMethod {
    /// ERC-3009 `receiveWithAuthorization` (the default).
    #[default]
    Eip3009,
    /// Uniswap Permit2 `permitTransferFrom` (any ERC-20 the payer approved Permit2 for).
    Permit2,
}

json::from_json_one_of!(AssetTransferMethod, "expected \"eip3009\" or \"permit2\"", {
    "eip3009" => Eip3009,
    "permit2" => Permit2,
});

/// The `extra` object of `auth-capture` requirements.
///
/// Field order follows the official client's fixtures; unknown keys (for example
/// `operatorType`) are kept in [`other`](Self::other) and written back after the known ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthCaptureExtra {
    /// EIP-712 domain name of the token (e.g. `"USDC"`, `"USD Coin"`).
    pub name: String,
    /// EIP-712 domain version of the token (e.g. `"2"`).
    pub version: String,
    /// The operator (`PaymentInfo.operator`), the only address the escrow accepts as sender.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub capture_authorizer: Address,
    /// Unix seconds; `PaymentInfo.authorizationExpiry`.
    pub capture_deadline: u64,
    /// Unix seconds; `PaymentInfo.refundExpiry`.
    pub refund_deadline: u64,
    /// `PaymentInfo.feeReceiver`.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub fee_recipient: Address,
    /// `PaymentInfo.minFeeBps`.
    pub min_fee_bps: u16,
    /// `PaymentInfo.maxFeeBps`.
    pub max_fee_bps: u16,
    /// The escrow (absent: the default deployment of the registry, v1.1 canonically).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::primitives::serde_checksum::option")]
    pub auth_capture_escrow: Option<Address>,
    /// Signer of relayed lifecycle operations; non-zero binds the salt.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::primitives::serde_checksum::option")]
    pub receiver_authorizer: Option<Address>,
    /// Policy contract; non-zero binds the salt.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::primitives::serde_checksum::option")]
    pub policy: Option<Address>,
    /// `escrow` (default) or `authorization`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_flow: Option<PaymentFlow>,
    /// `sync` (default) or `deferred`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<CaptureMode>,
    /// `eip3009` (default) or `permit2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_transfer_method: Option<AssetTransferMethod>,
    /// Keys this crate does not interpret, kept verbatim.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

const EXTRA_KEYS: &[&str] = &[
    "name",
    "version",
    "captureAuthorizer",
    "captureDeadline",
    "refundDeadline",
    "feeRecipient",
    "minFeeBps",
    "maxFeeBps",
    "authCaptureEscrow",
    "receiverAuthorizer",
    "policy",
    "paymentFlow",
    "captureMode",
    "assetTransferMethod",
];

impl AuthCaptureExtra {
    /// The resolved payment flow (absent = `escrow`).
    pub fn flow(&self) -> PaymentFlow {
        self.payment_flow.unwrap_or_default()
    }

    /// The resolved capture mode (absent = `sync`).
    pub fn mode(&self) -> CaptureMode {
        self.capture_mode.unwrap_or_default()
    }

    /// The resolved asset transfer method (absent = `eip3009`).
    pub fn transfer_method(&self) -> AssetTransferMethod {
        self.asset_transfer_method.unwrap_or_default()
    }

    /// `receiverAuthorizer`, absent read as the zero address.
    pub fn receiver_authorizer_or_zero(&self) -> Address {
        self.receiver_authorizer.unwrap_or(Address::ZERO)
    }

    /// `policy`, absent read as the zero address.
    pub fn policy_or_zero(&self) -> Address {
        self.policy.unwrap_or(Address::ZERO)
    }

    /// `operatorType` as written (absent: `delegated`, the default). Kept as text so that a
    /// value this crate does not know reaches the facilitator, which names it in its refusal.
    pub fn operator_type(&self) -> Option<&str> {
        self.other
            .get("operatorType")
            .map(|v| v.as_str().unwrap_or("<not a string>"))
    }

    /// Whether the salt is bound (`receiverAuthorizer` or `policy` non-zero), so the payload
    /// carries `saltNonce` and `salt` is the binding commitment.
    pub fn is_salt_bound(&self) -> bool {
        !self.receiver_authorizer_or_zero().is_zero() || !self.policy_or_zero().is_zero()
    }
}

impl FromJson for AuthCaptureExtra {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let deadline = |v: &Value, p: &str| json::integer(v, p, 1, UINT48_MAX);
        let extra = Self {
            name: o.req_str("name")?,
            version: o.req_str("version")?,
            capture_authorizer: o.req("captureAuthorizer", json::address)?,
            capture_deadline: o.req("captureDeadline", deadline)?,
            refund_deadline: o.req("refundDeadline", deadline)?,
            fee_recipient: o.req("feeRecipient", json::address)?,
            min_fee_bps: o.req("minFeeBps", fee_bps)?,
            max_fee_bps: o.req("maxFeeBps", fee_bps)?,
            auth_capture_escrow: o.opt("authCaptureEscrow", json::address)?,
            receiver_authorizer: o.opt("receiverAuthorizer", json::address)?,
            policy: o.opt("policy", json::address)?,
            payment_flow: o.opt_t("paymentFlow")?,
            capture_mode: o.opt_t("captureMode")?,
            asset_transfer_method: o.opt_t("assetTransferMethod")?,
            other: o.rest(EXTRA_KEYS),
        };
        // Orderings the escrow enforces (InvalidFeeBpsRange, InvalidExpiries): a payment that
        // breaks them can never be authorized, so the requirements are inconsistent.
        if extra.min_fee_bps > extra.max_fee_bps {
            return Err(DecodeError::Inconsistent {
                field: o.field("minFeeBps"),
                reason: format!(
                    "minFeeBps {} is above maxFeeBps {}",
                    extra.min_fee_bps, extra.max_fee_bps
                ),
            });
        }
        if extra.capture_deadline > extra.refund_deadline {
            return Err(DecodeError::Inconsistent {
                field: o.field("captureDeadline"),
                reason: format!(
                    "captureDeadline {} is after refundDeadline {}",
                    extra.capture_deadline, extra.refund_deadline
                ),
            });
        }
        Ok(extra)
    }
}

json::deserialize_via_from_json!(AuthCaptureExtra);

/// The client's collect payload (ERC-3009): settles as `authorize` (flow `escrow`) or `charge`
/// (flow `authorization`).
///
/// The optional fields after `saltNonce` ([`charge`](Self::charge) and `authorizerSignature`) are
/// the server-added completion of a facilitator-relayed `charge` in the public specification; a
/// client never sets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthCapturePayload {
    /// `receiveWithAuthorization` parameters (to = the escrow's ERC-3009 collector).
    pub authorization: Eip3009Authorization,
    /// EIP-712 signature by `authorization.from` (65-byte ECDSA, ERC-1271 or EIP-6492).
    pub signature: Bytes,
    /// `PaymentInfo.salt` (random when unbound, the binding commitment when bound).
    pub salt: B256,
    /// The client's random value behind a bound salt; present if and only if bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salt_nonce: Option<B256>,
    /// Charge completion: the amount to charge and its fee.
    #[serde(flatten)]
    pub charge: AmountAndFee,
    /// Charge completion: EIP-712 `Charge` signature by the receiver authorizer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_signature: Option<Bytes>,
}

impl AuthCapturePayload {
    /// A client payload (no charge completion fields).
    pub fn new(
        authorization: Eip3009Authorization,
        signature: Bytes,
        salt: B256,
        salt_nonce: Option<B256>,
    ) -> Self {
        Self {
            authorization,
            signature,
            salt,
            salt_nonce,
            charge: AmountAndFee::default(),
            authorizer_signature: None,
        }
    }
}

impl FromJson for AuthCapturePayload {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let payload = Self {
            authorization: o.req_t("authorization")?,
            signature: o.req("signature", json::signature)?,
            salt: o.req("salt", json::b256)?,
            salt_nonce: o.opt("saltNonce", json::b256)?,
            charge: AmountAndFee::from_obj(&o)?,
            authorizer_signature: o.opt("authorizerSignature", json::signature)?,
        };
        payload.charge.check_one_fee(&o)?;
        Ok(payload)
    }
}

json::deserialize_via_from_json!(AuthCapturePayload);

/// Permit2's `TokenPermissions`: the token and the most the spender may transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Permit2TokenPermissions {
    /// The token (`requirements.asset`).
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub token: Address,
    /// The amount in atomic units (`requirements.amount`, = `PaymentInfo.maxAmount`).
    pub amount: Amount,
}

impl FromJson for Permit2TokenPermissions {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        Ok(Self {
            token: o.req("token", json::address)?,
            amount: o.req("amount", json::amount)?,
        })
    }
}

/// The payer's Permit2 `PermitTransferFrom` (no witness) as the wire carries it: spender = the
/// escrow's Permit2 collector, nonce = the payer-agnostic PaymentInfo hash read as a `uint256`,
/// deadline = `preApprovalExpiry`; numbers as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Permit2Authorization {
    /// The payer (the Permit2 `owner`).
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub from: Address,
    /// Token and amount.
    pub permitted: Permit2TokenPermissions,
    /// Who may spend the permit: the escrow's Permit2 collector.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub spender: Address,
    /// Permit2's unordered nonce (the payer-agnostic hash as a `uint256`, decimal).
    pub nonce: Amount,
    /// Unix seconds; the permit is good until then (inclusive, Permit2's rule).
    pub deadline: Amount,
}

impl FromJson for Permit2Authorization {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        Ok(Self {
            from: o.req("from", json::address)?,
            permitted: o.req_t("permitted")?,
            spender: o.req("spender", json::address)?,
            nonce: o.req("nonce", json::amount)?,
            deadline: o.req("deadline", json::amount)?,
        })
    }
}

json::deserialize_via_from_json!(Permit2Authorization);

/// The client's collect payload with Permit2 (`extra.assetTransferMethod: "permit2"`): the same
/// envelope as [`AuthCapturePayload`] with `permit2Authorization` in place of `authorization`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthCapturePermit2Payload {
    /// The signed `PermitTransferFrom`.
    pub permit2_authorization: Permit2Authorization,
    /// EIP-712 signature by `permit2Authorization.from` in Permit2's domain (65-byte ECDSA,
    /// ERC-1271 or EIP-6492).
    pub signature: Bytes,
    /// `PaymentInfo.salt` (random when unbound, the binding commitment when bound).
    pub salt: B256,
    /// The client's random value behind a bound salt; present if and only if bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salt_nonce: Option<B256>,
    /// Charge completion: the amount to charge and its fee.
    #[serde(flatten)]
    pub charge: AmountAndFee,
    /// Charge completion: EIP-712 `Charge` signature by the receiver authorizer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_signature: Option<Bytes>,
}

impl AuthCapturePermit2Payload {
    /// A client payload (no charge completion fields).
    pub fn new(
        permit2_authorization: Permit2Authorization,
        signature: Bytes,
        salt: B256,
        salt_nonce: Option<B256>,
    ) -> Self {
        Self {
            permit2_authorization,
            signature,
            salt,
            salt_nonce,
            charge: AmountAndFee::default(),
            authorizer_signature: None,
        }
    }
}

impl FromJson for AuthCapturePermit2Payload {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let payload = Self {
            permit2_authorization: o.req_t("permit2Authorization")?,
            signature: o.req("signature", json::signature)?,
            salt: o.req("salt", json::b256)?,
            salt_nonce: o.opt("saltNonce", json::b256)?,
            charge: AmountAndFee::from_obj(&o)?,
            authorizer_signature: o.opt("authorizerSignature", json::signature)?,
        };
        payload.charge.check_one_fee(&o)?;
        Ok(payload)
    }
}

json::deserialize_via_from_json!(AuthCapturePermit2Payload);

/// A fee in basis points, at most [`MAX_FEE_BPS`].
fn fee_bps(value: &Value, path: &str) -> Result<u16, DecodeError> {
    json::integer(value, path, 0, u64::from(MAX_FEE_BPS)).map(|n| n as u16)
}

/// The amount and fee a payload is settled with: a relayed `charge`'s completion
/// ([`AuthCapturePayload::charge`]) or a capture / refund ([`LifecyclePayload::settle`]). The
/// fee comes in atomic units (v1.1 escrows) or in basis points (v1.0 escrows, including ours),
/// never both. Written inline in its payload (`amount`, `feeAmount`, `feeBps`, `feeReceiver`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmountAndFee {
    /// The amount to charge, capture or refund.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// The fee in atomic units (v1.1 escrows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_amount: Option<Amount>,
    /// The fee in basis points (v1.0 escrows, including ours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_bps: Option<u16>,
    /// The fee receiver submitted with the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::primitives::serde_checksum::option")]
    pub fee_receiver: Option<Address>,
}

impl AmountAndFee {
    /// Decodes the four fields from the payload object they are written in.
    fn from_obj(o: &Obj<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            amount: o.opt("amount", json::amount)?,
            fee_amount: o.opt("feeAmount", json::amount)?,
            fee_bps: o.opt("feeBps", fee_bps)?,
            fee_receiver: o.opt("feeReceiver", json::address)?,
        })
    }

    /// Refuses a payload `o` that carries both `feeAmount` and `feeBps`.
    fn check_one_fee(&self, o: &Obj<'_>) -> Result<(), DecodeError> {
        if self.fee_amount.is_some() && self.fee_bps.is_some() {
            return Err(DecodeError::Inconsistent {
                field: o.field("feeBps"),
                reason: "a payload carries feeAmount or feeBps, not both".to_owned(),
            });
        }
        Ok(())
    }
}

/// `payload.type` of a lifecycle payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleOperation {
    /// Capture (part of) the authorized amount.
    Capture,
    /// Release the whole remaining authorization to the payer.
    Void,
    /// Return (part of) a captured amount to the payer.
    Refund,
}

json::from_json_one_of!(LifecycleOperation, "expected \"capture\", \"void\" or \"refund\"", {
    "capture" => Capture,
    "void" => Void,
    "refund" => Refund,
});

/// A server-authored lifecycle payload sent to `POST /settle` after the collect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePayload {
    /// The operation.
    #[serde(rename = "type")]
    pub operation: LifecycleOperation,
    /// The exact PaymentInfo the escrow call takes.
    pub payment_info: PaymentInfoJson,
    /// The client's salt nonce when the salt is bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salt_nonce: Option<B256>,
    /// Amount to capture or refund (required for those two), and the fee of a capture.
    #[serde(flatten)]
    pub settle: AmountAndFee,
    /// Capturable amount the authorizer expects on chain (single-use check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_capturable_amount: Option<Amount>,
    /// Refundable amount the authorizer expects on chain (single-use check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_refundable_amount: Option<Amount>,
    /// EIP-712 signature by the receiver authorizer over the operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer_signature: Option<Bytes>,
    /// Capture only: `Void` signature to release the remainder in the same settle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub void_authorizer_signature: Option<Bytes>,
}

impl LifecyclePayload {
    /// A lifecycle payload for `operation` on `payment_info`, every optional field absent (set
    /// `amount` for capture and refund, and the fee fields for capture).
    pub fn new(operation: LifecycleOperation, payment_info: PaymentInfoJson) -> Self {
        Self {
            operation,
            payment_info,
            salt_nonce: None,
            settle: AmountAndFee::default(),
            expected_capturable_amount: None,
            expected_refundable_amount: None,
            authorizer_signature: None,
            void_authorizer_signature: None,
        }
    }
}

impl FromJson for LifecyclePayload {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let operation = o.req_t("type")?;
        let payload = Self {
            operation,
            payment_info: o.req_t("paymentInfo")?,
            salt_nonce: o.opt("saltNonce", json::b256)?,
            settle: AmountAndFee::from_obj(&o)?,
            expected_capturable_amount: o.opt("expectedCapturableAmount", json::amount)?,
            expected_refundable_amount: o.opt("expectedRefundableAmount", json::amount)?,
            authorizer_signature: o.opt("authorizerSignature", json::signature)?,
            void_authorizer_signature: o.opt("voidAuthorizerSignature", json::signature)?,
        };
        let needs_amount = matches!(
            operation,
            LifecycleOperation::Capture | LifecycleOperation::Refund
        );
        if needs_amount && payload.settle.amount.is_none() {
            return Err(DecodeError::MissingField {
                field: o.field("amount"),
            });
        }
        if payload.void_authorizer_signature.is_some() && operation != LifecycleOperation::Capture {
            return Err(DecodeError::Inconsistent {
                field: o.field("voidAuthorizerSignature"),
                reason: "only a capture payload may carry voidAuthorizerSignature".to_owned(),
            });
        }
        payload.settle.check_one_fee(&o)?;
        Ok(payload)
    }
}

json::deserialize_via_from_json!(LifecyclePayload);

/// The escrow's `PaymentInfo` as JSON (lifecycle payloads, stored payments, test vectors):
/// addresses, `maxAmount` as a decimal string, expiries and fee bounds as numbers, `salt` as a
/// 32-byte hex word.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentInfoJson {
    /// `operator`.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub operator: Address,
    /// `payer`.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub payer: Address,
    /// `receiver`.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub receiver: Address,
    /// `token`.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub token: Address,
    /// `maxAmount` (uint120).
    pub max_amount: Amount,
    /// `preApprovalExpiry` (uint48).
    pub pre_approval_expiry: u64,
    /// `authorizationExpiry` (uint48).
    pub authorization_expiry: u64,
    /// `refundExpiry` (uint48).
    pub refund_expiry: u64,
    /// `minFeeBps`.
    pub min_fee_bps: u16,
    /// `maxFeeBps`.
    pub max_fee_bps: u16,
    /// `feeReceiver`.
    #[serde(serialize_with = "crate::primitives::serde_checksum::address")]
    pub fee_receiver: Address,
    /// `salt` (uint256, as 32 bytes).
    pub salt: B256,
}

impl FromJson for PaymentInfoJson {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let expiry = |v: &Value, p: &str| json::integer(v, p, 0, UINT48_MAX);
        let bps =
            |v: &Value, p: &str| json::integer(v, p, 0, u64::from(u16::MAX)).map(|n| n as u16);
        Ok(Self {
            operator: o.req("operator", json::address)?,
            payer: o.req("payer", json::address)?,
            receiver: o.req("receiver", json::address)?,
            token: o.req("token", json::address)?,
            max_amount: o.req("maxAmount", |v, p| {
                json::amount(v, p)?
                    .check_uint120()
                    .map_err(|reason| DecodeError::InvalidAmount {
                        field: p.to_owned(),
                        reason,
                    })
            })?,
            pre_approval_expiry: o.req("preApprovalExpiry", expiry)?,
            authorization_expiry: o.req("authorizationExpiry", expiry)?,
            refund_expiry: o.req("refundExpiry", expiry)?,
            min_fee_bps: o.req("minFeeBps", bps)?,
            max_fee_bps: o.req("maxFeeBps", bps)?,
            fee_receiver: o.req("feeReceiver", json::address)?,
            salt: o.req("salt", json::b256)?,
        })
    }
}

json::deserialize_via_from_json!(PaymentInfoJson);
