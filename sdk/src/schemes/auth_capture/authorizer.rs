//! Receiver-authorizer signatures of `auth-capture` v1.1 (`operatorType: "delegated"`): the
//! EIP-712 consent a server gives for each call the client did not sign itself — a relayed
//! `charge`, and the lifecycle calls `capture`, `void` and `refund` sent to `POST /settle`.
//!
//! - Domain: `{name: "x402 Auth Capture Operator", version: "1", chainId, verifyingContract:
//!   captureAuthorizer}` ([`authorizer_domain`]).
//! - Types ([`AuthorizerMessage`]): `Charge`, `Capture`, `Void`, `Refund`. `Charge` and `Capture`
//!   sign the fee argument the escrow call takes: `uint256 feeAmount` on a v1.1 escrow,
//!   `uint16 feeBps` on a v1.0 one ([`SubmittedFee`]).
//! - `Capture` and `Refund` bind the balances the authorizer expects to find on chain
//!   ([`ExpectedState`]): the pair cannot recur once either moved, so each signature is
//!   single-use without a nonce.
//!
//! Servers sign with [`sign_authorizer`] (or build a whole payload with
//! [`signed_lifecycle_payload`]); facilitators recover ECDSA signers with
//! [`recover_authorizer`] and check contract authorizers (ERC-1271) on chain against
//! [`AuthorizerMessage::signing_hash`].

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::signers::Signer;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};
use x402_escrow_types::schemes::auth_capture::{
    AmountAndFee, LifecycleOperation, LifecyclePayload, PaymentInfoJson,
};

use crate::amount::Amount;
use crate::signing::SigningError;

/// The EIP-712 domain name of authorizer signatures.
pub const AUTHORIZER_DOMAIN_NAME: &str = "x402 Auth Capture Operator";
/// The EIP-712 domain version of authorizer signatures.
pub const AUTHORIZER_DOMAIN_VERSION: &str = "1";

/// The typed messages with a v1.1 fee (`uint256 feeAmount`), and `Void` / `Refund` (the same in
/// both versions).
pub mod typed {
    alloy::sol! {
        /// A relayed `charge` (v1.1 escrow).
        #[derive(Debug, Default, PartialEq, Eq)]
        struct Charge {
            bytes32 paymentInfoHash;
            uint256 amount;
            address tokenCollector;
            bytes32 collectorDataHash;
            uint256 feeAmount;
            address feeReceiver;
        }

        /// A `capture` (v1.1 escrow).
        #[derive(Debug, Default, PartialEq, Eq)]
        struct Capture {
            bytes32 paymentInfoHash;
            uint256 amount;
            uint256 feeAmount;
            address feeReceiver;
            uint256 expectedCapturableAmount;
            uint256 expectedRefundableAmount;
        }

        /// A `void`.
        #[derive(Debug, Default, PartialEq, Eq)]
        struct Void {
            bytes32 paymentInfoHash;
        }

        /// A `refund` (the collector is the deployment's operator refund collector).
        #[derive(Debug, Default, PartialEq, Eq)]
        struct Refund {
            bytes32 paymentInfoHash;
            uint256 amount;
            address tokenCollector;
            uint256 expectedCapturableAmount;
            uint256 expectedRefundableAmount;
        }
    }

    /// `Charge` and `Capture` of a v1.0 escrow (`uint16 feeBps`).
    pub mod v1_0 {
        alloy::sol! {
            /// A relayed `charge` (v1.0 escrow).
            #[derive(Debug, Default, PartialEq, Eq)]
            struct Charge {
                bytes32 paymentInfoHash;
                uint256 amount;
                address tokenCollector;
                bytes32 collectorDataHash;
                uint16 feeBps;
                address feeReceiver;
            }

            /// A `capture` (v1.0 escrow).
            #[derive(Debug, Default, PartialEq, Eq)]
            struct Capture {
                bytes32 paymentInfoHash;
                uint256 amount;
                uint16 feeBps;
                address feeReceiver;
                uint256 expectedCapturableAmount;
                uint256 expectedRefundableAmount;
            }
        }
    }
}

