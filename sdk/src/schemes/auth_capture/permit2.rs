//! Permit2 `PermitTransferFrom` (no witness) as the `auth-capture` scheme signs it: the EIP-712
//! message in Permit2's domain (name `"Permit2"`, no version, the chain id, the canonical Permit2
//! address), its digest and ECDSA recovery.

use alloy::primitives::{Address, B256, Signature, U256};
use alloy::sol;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};
use x402_escrow_bindings::deploy::PERMIT2;
use x402_escrow_types::schemes::auth_capture::Permit2Authorization;

use crate::signing::SigningError;

sol! {
    /// Permit2's `TokenPermissions`.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct TokenPermissions {
        address token;
        uint256 amount;
    }

    /// Permit2's `PermitTransferFrom` as signed (the spender is part of the signed message,
    /// not of the on-chain struct).
    #[derive(Debug, Default, PartialEq, Eq)]
    struct PermitTransferFrom {
        TokenPermissions permitted;
        address spender;
        uint256 nonce;
        uint256 deadline;
    }
}

/// Permit2's EIP-712 domain on `chain_id`: name `"Permit2"`, no version, the canonical address.
pub fn permit2_domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "Permit2",
        chain_id: chain_id,
        verifying_contract: PERMIT2,
    }
}

/// The typed message of a wire Permit2 authorization.
pub fn permit_transfer_from(auth: &Permit2Authorization) -> PermitTransferFrom {
    PermitTransferFrom {
        permitted: TokenPermissions {
            token: auth.permitted.token,
            amount: auth.permitted.amount.get(),
        },
        spender: auth.spender,
        nonce: auth.nonce.get(),
        deadline: auth.deadline.get(),
    }
}

/// EIP-712 digest of a wire Permit2 authorization on `chain_id`: what the payer signs.
pub fn permit2_signing_hash(chain_id: u64, auth: &Permit2Authorization) -> B256 {
    permit_transfer_from(auth).eip712_signing_hash(&permit2_domain(chain_id))
}

/// The Permit2 nonce of a payer-agnostic PaymentInfo hash (the same 32 bytes as a `uint256`).
pub fn permit2_nonce(payer_agnostic_hash: B256) -> U256 {
    U256::from_be_bytes(payer_agnostic_hash.0)
}

/// Recovers the signer of a 65-byte ECDSA signature of `auth` on `chain_id`, as Permit2's
/// `SignatureVerification` does for an owner without code (`r ‖ s ‖ v`, v = 27 or 28).
pub fn recover_permit2_signer(
    chain_id: u64,
    auth: &Permit2Authorization,
    signature: &[u8],
) -> Result<Address, SigningError> {
    if signature.len() != 65 {
        return Err(SigningError::NotEcdsa(signature.len()));
    }
    let parsed =
        Signature::try_from(signature).map_err(|e| SigningError::Recovery(e.to_string()))?;
    if !matches!(signature[64], 27 | 28) {
        return Err(SigningError::Recovery(format!(
            "v is {}, not 27 or 28",
            signature[64]
        )));
    }
    parsed
        .recover_address_from_prehash(&permit2_signing_hash(chain_id, auth))
        .map_err(|e| SigningError::Recovery(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::keccak256;

    /// The type string Permit2 hashes (`PermitHash._PERMIT_TRANSFER_FROM_TYPEHASH`).
    #[test]
    fn type_hash_is_permit2s() {
        let expected = keccak256(
            "PermitTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline)TokenPermissions(address token,uint256 amount)",
        );
        assert_eq!(PermitTransferFrom::default().eip712_type_hash(), expected);
        assert_eq!(
            TokenPermissions::default().eip712_type_hash(),
            keccak256("TokenPermissions(address token,uint256 amount)")
        );
    }
}
