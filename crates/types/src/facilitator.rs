//! The facilitator API: `POST /verify`, `POST /settle` bodies and responses, `GET /supported`.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::DecodeError;
use crate::amount::Amount;
use crate::json::{self, FromJson, Obj};
use crate::network::{self, Network};
use crate::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentRequirements, PaymentRequirementsV1, X402_VERSION_1,
    X402_VERSION_2,
};

/// Error reasons (`invalidReason`, `errorReason`) used by this project. Scheme-specific reasons
/// of the public `auth-capture` EVM binding are namespaced `invalid_auth_capture_evm_*`.
pub mod reasons {
    /// A settlement was broadcast but its receipt is not known yet; `transaction` holds the
    /// hash. Not a failure: the client must not pay again.
    pub const SETTLEMENT_PENDING: &str = "settlement_pending";
    /// The payload is malformed.
    pub const INVALID_PAYLOAD: &str = "invalid_payload";
    /// The requirements are malformed.
    pub const INVALID_PAYMENT_REQUIREMENTS: &str = "invalid_payment_requirements";
    /// The scheme is not supported.
    pub const UNSUPPORTED_SCHEME: &str = "unsupported_scheme";
    /// The network is not supported or not `eip155:<chainId>`.
    pub const INVALID_NETWORK: &str = "invalid_network";
    /// The x402 version is not supported.
    pub const INVALID_X402_VERSION: &str = "invalid_x402_version";
    /// The payer's balance is too low.
    pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
    /// `accepted` does not match the server's requirements.
    pub const REQUIREMENTS_MISMATCH: &str = "payment_requirements_mismatch";
    /// Unexpected failure while verifying.
    pub const UNEXPECTED_VERIFY_ERROR: &str = "unexpected_verify_error";
    /// Unexpected failure while settling.
    pub const UNEXPECTED_SETTLE_ERROR: &str = "unexpected_settle_error";
    /// `exact`: the signature is invalid.
    pub const EXACT_EVM_SIGNATURE: &str = "invalid_exact_evm_payload_signature";
    /// `exact`: the authorization has expired.
    pub const EXACT_EVM_VALID_BEFORE: &str = "invalid_exact_evm_payload_authorization_valid_before";
    /// `exact`: the authorization is not valid yet.
    pub const EXACT_EVM_VALID_AFTER: &str = "invalid_exact_evm_payload_authorization_valid_after";
    /// `exact`: the value is not the required amount.
    pub const EXACT_EVM_VALUE: &str = "invalid_exact_evm_payload_authorization_value";
    /// `exact`: the recipient is not `payTo`.
    pub const EXACT_EVM_RECIPIENT: &str = "invalid_exact_evm_payload_recipient_mismatch";
    /// `auth-capture`: payload shape.
    pub const AUTH_CAPTURE_PAYLOAD_FORMAT: &str = "invalid_auth_capture_evm_payload_format";
    /// `auth-capture`: `extra` invalid or unknown escrow.
    pub const AUTH_CAPTURE_EXTRA: &str = "invalid_auth_capture_evm_extra";
    /// `auth-capture`: network mismatch.
    pub const AUTH_CAPTURE_NETWORK_MISMATCH: &str = "invalid_auth_capture_evm_network_mismatch";
    /// `auth-capture`: value is not the amount.
    pub const AUTH_CAPTURE_AMOUNT_MISMATCH: &str = "invalid_auth_capture_evm_amount_mismatch";
    /// `auth-capture`: `to` is not the escrow's collector.
    pub const AUTH_CAPTURE_COLLECTOR_MISMATCH: &str =
        "invalid_auth_capture_evm_token_collector_mismatch";
    /// `auth-capture`: the nonce is not the payer-agnostic hash.
    pub const AUTH_CAPTURE_NONCE_MISMATCH: &str = "invalid_auth_capture_evm_nonce_mismatch";
    /// `auth-capture`: the bound salt does not open to `saltNonce`.
    pub const AUTH_CAPTURE_SALT_BINDING_MISMATCH: &str =
        "invalid_auth_capture_evm_salt_binding_mismatch";
    /// `auth-capture`: client signature invalid.
    pub const AUTH_CAPTURE_SIGNATURE: &str = "invalid_auth_capture_evm_signature";
    /// `auth-capture`: authorization expired.
    pub const AUTH_CAPTURE_AUTHORIZATION_EXPIRED: &str =
        "invalid_auth_capture_evm_authorization_expired";
    /// `auth-capture`: authorization not valid yet.
    pub const AUTH_CAPTURE_NOT_YET_VALID: &str =
        "invalid_auth_capture_evm_authorization_not_yet_valid";
    /// `auth-capture`: deadlines out of order.
    pub const AUTH_CAPTURE_DEADLINE_ORDERING: &str = "invalid_auth_capture_evm_deadline_ordering";
    /// `auth-capture`: capture deadline passed or too close.
    pub const AUTH_CAPTURE_CAPTURE_DEADLINE_EXPIRED: &str =
        "invalid_auth_capture_evm_capture_deadline_expired";
    /// `auth-capture`: `assetTransferMethod` not supported.
    pub const AUTH_CAPTURE_UNSUPPORTED_TRANSFER_METHOD: &str =
        "invalid_auth_capture_evm_unsupported_asset_transfer_method";
    /// `auth-capture`: the payload's kind is not the `assetTransferMethod` of `extra`.
    pub const AUTH_CAPTURE_PAYLOAD_METHOD_MISMATCH: &str =
        "invalid_auth_capture_evm_payload_method_mismatch";
    /// `auth-capture`: the Permit2 permit is for another token than `asset`.
    pub const AUTH_CAPTURE_TOKEN_MISMATCH: &str = "invalid_auth_capture_evm_token_mismatch";
    /// `auth-capture` with Permit2: the payer has not approved Permit2 for enough of the token
    /// (the operator's own reason; the x402 list names none).
    pub const PERMIT2_ALLOWANCE_MISSING: &str = "permit2_allowance_missing";
    /// `auth-capture`: lifecycle `payload.type` invalid.
    pub const AUTH_CAPTURE_PAYLOAD_TYPE: &str = "invalid_auth_capture_evm_payload_type";
    /// `auth-capture`: `paymentInfo.operator` is not `captureAuthorizer`.
    pub const AUTH_CAPTURE_OPERATOR_MISMATCH: &str = "invalid_auth_capture_evm_operator_mismatch";
    /// `auth-capture`: `extra.operatorType` is unknown or not implemented here.
    pub const AUTH_CAPTURE_UNSUPPORTED_OPERATOR_TYPE: &str =
        "invalid_auth_capture_evm_unsupported_operator_type";
    /// `auth-capture`: the operator is not on the allowlist, or a `delegated`
    /// `captureAuthorizer` is not an address this facilitator submits from.
    pub const AUTH_CAPTURE_OPERATOR_NOT_ADMITTED: &str =
        "invalid_auth_capture_evm_operator_not_admitted";
    /// `auth-capture`: `extra.policy` does not fit the operator type (non-zero for `delegated`).
    pub const AUTH_CAPTURE_POLICY: &str = "invalid_auth_capture_evm_policy";
    /// `auth-capture`: a lifecycle payload for an operator whose lifecycle is not relayed
    /// (`custom`, or `delegated` without a receiver authorizer).
    pub const AUTH_CAPTURE_LIFECYCLE_NOT_RELAYED: &str =
        "invalid_auth_capture_evm_lifecycle_not_relayed";
    /// `auth-capture`: `extra.receiverAuthorizer` is absent or zero for a relayed `charge`.
    pub const AUTH_CAPTURE_MISSING_RECEIVER_AUTHORIZER: &str =
        "invalid_auth_capture_evm_missing_receiver_authorizer";
    /// `auth-capture`: `authorizerSignature` does not recover to `extra.receiverAuthorizer`.
    pub const AUTH_CAPTURE_AUTHORIZER_SIGNATURE: &str =
        "invalid_auth_capture_evm_authorizer_signature";
    /// `auth-capture`: `voidAuthorizerSignature` is misplaced or does not recover to
    /// `extra.receiverAuthorizer` over the `Void` digest.
    pub const AUTH_CAPTURE_VOID_AUTHORIZER_SIGNATURE: &str =
        "invalid_auth_capture_evm_void_authorizer_signature";
    /// `auth-capture`: capture-and-void whose capture takes the whole capturable amount.
    pub const AUTH_CAPTURE_VOID_REMAINDER_FULL_CAPTURE: &str =
        "invalid_auth_capture_evm_void_remainder_full_capture";
    /// `auth-capture`: the escrow's `capturableAmount` / `refundableAmount` are not the ones
    /// the authorizer signed.
    pub const AUTH_CAPTURE_UNEXPECTED_PAYMENT_STATE: &str =
        "invalid_auth_capture_evm_unexpected_payment_state";
    /// `auth-capture`: a refund at or after `refundDeadline`.
    pub const AUTH_CAPTURE_REFUND_DEADLINE_EXPIRED: &str =
        "invalid_auth_capture_evm_refund_deadline_expired";
    /// `auth-capture`: no refund liquidity for the operator (for us: the merchant's refund
    /// reserve cannot fund it).
    pub const AUTH_CAPTURE_REFUND_FUNDING_UNAVAILABLE: &str =
        "invalid_auth_capture_evm_refund_funding_unavailable";
}