/// The authorizers' domain for a payment whose operator is `capture_authorizer`.
pub fn authorizer_domain(chain_id: u64, capture_authorizer: Address) -> Eip712Domain {
    eip712_domain! {
        name: AUTHORIZER_DOMAIN_NAME,
        version: AUTHORIZER_DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: capture_authorizer,
    }
}

/// The fee argument the escrow call takes, and so the one the authorizer signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmittedFee {
    /// v1.1 escrow: the fee in atomic units.
    Amount(U256),
    /// v1.0 escrow: the fee in basis points.
    Bps(u16),
}

/// The escrow balances an authorizer expects to find (`paymentState` of the payment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpectedState {
    /// `capturableAmount`.
    pub capturable: U256,
    /// `refundableAmount`.
    pub refundable: U256,
}

/// One operation an authorizer consents to, with every value its typed message signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizerMessage {
    /// A relayed `charge`.
    Charge {
        /// The amount charged.
        amount: U256,
        /// The token collector of the charge.
        token_collector: Address,
        /// The collector data exactly as submitted (hashed into the message).
        collector_data: Bytes,
        /// The submitted fee.
        fee: SubmittedFee,
        /// The submitted fee receiver.
        fee_receiver: Address,
    },
    /// A `capture`.
    Capture {
        /// The amount captured.
        amount: U256,
        /// The submitted fee.
        fee: SubmittedFee,
        /// The submitted fee receiver.
        fee_receiver: Address,
        /// The balances expected before the capture.
        expected: ExpectedState,
    },
    /// A `void`.
    Void,
    /// A `refund`.
    Refund {
        /// The amount refunded.
        amount: U256,
        /// The refund's token collector (the operator refund collector).
        token_collector: Address,
        /// The balances expected before the refund.
        expected: ExpectedState,
    },
}

impl AuthorizerMessage {
    /// The EIP-712 digest the authorizer signs for the payment `payment_info_hash` (the escrow's
    /// `getHash`) under `domain` ([`authorizer_domain`]).
    pub fn signing_hash(&self, domain: &Eip712Domain, payment_info_hash: B256) -> B256 {
        use typed::v1_0;
        match self {
            Self::Charge {
                amount,
                token_collector,
                collector_data,
                fee,
                fee_receiver,
            } => {
                let collector_data_hash = keccak256(collector_data);
                match *fee {
                    SubmittedFee::Amount(fee_amount) => typed::Charge {
                        paymentInfoHash: payment_info_hash,
                        amount: *amount,
                        tokenCollector: *token_collector,
                        collectorDataHash: collector_data_hash,
                        feeAmount: fee_amount,
                        feeReceiver: *fee_receiver,
                    }
                    .eip712_signing_hash(domain),
                    SubmittedFee::Bps(fee_bps) => v1_0::Charge {
                        paymentInfoHash: payment_info_hash,
                        amount: *amount,
                        tokenCollector: *token_collector,
                        collectorDataHash: collector_data_hash,
                        feeBps: fee_bps,
                        feeReceiver: *fee_receiver,
                    }
                    .eip712_signing_hash(domain),
                }
            }
            Self::Capture {
                amount,
                fee,
                fee_receiver,
                expected,
            } => match *fee {
                SubmittedFee::Amount(fee_amount) => typed::Capture {
                    paymentInfoHash: payment_info_hash,
                    amount: *amount,
                    feeAmount: fee_amount,
                    feeReceiver: *fee_receiver,
                    expectedCapturableAmount: expected.capturable,
                    expectedRefundableAmount: expected.refundable,
                }
                .eip712_signing_hash(domain),
                SubmittedFee::Bps(fee_bps) => v1_0::Capture {
                    paymentInfoHash: payment_info_hash,
                    amount: *amount,
                    feeBps: fee_bps,
                    feeReceiver: *fee_receiver,
                    expectedCapturableAmount: expected.capturable,
                    expectedRefundableAmount: expected.refundable,
                }
                .eip712_signing_hash(domain),
            },
            Self::Void => typed::Void {
                paymentInfoHash: payment_info_hash,
            }
            .eip712_signing_hash(domain),
            Self::Refund {
                amount,
                token_collector,
                expected,
            } => typed::Refund {
                paymentInfoHash: payment_info_hash,
                amount: *amount,
                tokenCollector: *token_collector,
                expectedCapturableAmount: expected.capturable,
                expectedRefundableAmount: expected.refundable,
            }
            .eip712_signing_hash(domain),
        }
    }
}

