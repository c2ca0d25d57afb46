//! ERC-3009 (USDC "transfer with authorization") typed data: building, signing and verifying
//! the payer signatures x402 buyers produce.
//!
//! * [`ReceiveWithAuthorization`] is what an `auth-capture` payer signs; the
//!   `ERC3009PaymentCollector` spends it (`to` = the collector, which must be the caller).
//!   [`ReceiveWithAuthorization::for_payment`] builds the exact authorization a
//!   [`PaymentInfo`] requires.
//! * [`TransferWithAuthorization`] is what an `exact` payer signs.
//!
//! Both are EIP-712 structs (alloy `sol!`, so `SolStruct`) signed under the token's domain
//! [`token_domain`]`(name, version, chainId, token)`. Signatures are the 65 bytes
//! `r ‖ s ‖ v` with `v ∈ {27, 28}`, exactly as the official x402 client encodes them.
//!
//! Verification ([`Authorization::recover_signer`], [`Authorization::verify_signature`]) is
//! ECDSA only and as strict as USDC (FiatToken v2.2): `v` must be 27/28 and `s` in the lower
//! half of the curve order. Smart-contract wallets (ERC-1271) and counterfactual wallets
//! (ERC-6492-wrapped signatures) cannot be checked off chain this way; simulate the
//! escrow call (`eth_call`) for them instead.

use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use alloy::signers::{Signer, SignerSync};
use alloy::sol;
use alloy::sol_types::{Eip712Domain, SolStruct};

use crate::contracts::PaymentInfo;
use crate::hash::payer_agnostic_hash;

