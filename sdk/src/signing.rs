//! ERC-3009 digests, signing and ECDSA recovery for the wire's authorizations: a thin adapter
//! from [`Eip3009Authorization`] to the typed data of `x402_escrow_bindings::eip3009`.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::sol_types::Eip712Domain;
use x402_escrow_bindings::eip3009::{
    Authorization, Eip3009Error, ReceiveWithAuthorization, TransferWithAuthorization, token_domain,
};

use crate::schemes::Eip3009Authorization;

/// A token's EIP-712 domain: `{name, version}` from `extra`, the chain id from `network`,
/// `verifyingContract` = the asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDomain {
    /// EIP-712 name (`extra.name`).
    pub name: String,
    /// EIP-712 version (`extra.version`).
    pub version: String,
    /// Chain id.
    pub chain_id: u64,
    /// The token (verifying contract).
    pub token: Address,
}

impl TokenDomain {
    /// The alloy EIP-712 domain.
    pub fn eip712(&self) -> Eip712Domain {
        token_domain(&self.name, &self.version, self.chain_id, self.token)
    }
}

/// Why signing or recovery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The signer failed.
    #[error("signer failed: {0}")]
    Signer(String),
    /// The signature is not a 65-byte ECDSA signature.
    #[error("signature is {0} bytes long, not a 65-byte ECDSA signature")]
    NotEcdsa(usize),
    /// Recovery failed (v not 27/28, high s, r not on the curve).
    #[error("invalid ECDSA signature: {0}")]
    Recovery(String),
}

impl From<Eip3009Error> for SigningError {
    fn from(error: Eip3009Error) -> Self {
        match error {
            Eip3009Error::Signer(e) => Self::Signer(e.to_string()),
            Eip3009Error::InvalidLength(n) => Self::NotEcdsa(n),
            other => Self::Recovery(other.to_string()),
        }
    }
}

/// The six fields of a wire authorization as the ERC-3009 messages and calls type them, in their
/// order: `(from, to, value, validAfter, validBefore, nonce)`.
pub fn authorization_fields(
    auth: &Eip3009Authorization,
) -> (Address, Address, U256, U256, U256, B256) {
    (
        auth.from,
        auth.to,
        auth.value.get(),
        auth.valid_after.get(),
        auth.valid_before.get(),
        auth.nonce,
    )
}

/// The `ReceiveWithAuthorization` typed data of a wire authorization.
pub fn receive_with_authorization(auth: &Eip3009Authorization) -> ReceiveWithAuthorization {
    authorization_fields(auth).into()
}

/// The `TransferWithAuthorization` typed data of a wire authorization.
pub fn transfer_with_authorization(auth: &Eip3009Authorization) -> TransferWithAuthorization {
    authorization_fields(auth).into()
}

/// EIP-712 digest of a `ReceiveWithAuthorization` (auth-capture) in the token's domain.
pub fn receive_with_authorization_hash(token: &TokenDomain, auth: &Eip3009Authorization) -> B256 {
    receive_with_authorization(auth).signing_hash(&token.eip712())
}

/// EIP-712 digest of a `TransferWithAuthorization` (exact) in the token's domain.
pub fn transfer_with_authorization_hash(token: &TokenDomain, auth: &Eip3009Authorization) -> B256 {
    transfer_with_authorization(auth).signing_hash(&token.eip712())
}

/// Signs a digest; returns the 65-byte `r ‖ s ‖ v` signature (v = 27 or 28) the wire carries.
pub fn sign_hash<S: SignerSync + ?Sized>(signer: &S, hash: &B256) -> Result<Bytes, SigningError> {
    let signature = signer
        .sign_hash_sync(hash)
        .map_err(|e| SigningError::Signer(e.to_string()))?;
    Ok(Bytes::copy_from_slice(&signature.as_bytes()))
}

/// Recovers the signer of an ERC-3009 authorization in the token's domain: the payer of an
/// auth-capture [`receive_with_authorization`] or an exact [`transfer_with_authorization`].
pub fn recover_signer<A: Authorization>(
    token: &TokenDomain,
    message: &A,
    signature: &[u8],
) -> Result<Address, SigningError> {
    Ok(message.recover_signer(&token.eip712(), signature)?)
}
