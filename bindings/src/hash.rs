//! Off-chain payment hashes, identical to the escrow's `getHash`.
//!
//! ```text
//! structHash      = keccak256(abi.encode(PAYMENT_INFO_TYPEHASH, paymentInfo))
//! paymentInfoHash = keccak256(abi.encode(chainId, escrow, structHash))
//! ```
//!
//! The payer-agnostic hash is the same with `payer = address(0)`; it is the ERC-3009 nonce the
//! payer signs (so the signature can be made before the operator knows who pays) and the key
//! under which the token records the authorization as used.

use alloy::primitives::{Address, B256, U256, b256, keccak256};
use alloy::sol_types::SolValue;

use crate::contracts::PaymentInfo;

/// The EIP-712-style type string of `PaymentInfo`.
pub const PAYMENT_INFO_TYPE: &str = "PaymentInfo(address operator,address payer,address receiver,address token,uint120 maxAmount,uint48 preApprovalExpiry,uint48 authorizationExpiry,uint48 refundExpiry,uint16 minFeeBps,uint16 maxFeeBps,address feeReceiver,uint256 salt)";

/// `keccak256(PAYMENT_INFO_TYPE)`, the escrow's public `PAYMENT_INFO_TYPEHASH`.
pub const PAYMENT_INFO_TYPEHASH: B256 =
    b256!("ae68ac7ce30c86ece8196b61a7c486d8f0061f575037fbd34e7fe4e2820c6591");

/// `keccak256(abi.encode(PAYMENT_INFO_TYPEHASH, paymentInfo))`: the chain- and escrow-independent
/// part of the payment hash.
pub fn payment_info_struct_hash(payment_info: &PaymentInfo) -> B256 {
    keccak256((PAYMENT_INFO_TYPEHASH, payment_info.clone()).abi_encode())
}

/// The escrow's `getHash(paymentInfo)` for the escrow at `escrow` on chain `chain_id`: the key of
/// the payment in `paymentState` and in every escrow event.
pub fn payment_info_hash(payment_info: &PaymentInfo, chain_id: u64, escrow: Address) -> B256 {
    keccak256(
        (
            U256::from(chain_id),
            escrow,
            payment_info_struct_hash(payment_info),
        )
            .abi_encode(),
    )
}

/// [`payment_info_hash`] of `payment_info` with `payer` set to the zero address: the ERC-3009
/// nonce of the payer's `ReceiveWithAuthorization` for this payment.
pub fn payer_agnostic_hash(payment_info: &PaymentInfo, chain_id: u64, escrow: Address) -> B256 {
    let mut agnostic = payment_info.clone();
    agnostic.payer = Address::ZERO;
    payment_info_hash(&agnostic, chain_id, escrow)
}

#[cfg(test)]
mod tests {
    use alloy::sol_types::SolStruct;

    use super::*;

    #[test]
    fn typehash_matches_type_string() {
        assert_eq!(keccak256(PAYMENT_INFO_TYPE), PAYMENT_INFO_TYPEHASH);
    }

    #[test]
    fn struct_hash_is_the_eip712_struct_hash() {
        // Every PaymentInfo field is atomic, so abi.encode(typehash, info) is EIP-712 encodeData.
        let info = PaymentInfo {
            operator: Address::repeat_byte(1),
            payer: Address::repeat_byte(2),
            maxAmount: alloy::primitives::aliases::U120::from(1_000_000u64),
            salt: U256::from(42u64),
            ..Default::default()
        };
        assert_eq!(info.eip712_type_hash(), PAYMENT_INFO_TYPEHASH);
        assert_eq!(info.eip712_hash_struct(), payment_info_struct_hash(&info));
    }

    #[test]
    fn payer_agnostic_ignores_payer() {
        let escrow = Address::repeat_byte(9);
        let mut info = PaymentInfo {
            payer: Address::repeat_byte(2),
            ..Default::default()
        };
        let a = payer_agnostic_hash(&info, 1, escrow);
        info.payer = Address::repeat_byte(3);
        assert_eq!(payer_agnostic_hash(&info, 1, escrow), a);
        assert_ne!(payment_info_hash(&info, 1, escrow), a);
        info.payer = Address::ZERO;
        assert_eq!(payment_info_hash(&info, 1, escrow), a);
        assert_ne!(payment_info_hash(&info, 2, escrow), a);
    }
}