/// Signs `message` for the payment `payment_info_hash` whose operator is `capture_authorizer`.
pub async fn sign_authorizer<S: Signer + ?Sized>(
    signer: &S,
    chain_id: u64,
    capture_authorizer: Address,
    payment_info_hash: B256,
    message: &AuthorizerMessage,
) -> Result<Bytes, SigningError> {
    let digest = message.signing_hash(
        &authorizer_domain(chain_id, capture_authorizer),
        payment_info_hash,
    );
    let signature = signer
        .sign_hash(&digest)
        .await
        .map_err(|e| SigningError::Signer(e.to_string()))?;
    Ok(Bytes::from(signature.as_bytes().to_vec()))
}

/// Recovers the ECDSA signer of `signature` over `digest` (65 bytes, `r ‖ s ‖ v`, v = 27 or
/// 28). A longer signature is a contract's (ERC-1271, or an ERC-6492 envelope): the caller
/// checks it on chain.
pub fn recover_authorizer(digest: B256, signature: &[u8]) -> Result<Address, SigningError> {
    if signature.len() != 65 {
        return Err(SigningError::NotEcdsa(signature.len()));
    }
    if !matches!(signature[64], 27 | 28) {
        return Err(SigningError::Recovery(format!(
            "v is {}, not 27 or 28",
            signature[64]
        )));
    }
    let parsed = alloy::primitives::Signature::try_from(signature)
        .map_err(|e| SigningError::Recovery(e.to_string()))?;
    parsed
        .recover_address_from_prehash(&digest)
        .map_err(|e| SigningError::Recovery(e.to_string()))
}

/// What a server asks the facilitator to do with a held payment: the lifecycle operation and
/// its values, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleRequest {
    /// Capture `amount` with `fee` to `fee_receiver`; with `void_rest`, void what remains in
    /// the same settle (a `voidAuthorizerSignature` is added).
    Capture {
        /// The amount captured.
        amount: U256,
        /// The submitted fee.
        fee: SubmittedFee,
        /// The submitted fee receiver.
        fee_receiver: Address,
        /// The balances expected before the capture.
        expected: ExpectedState,
        /// Void the remainder in the same settle.
        void_rest: bool,
    },
    /// Void the whole remaining hold.
    Void,
    /// Refund `amount` through the operator refund collector `token_collector`.
    Refund {
        /// The amount refunded.
        amount: U256,
        /// The deployment's operator refund collector.
        token_collector: Address,
        /// The balances expected before the refund.
        expected: ExpectedState,
    },
}