/// The body of `POST /verify` and `POST /settle` of one protocol version: the client's payment
/// `P` and the server's requirements `R` it is checked against ([`VerifyRequest`] in v2,
/// [`VerifyRequestV1`] in v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyBody<P, R> {
    /// The protocol version: 2 for [`VerifyRequest`], 1 for [`VerifyRequestV1`].
    pub x402_version: u8,
    /// The client's payment.
    pub payment_payload: P,
    /// The server's requirements the payment is checked against.
    pub payment_requirements: R,
}

impl<P: FromJson, R: FromJson> VerifyBody<P, R> {
    /// Decodes a body whose `x402Version` must be `version`.
    fn from_json_version(value: &Value, path: &str, version: u8) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let x402_version = json::expect_version(&o, version)?;
        Ok(Self {
            x402_version,
            payment_payload: o.req_t("paymentPayload")?,
            payment_requirements: o.req_t("paymentRequirements")?,
        })
    }
}

/// The body of `POST /verify` and `POST /settle` (v2).
pub type VerifyRequest = VerifyBody<PaymentPayload, PaymentRequirements>;

/// `POST /settle` takes the same body as `/verify`.
pub type SettleRequest = VerifyRequest;

/// The body of `POST /verify` and `POST /settle` (v1).
pub type VerifyRequestV1 = VerifyBody<PaymentPayloadV1, PaymentRequirementsV1>;

