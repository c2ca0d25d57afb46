// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../AuthCaptureEscrow.sol";

/// @title PaymentInfoHash
/// @notice Hashes a calldata `PaymentInfo` the way `AuthCaptureEscrow.getHash` defines it, without
///         first copying the struct to memory field by field.
/// @dev `PaymentInfo` has only static fields, so ABI-encoded it is twelve contiguous calldata words
///      and `abi.encode(PAYMENT_INFO_TYPEHASH, paymentInfo)` is the typehash followed by those words.
///      Solidity validates calldata values only when they are read, so a word with dirty high bits
///      would otherwise hash to a different payment than the clean value the ABI decoder accepts:
///      such input is rejected here with the empty revert the ABI decoder itself uses.
library PaymentInfoHash {
    /// @dev keccak256("PaymentInfo(address operator,address payer,address receiver,address token,uint120 maxAmount,uint48 preApprovalExpiry,uint48 authorizationExpiry,uint48 refundExpiry,uint16 minFeeBps,uint16 maxFeeBps,address feeReceiver,uint256 salt)")
    bytes32 internal constant TYPEHASH = 0xae68ac7ce30c86ece8196b61a7c486d8f0061f575037fbd34e7fe4e2820c6591;

    /// @notice The escrow's hash of `paymentInfo` for `escrow` on the current chain.
    function hash(AuthCaptureEscrow.PaymentInfo calldata paymentInfo, address escrow)
        internal
        view
        returns (bytes32 result)
    {
        result = _hash(paymentInfo, escrow, false);
    }

    /// @notice The same hash with `payer` set to the zero address: the ERC-3009 nonce a payer signs
    ///         before the operator knows who will pay.
    function hashPayerAgnostic(AuthCaptureEscrow.PaymentInfo calldata paymentInfo, address escrow)
        internal
        view
        returns (bytes32 result)
    {
        result = _hash(paymentInfo, escrow, true);
    }

    function _hash(AuthCaptureEscrow.PaymentInfo calldata paymentInfo, address escrow, bool payerAgnostic)
        private
        view
        returns (bytes32 result)
    {
        /// @solidity memory-safe-assembly
        assembly {
            let m := mload(0x40)
            // Reject dirty high bits: addresses (words 0-3, 10) hold 160 bits, maxAmount 120,
            // the expiries 48 and the fee bounds 16. Word 11 (salt) is a full uint256.
            let dirty := or(
                or(
                    or(shr(160, calldataload(paymentInfo)), shr(160, calldataload(add(paymentInfo, 0x20)))),
                    or(shr(160, calldataload(add(paymentInfo, 0x40))), shr(160, calldataload(add(paymentInfo, 0x60))))
                ),
                or(
                    or(shr(120, calldataload(add(paymentInfo, 0x80))), shr(48, calldataload(add(paymentInfo, 0xa0)))),
                    or(
                        or(shr(48, calldataload(add(paymentInfo, 0xc0))), shr(48, calldataload(add(paymentInfo, 0xe0)))),
                        or(
                            or(shr(16, calldataload(add(paymentInfo, 0x100))), shr(16, calldataload(add(paymentInfo, 0x120)))),
                            shr(160, calldataload(add(paymentInfo, 0x140)))
                        )
                    )
                )
            )
            if dirty { revert(0, 0) }

            // keccak256(abi.encode(TYPEHASH, paymentInfo)), optionally with payer zeroed.
            mstore(m, TYPEHASH)
            calldatacopy(add(m, 0x20), paymentInfo, 0x180)
            if payerAgnostic { mstore(add(m, 0x40), 0) }
            let structHash := keccak256(m, 0x1a0)

            // keccak256(abi.encode(block.chainid, escrow, structHash))
            mstore(m, chainid())
            mstore(add(m, 0x20), escrow)
            mstore(add(m, 0x40), structHash)
            result := keccak256(m, 0x60)
        }
    }
}