/// A lifecycle payload for `request` on the payment `payment_info` (its hash on the escrow is
/// `payment_info_hash`), signed by the receiver authorizer `signer`. `salt_nonce` is the
/// client's salt nonce of a bound payment.
pub async fn signed_lifecycle_payload<S: Signer + ?Sized>(
    signer: &S,
    chain_id: u64,
    payment_info: PaymentInfoJson,
    payment_info_hash: B256,
    salt_nonce: Option<B256>,
    request: &LifecycleRequest,
) -> Result<LifecyclePayload, SigningError> {
    let operator = payment_info.operator;
    let sign = |message: AuthorizerMessage| async move {
        sign_authorizer(signer, chain_id, operator, payment_info_hash, &message).await
    };
    let (operation, message) = match request {
        LifecycleRequest::Capture {
            amount,
            fee,
            fee_receiver,
            expected,
            ..
        } => (
            LifecycleOperation::Capture,
            AuthorizerMessage::Capture {
                amount: *amount,
                fee: *fee,
                fee_receiver: *fee_receiver,
                expected: *expected,
            },
        ),
        LifecycleRequest::Void => (LifecycleOperation::Void, AuthorizerMessage::Void),
        LifecycleRequest::Refund {
            amount,
            token_collector,
            expected,
        } => (
            LifecycleOperation::Refund,
            AuthorizerMessage::Refund {
                amount: *amount,
                token_collector: *token_collector,
                expected: *expected,
            },
        ),
    };
    let mut payload = LifecyclePayload::new(operation, payment_info);
    payload.salt_nonce = salt_nonce;
    payload.authorizer_signature = Some(sign(message).await?);
    match request {
        LifecycleRequest::Capture {
            amount,
            fee,
            fee_receiver,
            expected,
            void_rest,
        } => {
            payload.settle = AmountAndFee {
                amount: Some(Amount::new(*amount)),
                fee_amount: match fee {
                    SubmittedFee::Amount(a) => Some(Amount::new(*a)),
                    SubmittedFee::Bps(_) => None,
                },
                fee_bps: match fee {
                    SubmittedFee::Bps(b) => Some(*b),
                    SubmittedFee::Amount(_) => None,
                },
                fee_receiver: Some(*fee_receiver),
            };
            set_expected(&mut payload, expected);
            if *void_rest {
                payload.void_authorizer_signature = Some(sign(AuthorizerMessage::Void).await?);
            }
        }
        LifecycleRequest::Void => {}
        LifecycleRequest::Refund {
            amount, expected, ..
        } => {
            payload.settle.amount = Some(Amount::new(*amount));
            set_expected(&mut payload, expected);
        }
    }
    Ok(payload)
}