impl VerifyRequest {
    /// A v2 request.
    pub fn new(payment_payload: PaymentPayload, payment_requirements: PaymentRequirements) -> Self {
        Self {
            x402_version: X402_VERSION_2,
            payment_payload,
            payment_requirements,
        }
    }
}

impl FromJson for VerifyRequest {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        Self::from_json_version(value, path, X402_VERSION_2)
    }
}

impl FromJson for VerifyRequestV1 {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        Self::from_json_version(value, path, X402_VERSION_1)
    }
}

json::deserialize_via_from_json!(VerifyRequest);
json::deserialize_via_from_json!(VerifyRequestV1);

/// A `/verify` or `/settle` body of either version, dispatched on `x402Version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FacilitatorRequest {
    /// v1 body.
    V1(Box<VerifyRequestV1>),
    /// v2 body.
    V2(Box<VerifyRequest>),
}

impl FacilitatorRequest {
    /// The v2 form (a v1 payload is lifted with its v1 requirements).
    pub fn into_v2(self) -> Result<VerifyRequest, DecodeError> {
        match self {
            Self::V2(request) => Ok(*request),
            Self::V1(request) => {
                let (requirements, _) = request.payment_requirements.to_v2();
                let payload = request
                    .payment_payload
                    .into_v2(&request.payment_requirements)?;
                Ok(VerifyRequest::new(payload, requirements))
            }
        }
    }

    /// The protocol version of the body.
    pub fn version(&self) -> u8 {
        match self {
            Self::V1(_) => X402_VERSION_1,
            Self::V2(_) => X402_VERSION_2,
        }
    }
}

impl FromJson for FacilitatorRequest {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        match o.value("x402Version")?.as_u64() {
            Some(1) => VerifyRequestV1::from_json(value, path).map(|r| Self::V1(Box::new(r))),
            _ => VerifyRequest::from_json(value, path).map(|r| Self::V2(Box::new(r))),
        }
    }
}