/// Declares an ERC-3009 EIP-712 message, an [`Authorization`] by `from`: both messages have the
/// same fields, and their names (part of the type hash) tell them apart.
macro_rules! authorization_message {
    ($(#[$doc:meta])* $name:ident) => {
        sol! {
            $(#[$doc])*
            #[derive(Debug, Default, PartialEq, Eq, Hash)]
            struct $name {
                address from;
                address to;
                uint256 value;
                uint256 validAfter;
                uint256 validBefore;
                bytes32 nonce;
            }
        }

        impl Authorization for $name {
            fn authorizer(&self) -> Address {
                self.from
            }
        }
    };
}

authorization_message!(
    /// ERC-3009 `ReceiveWithAuthorization`: `from` lets `to` (and only `to`, as the caller)
    /// pull `value` tokens between `validAfter` and `validBefore` (both exclusive), once per
    /// `nonce`.
    ReceiveWithAuthorization
);

authorization_message!(
    /// ERC-3009 `TransferWithAuthorization`: anyone may submit it to move `value` tokens from
    /// `from` to `to` between `validAfter` and `validBefore` (both exclusive), once per `nonce`.
    TransferWithAuthorization
);

/// Errors from signing or verifying an ERC-3009 authorization.
#[derive(Debug, thiserror::Error)]
pub enum Eip3009Error {
    /// The signer failed (remote signer unavailable, hardware wallet refused, ...).
    #[error("signing failed: {0}")]
    Signer(#[from] alloy::signers::Error),
    /// The signature is not 65 bytes (`r ‖ s ‖ v`).
    #[error("an ECDSA signature is 65 bytes (r || s || v), got {0} bytes")]
    InvalidLength(usize),
    /// `v` is not 27 or 28 (tokens pass it to `ecrecover`, which accepts nothing else).
    #[error("signature v must be 27 or 28, got {0}")]
    InvalidV(u8),
    /// `s` is in the upper half of the curve order: a malleable signature USDC rejects.
    #[error(
        "signature s value is in the upper half of the curve order (malleable); tokens reject it"
    )]
    HighS,
    /// No public key recovers from the signature (e.g. `r` is not a curve point).
    #[error("no signer recovers from the signature: {0}")]
    Recovery(#[from] alloy::primitives::SignatureError),
    /// The signature is valid but was made by someone other than the authorizer.
    #[error("signature is by {recovered}, but the authorization is from {expected}")]
    SignerMismatch {
        /// The authorization's `from`.
        expected: Address,
        /// Who actually signed.
        recovered: Address,
    },
}

/// The EIP-712 domain of an ERC-3009 token: `{name, version, chainId, verifyingContract}`.
///
/// x402 requirements carry `name` and `version` in `extra` (USDC: `"USD Coin"` on Base,
/// `"USDC"` on Base Sepolia; version `"2"`).
pub fn token_domain(name: &str, version: &str, chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(name.to_owned().into()),
        Some(version.to_owned().into()),
        Some(U256::from(chain_id)),
        Some(token),
        None,
    )
}

impl ReceiveWithAuthorization {
    /// The authorization the `ERC3009PaymentCollector` at `collector` spends for `payment_info`
    /// on the escrow at `escrow` on chain `chain_id`: `from` = payer, `to` = collector,
    /// `value` = maxAmount, `validAfter` = 0, `validBefore` = preApprovalExpiry,
    /// `nonce` = [`payer_agnostic_hash`].
    pub fn for_payment(
        payment_info: &PaymentInfo,
        collector: Address,
        chain_id: u64,
        escrow: Address,
    ) -> Self {
        Self {
            from: payment_info.payer,
            to: collector,
            value: U256::from(payment_info.maxAmount),
            validAfter: U256::ZERO,
            validBefore: U256::from(payment_info.preApprovalExpiry),
            nonce: payer_agnostic_hash(payment_info, chain_id, escrow),
        }
    }
}

/// Behaviour shared by [`ReceiveWithAuthorization`] and [`TransferWithAuthorization`].
pub trait Authorization: SolStruct {
    /// The account whose tokens move and who must sign (`from`).
    fn authorizer(&self) -> Address;

    /// The EIP-712 digest the authorizer signs under `domain` (see [`token_domain`]).
    fn signing_hash(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }

    /// Signs with a synchronous signer (e.g. `PrivateKeySigner`), returning the 65-byte
    /// `r ‖ s ‖ v` (`v` = 27/28) signature the token and the x402 payload expect.
    ///
    /// The result equals `signer.sign_typed_data_sync(self, domain)?.as_bytes()`; signing the
    /// digest keeps `dyn SignerSync` usable.
    fn sign<S: SignerSync + ?Sized>(
        &self,
        signer: &S,
        domain: &Eip712Domain,
    ) -> Result<Bytes, Eip3009Error> {
        let signature = signer.sign_hash_sync(&self.signing_hash(domain))?;
        Ok(Bytes::copy_from_slice(&signature.as_bytes()))
    }

    /// Recovers who signed `signature` (65 bytes, `v` = 27/28, low `s`) over this
    /// authorization under `domain`. ECDSA only; see the module docs for contract wallets.
    fn recover_signer(
        &self,
        domain: &Eip712Domain,
        signature: &[u8],
    ) -> Result<Address, Eip3009Error> {
        let signature = parse_signature(signature)?;
        Ok(signature.recover_address_from_prehash(&self.signing_hash(domain))?)
    }

    /// Checks that `signature` is the [`authorizer`](Self::authorizer)'s, as the token would.
    fn verify_signature(
        &self,
        domain: &Eip712Domain,
        signature: &[u8],
    ) -> Result<(), Eip3009Error> {
        let recovered = self.recover_signer(domain, signature)?;
        let expected = self.authorizer();
        if recovered == expected {
            Ok(())
        } else {
            Err(Eip3009Error::SignerMismatch {
                expected,
                recovered,
            })
        }
    }
}

/// Signs `authorization` with an asynchronous signer (keystore, remote or hardware signer),
/// returning the 65-byte `r ‖ s ‖ v` signature (`v` = 27/28).
pub async fn sign_async<T, S>(
    authorization: &T,
    signer: &S,
    domain: &Eip712Domain,
) -> Result<Bytes, Eip3009Error>
where
    T: Authorization + Sync,
    S: Signer + Sync + ?Sized,
{
    let signature = signer
        .sign_hash(&authorization.signing_hash(domain))
        .await?;
    Ok(Bytes::copy_from_slice(&signature.as_bytes()))
}

/// Checks, before any gas is spent, that `signature` is the payer's valid ERC-3009 signature for
/// `payment_info` as the `ERC3009PaymentCollector` at `collector` of the escrow at `escrow` on
/// chain `chain_id` will present it to the token with domain `token_domain`.
pub fn verify_payment_signature(
    payment_info: &PaymentInfo,
    collector: Address,
    chain_id: u64,
    escrow: Address,
    token_domain: &Eip712Domain,
    signature: &[u8],
) -> Result<(), Eip3009Error> {
    ReceiveWithAuthorization::for_payment(payment_info, collector, chain_id, escrow)
        .verify_signature(token_domain, signature)
}

/// Parses `r ‖ s ‖ v`, rejecting what `ecrecover`-based tokens reject.
fn parse_signature(signature: &[u8]) -> Result<Signature, Eip3009Error> {
    let bytes: &[u8; 65] = signature
        .try_into()
        .map_err(|_| Eip3009Error::InvalidLength(signature.len()))?;
    let v = bytes[64];
    if v != 27 && v != 28 {
        return Err(Eip3009Error::InvalidV(v));
    }
    let signature = Signature::from_raw_array(bytes)?;
    if signature.normalize_s().is_some() {
        return Err(Eip3009Error::HighS);
    }
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{address, b256};
    use alloy::signers::local::PrivateKeySigner;

    use super::*;

    fn sample() -> (PrivateKeySigner, TransferWithAuthorization, Eip712Domain) {
        let signer = PrivateKeySigner::random();
        let auth = TransferWithAuthorization {
            from: signer.address(),
            to: address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
            value: U256::from(10_000u64),
            validAfter: U256::ZERO,
            validBefore: U256::from(1_767_225_660u64),
            nonce: b256!("0707070707070707070707070707070707070707070707070707070707070707"),
        };
        let domain = token_domain(
            "USDC",
            "2",
            84532,
            address!("036CbD53842c5426634e7929541eC2318f3dCF7e"),
        );
        (signer, auth, domain)
    }

    #[test]
    fn typehashes_match_the_token() {
        let r = ReceiveWithAuthorization::default();
        let t = TransferWithAuthorization::default();
        assert_eq!(
            r.eip712_type_hash(),
            b256!("d099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8")
        );
        assert_eq!(
            t.eip712_type_hash(),
            b256!("7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
        );
    }

    #[test]
    fn sign_equals_sign_typed_data_and_recovers() {
        let (signer, auth, domain) = sample();
        let sig = auth.sign(&signer, &domain).unwrap();
        assert_eq!(sig.len(), 65);
        assert!(sig[64] == 27 || sig[64] == 28);
        let typed = signer.sign_typed_data_sync(&auth, &domain).unwrap();
        assert_eq!(sig.as_ref(), typed.as_bytes().as_slice());
        assert_eq!(
            auth.recover_signer(&domain, &sig).unwrap(),
            signer.address()
        );
        auth.verify_signature(&domain, &sig).unwrap();
        let dyn_signer: &dyn SignerSync = &signer;
        assert_eq!(auth.sign(dyn_signer, &domain).unwrap(), sig);
    }

    #[test]
    fn rejects_malformed_and_foreign_signatures() {
        let (signer, auth, domain) = sample();
        let sig = auth.sign(&signer, &domain).unwrap();

        assert!(matches!(
            auth.recover_signer(&domain, &sig[..64]),
            Err(Eip3009Error::InvalidLength(64))
        ));

        let mut v01 = sig.to_vec();
        v01[64] -= 27;
        assert!(matches!(
            auth.recover_signer(&domain, &v01),
            Err(Eip3009Error::InvalidV(_))
        ));

        // The malleable twin (n - s, flipped v) recovers the same key but tokens refuse it.
        let parsed = Signature::from_raw(&sig).unwrap();
        let high = Signature::new(
            parsed.r(),
            U256::from_be_bytes(SECP256K1_N) - parsed.s(),
            !parsed.v(),
        );
        assert!(matches!(
            auth.recover_signer(&domain, &high.as_bytes()),
            Err(Eip3009Error::HighS)
        ));

        let other = PrivateKeySigner::random();
        let foreign = auth.sign(&other, &domain).unwrap();
        match auth.verify_signature(&domain, &foreign) {
            Err(Eip3009Error::SignerMismatch {
                expected,
                recovered,
            }) => {
                assert_eq!(expected, signer.address());
                assert_eq!(recovered, other.address());
            }
            other => panic!("expected SignerMismatch, got {other:?}"),
        }

        let wrong_domain = token_domain("USD Coin", "2", 84532, domain.verifying_contract.unwrap());
        assert!(auth.verify_signature(&wrong_domain, &sig).is_err());
    }

    /// The secp256k1 group order.
    const SECP256K1_N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];

    #[tokio::test]
    async fn async_signing_matches_sync() {
        let (signer, auth, domain) = sample();
        assert_eq!(
            sign_async(&auth, &signer, &domain).await.unwrap(),
            auth.sign(&signer, &domain).unwrap()
        );
    }
}