fn set_expected(payload: &mut LifecyclePayload, expected: &ExpectedState) {
    payload.expected_capturable_amount = Some(Amount::new(expected.capturable));
    payload.expected_refundable_amount = Some(Amount::new(expected.refundable));
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256};
    use alloy::signers::local::PrivateKeySigner;

    /// The type strings of the public scheme (`scheme_auth_capture_evm.md`, "Types").
    #[test]
    fn type_hashes_are_the_schemes() {
        let cases: [(B256, &str); 6] = [
            (
                typed::Charge::default().eip712_type_hash(),
                "Charge(bytes32 paymentInfoHash,uint256 amount,address tokenCollector,bytes32 collectorDataHash,uint256 feeAmount,address feeReceiver)",
            ),
            (
                typed::Capture::default().eip712_type_hash(),
                "Capture(bytes32 paymentInfoHash,uint256 amount,uint256 feeAmount,address feeReceiver,uint256 expectedCapturableAmount,uint256 expectedRefundableAmount)",
            ),
            (
                typed::Void::default().eip712_type_hash(),
                "Void(bytes32 paymentInfoHash)",
            ),
            (
                typed::Refund::default().eip712_type_hash(),
                "Refund(bytes32 paymentInfoHash,uint256 amount,address tokenCollector,uint256 expectedCapturableAmount,uint256 expectedRefundableAmount)",
            ),
            (
                typed::v1_0::Charge::default().eip712_type_hash(),
                "Charge(bytes32 paymentInfoHash,uint256 amount,address tokenCollector,bytes32 collectorDataHash,uint16 feeBps,address feeReceiver)",
            ),
            (
                typed::v1_0::Capture::default().eip712_type_hash(),
                "Capture(bytes32 paymentInfoHash,uint256 amount,uint16 feeBps,address feeReceiver,uint256 expectedCapturableAmount,uint256 expectedRefundableAmount)",
            ),
        ];
        for (hash, type_string) in cases {
            assert_eq!(hash, keccak256(type_string), "{type_string}");
        }
    }

    const KEY: B256 = b256!("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
    const OPERATOR: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    const PAYMENT: B256 =
        b256!("0x1111111111111111111111111111111111111111111111111111111111111111");

    fn capture() -> AuthorizerMessage {
        AuthorizerMessage::Capture {
            amount: U256::from(750_000u64),
            fee: SubmittedFee::Amount(U256::from(7_500u64)),
            fee_receiver: address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            expected: ExpectedState {
                capturable: U256::from(1_000_000u64),
                refundable: U256::ZERO,
            },
        }
    }

    /// The digest, recomputed by hand from the EIP-712 definition: `0x1901 ‖ domainSeparator ‖
    /// hashStruct(message)`, each part from its own type string.
    #[test]
    fn capture_digest_is_eip712_by_hand() {
        use alloy::sol_types::SolValue;
        let domain_type = keccak256(
            "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
        );
        let separator = keccak256(
            (
                domain_type,
                keccak256(AUTHORIZER_DOMAIN_NAME),
                keccak256(AUTHORIZER_DOMAIN_VERSION),
                U256::from(8453u64),
                OPERATOR,
            )
                .abi_encode(),
        );
        let struct_hash = keccak256(
            (
                keccak256(
                    "Capture(bytes32 paymentInfoHash,uint256 amount,uint256 feeAmount,address feeReceiver,uint256 expectedCapturableAmount,uint256 expectedRefundableAmount)",
                ),
                PAYMENT,
                U256::from(750_000u64),
                U256::from(7_500u64),
                address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
                U256::from(1_000_000u64),
                U256::ZERO,
            )
                .abi_encode(),
        );
        let mut preimage = vec![0x19, 0x01];
        preimage.extend_from_slice(separator.as_slice());
        preimage.extend_from_slice(struct_hash.as_slice());
        assert_eq!(
            capture().signing_hash(&authorizer_domain(8453, OPERATOR), PAYMENT),
            keccak256(preimage)
        );
    }

    /// Each field is signed: changing any value, the fee version, the operator or the chain
    /// changes the digest.
    #[test]
    fn every_value_is_bound() {
        let domain = authorizer_domain(8453, OPERATOR);
        let base = capture().signing_hash(&domain, PAYMENT);
        let AuthorizerMessage::Capture {
            amount,
            fee_receiver,
            expected,
            ..
        } = capture()
        else {
            unreachable!("capture() is a capture")
        };
        let variants = [
            AuthorizerMessage::Capture {
                amount: amount + U256::from(1u8),
                fee: SubmittedFee::Amount(U256::from(7_500u64)),
                fee_receiver,
                expected,
            },
            AuthorizerMessage::Capture {
                amount,
                fee: SubmittedFee::Bps(100),
                fee_receiver,
                expected,
            },
            AuthorizerMessage::Capture {
                amount,
                fee: SubmittedFee::Amount(U256::from(7_500u64)),
                fee_receiver,
                expected: ExpectedState {
                    capturable: expected.capturable,
                    refundable: U256::from(1u8),
                },
            },
        ];
        for v in variants {
            assert_ne!(v.signing_hash(&domain, PAYMENT), base, "{v:?}");
        }
        assert_ne!(capture().signing_hash(&domain, B256::ZERO), base);
        assert_ne!(
            capture().signing_hash(&authorizer_domain(84532, OPERATOR), PAYMENT),
            base
        );
        assert_ne!(
            capture().signing_hash(&authorizer_domain(8453, Address::ZERO), PAYMENT),
            base
        );
    }

    /// Signatures made by another implementation of EIP-712 (foundry's `cast wallet sign --data
    /// --from-file`, 1.7.1, over the typed-data JSON of the same messages with the same key):
    /// ours are byte for byte the same (RFC 6979 signatures are deterministic).
    #[tokio::test]
    async fn signatures_match_foundrys_typed_data_signer() {
        let signer = PrivateKeySigner::from_bytes(&KEY).unwrap();
        let capture_v1_1 = sign_authorizer(&signer, 8453, OPERATOR, PAYMENT, &capture())
            .await
            .unwrap();
        assert_eq!(
            capture_v1_1.to_string(),
            "0x6a1cd1fca231f0b409c47182fab815771b1c606dc127364471f91fc03fe0a0912e9d0ea8a7525143de7f8e8b95145ce5f8529e6728a57a159b0924c1be08c2db1c"
        );
        let charge_v1_0 = AuthorizerMessage::Charge {
            amount: U256::from(750_000u64),
            token_collector: address!("0x0E3dF9510de65469C4518D7843919c0b8C7A7757"),
            collector_data: Bytes::new(),
            fee: SubmittedFee::Bps(100),
            fee_receiver: address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        };
        let charge = sign_authorizer(&signer, 8453, OPERATOR, PAYMENT, &charge_v1_0)
            .await
            .unwrap();
        assert_eq!(
            charge.to_string(),
            "0x13be837d805b712e9e9c00ee8e9aeb41388dfbf398cd8476e9336c07c8235166109affab335bcaf5dc0af258a41d5ed1e00128a456791d5537a2074a832c016d1b"
        );
    }

    #[tokio::test]
    async fn signed_payloads_recover_to_the_authorizer() {
        let signer = PrivateKeySigner::from_bytes(&KEY).unwrap();
        let info = PaymentInfoJson {
            operator: OPERATOR,
            payer: address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906"),
            receiver: address!("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
            token: address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
            max_amount: Amount::new(U256::from(1_000_000u64)),
            pre_approval_expiry: 1_740_675_754,
            authorization_expiry: 1_740_758_554,
            refund_expiry: 1_741_276_954,
            min_fee_bps: 100,
            max_fee_bps: 100,
            fee_receiver: address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
            salt: B256::repeat_byte(7),
        };
        let request = LifecycleRequest::Capture {
            amount: U256::from(750_000u64),
            fee: SubmittedFee::Amount(U256::from(7_500u64)),
            fee_receiver: info.fee_receiver,
            expected: ExpectedState {
                capturable: U256::from(1_000_000u64),
                refundable: U256::ZERO,
            },
            void_rest: true,
        };
        let payload = signed_lifecycle_payload(
            &signer,
            8453,
            info,
            PAYMENT,
            Some(B256::repeat_byte(9)),
            &request,
        )
        .await
        .unwrap();
        let domain = authorizer_domain(8453, OPERATOR);
        let signature = payload.authorizer_signature.clone().unwrap();
        assert_eq!(
            recover_authorizer(capture().signing_hash(&domain, PAYMENT), &signature).unwrap(),
            signer.address()
        );
        let void = payload.void_authorizer_signature.clone().unwrap();
        assert_eq!(
            recover_authorizer(
                AuthorizerMessage::Void.signing_hash(&domain, PAYMENT),
                &void
            )
            .unwrap(),
            signer.address()
        );
        // The wire form the scheme shows: type, the amounts as decimal strings.
        let json = serde_json::to_value(&payload).unwrap();
        assert_eq!(json["type"], "capture");
        assert_eq!(json["amount"], "750000");
        assert_eq!(json["feeAmount"], "7500");
        assert_eq!(json["expectedCapturableAmount"], "1000000");
        assert_eq!(json["expectedRefundableAmount"], "0");
        assert!(json.get("feeBps").is_none());
        // Another digest does not recover to the authorizer.
        assert_ne!(
            recover_authorizer(B256::ZERO, &signature).unwrap(),
            signer.address()
        );
        assert!(matches!(
            recover_authorizer(B256::ZERO, &signature[..64]),
            Err(SigningError::NotEcdsa(64))
        ));
    }
}