json::deserialize_via_from_json!(FacilitatorRequest);

/// The response of `POST /verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment is valid.
    pub is_valid: bool,
    /// Machine-readable reason when invalid (see [`reasons`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Human-readable detail when invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// The payer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::primitives::serde_checksum::option")]
    pub payer: Option<Address>,
}

impl VerifyResponse {
    /// A valid payment by `payer`.
    pub fn valid(payer: Address) -> Self {
        Self {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer: Some(payer),
        }
    }

    /// An invalid payment.
    pub fn invalid(
        reason: impl Into<String>,
        message: impl Into<String>,
        payer: Option<Address>,
    ) -> Self {
        Self {
            is_valid: false,
            invalid_reason: Some(reason.into()),
            invalid_message: Some(message.into()),
            payer,
        }
    }
}

impl FromJson for VerifyResponse {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        Ok(Self {
            is_valid: o.req("isValid", json::boolean)?,
            invalid_reason: o.opt_str("invalidReason")?,
            invalid_message: o.opt_str("invalidMessage")?,
            payer: o.opt("payer", json::address)?,
        })
    }
}

json::deserialize_via_from_json!(VerifyResponse);

/// The response of `POST /settle`, also sent to the client in `PAYMENT-RESPONSE`
/// (`X-PAYMENT-RESPONSE` in v1, where the network is written by v1 name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether settlement succeeded.
    pub success: bool,
    /// Machine-readable reason when not successful (`settlement_pending` included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Human-readable detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The payer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::primitives::serde_checksum::option")]
    pub payer: Option<Address>,
    /// The transaction hash; `None` is written as `""` (failure before any broadcast).
    #[serde(serialize_with = "serialize_transaction")]
    pub transaction: Option<B256>,
    /// The network.
    pub network: Network,
    /// The amount settled, in atomic units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Extensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Map<String, Value>>,
}

fn serialize_transaction<S: Serializer>(
    tx: &Option<B256>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match tx {
        Some(hash) => hash.serialize(serializer),
        None => serializer.serialize_str(""),
    }
}

impl SettleResponse {
    /// A successful settlement.
    pub fn success(
        transaction: B256,
        network: Network,
        payer: Address,
        amount: Option<Amount>,
    ) -> Self {
        Self {
            success: true,
            error_reason: None,
            error_message: None,
            payer: Some(payer),
            transaction: Some(transaction),
            network,
            amount,
            extensions: None,
        }
    }

    /// A failed settlement (no transaction).
    pub fn failure(
        reason: impl Into<String>,
        message: impl Into<String>,
        network: Network,
        payer: Option<Address>,
    ) -> Self {
        Self {
            success: false,
            error_reason: Some(reason.into()),
            error_message: Some(message.into()),
            payer,
            transaction: None,
            network,
            amount: None,
            extensions: None,
        }
    }

    /// A broadcast whose receipt is not known yet: `errorReason: "settlement_pending"` with the
    /// transaction hash. The client must treat it as paid-pending, never pay again.
    pub fn pending(transaction: B256, network: Network, payer: Address) -> Self {
        Self {
            success: false,
            error_reason: Some(reasons::SETTLEMENT_PENDING.to_owned()),
            error_message: Some("transaction broadcast, receipt not yet known".to_owned()),
            payer: Some(payer),
            transaction: Some(transaction),
            network,
            amount: None,
            extensions: None,
        }
    }

    /// Whether this reports a pending settlement.
    pub fn is_pending(&self) -> bool {
        self.error_reason.as_deref() == Some(reasons::SETTLEMENT_PENDING)
    }

    pub(crate) fn from_json_versioned(
        value: &Value,
        path: &str,
        v1: bool,
    ) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let response = Self {
            success: o.req("success", json::boolean)?,
            error_reason: o.opt_str("errorReason")?,
            error_message: o.opt_str("errorMessage")?,
            payer: o.opt("payer", json::address)?,
            transaction: o.req("transaction", |v, p| match json::string(v, p)? {
                "" => Ok(None),
                _ => json::b256(v, p).map(Some),
            })?,
            network: o.req(
                "network",
                if v1 {
                    Network::from_json_v1
                } else {
                    Network::from_json_v2
                },
            )?,
            amount: o.opt("amount", json::amount)?,
            extensions: o.opt_map("extensions")?,
        };
        if (response.success || response.is_pending()) && response.transaction.is_none() {
            return Err(DecodeError::Inconsistent {
                field: o.field("transaction"),
                reason: "a successful or pending settlement must name its transaction".to_owned(),
            });
        }
        if response.success && response.error_reason.is_some() {
            return Err(DecodeError::Inconsistent {
                field: o.field("errorReason"),
                reason: "a successful settlement carries no errorReason".to_owned(),
            });
        }
        Ok(response)
    }

    /// The v1 JSON form (network by v1 name, no v2-only fields).
    pub fn to_v1_json(&self) -> Value {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct V1<'a> {
            success: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            error_reason: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            #[serde(serialize_with = "crate::primitives::serde_checksum::option")]
            payer: Option<Address>,
            #[serde(serialize_with = "serialize_transaction")]
            transaction: Option<B256>,
            #[serde(serialize_with = "network::serialize_v1")]
            network: Network,
        }
        let v1 = V1 {
            success: self.success,
            error_reason: self.error_reason.as_deref(),
            payer: self.payer,
            transaction: self.transaction,
            network: self.network,
        };
        serde_json::to_value(v1).unwrap_or(Value::Null)
    }
}

impl FromJson for SettleResponse {
    /// Strict v2 decoding (CAIP-2 network).
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        Self::from_json_versioned(value, path, false)
    }
}

json::deserialize_via_from_json!(SettleResponse);

/// One scheme/network pair a facilitator supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// Protocol version.
    pub x402_version: u8,
    /// Scheme.
    pub scheme: String,
    /// Network (CAIP-2 in v2, a name in v1; other facilitators may list non-EVM networks).
    pub network: String,
    /// Scheme-specific data (auth-capture: `captureAuthorizer`, fee terms, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

impl FromJson for SupportedKind {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        Ok(Self {
            x402_version: o.req("x402Version", |v, p| {
                json::integer(v, p, 1, 2).map(|n| n as u8)
            })?,
            scheme: o.req("scheme", json::non_empty_string)?,
            network: o.req("network", json::non_empty_string)?,
            extra: o.opt_value("extra").cloned(),
        })
    }
}

json::deserialize_via_from_json!(SupportedKind);

/// The response of `GET /supported`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SupportedResponse {
    /// Supported kinds.
    pub kinds: Vec<SupportedKind>,
    /// Supported extension names.
    pub extensions: Vec<String>,
    /// Addresses the facilitator submits from, by family (`"eip155:*"`).
    #[serde(serialize_with = "crate::primitives::serde_checksum::map")]
    pub signers: BTreeMap<String, Vec<Address>>,
}

impl FromJson for SupportedResponse {
    fn from_json(value: &Value, path: &str) -> Result<Self, DecodeError> {
        let o = Obj::new(value, path)?;
        let kinds = o.req("kinds", |v, p| {
            json::array(v, p)?
                .iter()
                .enumerate()
                .map(|(i, k)| SupportedKind::from_json(k, &json::index(p, i)))
                .collect()
        })?;
        let extensions = o
            .opt("extensions", |v, p| {
                json::array(v, p)?
                    .iter()
                    .enumerate()
                    .map(|(i, e)| json::string(e, &json::index(p, i)).map(str::to_owned))
                    .collect::<Result<Vec<_>, _>>()
            })?
            .unwrap_or_default();
        let signers = o
            .opt("signers", |v, p| {
                json::object(v, p)?
                    .iter()
                    .map(|(family, addresses)| {
                        let fp = json::join(p, family);
                        let list = json::array(addresses, &fp)?
                            .iter()
                            .enumerate()
                            .map(|(i, a)| json::address(a, &json::index(&fp, i)))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok((family.clone(), list))
                    })
                    .collect::<Result<BTreeMap<_, _>, DecodeError>>()
            })?
            .unwrap_or_default();
        Ok(Self {
            kinds,
            extensions,
            signers,
        })
    }
}

json::deserialize_via_from_json!(SupportedResponse);
