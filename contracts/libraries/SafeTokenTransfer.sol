// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title SafeTokenTransfer
/// @notice ERC-20 `transfer` / `transferFrom` that fail the way OpenZeppelin's SafeERC20 (v5) does,
///         which is what the reference Commerce Payments contracts use, so an integrator decodes the
///         same revert data from our escrow as from theirs:
///         - the token reverts: its own revert data is passed through byte for byte;
///         - the token returns anything but the ABI word `true`: `SafeERC20FailedOperation(token)`;
///         - the token returns nothing (USDT style): success, unless the address has no code, which
///           is `SafeERC20FailedOperation(token)` too.
/// @dev Gas. The calldata is written into scratch space and the words after it (the free memory
///      pointer and, for `transferFrom`, the zero slot), which are restored after the call: no
///      memory is allocated or expanded and Solidity's `abi.encodeCall` copy and bounds checks are
///      skipped. Only one word of return data is copied (into scratch), so a long return costs
///      nothing. The common case, a token that returns `true`, is one combined test of the call's
///      result and that word (which cannot read 1 after a return shorter than a word), in the same
///      assembly block as the call: a separate checking function cost a jump and a second look at
///      the return data, ~35 gas per transfer under the deploy settings. Everything else is off
///      that path: bubbling a revert (copied to memory offset 0, as nothing of the frame's memory
///      is needed once it reverts) and, for a token that returns nothing, `extcodesize` on an
///      address the call has already warmed (100 gas). `SafeERC20FailedOperation` is raised in
///      Solidity rather than in assembly so that it appears in the ABI of every contract using the
///      library, as it does in the reference's; that code runs only on failure. Measured against
///      solady's SafeTransferLib (used before): ~22 gas more per successful transfer (saving and
///      restoring the free memory pointer, and the Solidity-level failure flag).
library SafeTokenTransfer {
    /// @notice `token` answered a transfer with something other than `true`, or has no code.
    /// @param token The token that failed (OpenZeppelin SafeERC20's error, same selector).
    error SafeERC20FailedOperation(address token);

    /// @dev Moves `amount` of `token` from this contract to `to`.
    function safeTransfer(address token, address to, uint256 amount) internal {
        bool failed;
        /// @solidity memory-safe-assembly
        assembly {
            let freeMemoryPointer := mload(0x40)
            mstore(0x00, 0xa9059cbb) // transfer(address,uint256), its selector at 0x1c
            mstore(0x20, to)
            mstore(0x40, amount)
            let success := call(gas(), token, 0, 0x1c, 0x44, 0x00, 0x20)
            // The word at 0x00 reads 1 only if the token returned a full word equal to 1: a shorter
            // return leaves the selector's last byte (0xbb) in place, so it cannot read 1.
            if iszero(and(eq(mload(0x00), 1), success)) {
                if iszero(success) {
                    returndatacopy(0x00, 0x00, returndatasize())
                    revert(0x00, returndatasize())
                }
                // Did not revert, did not return `true`: acceptable only as no data from code.
                failed := or(gt(returndatasize(), 0), iszero(extcodesize(token)))
            }
            mstore(0x40, freeMemoryPointer)
        }
        if (failed) revert SafeERC20FailedOperation(token);
    }

    /// @dev Moves `amount` of `token` from `from` to `to` on this contract's allowance.
    function safeTransferFrom(address token, address from, address to, uint256 amount) internal {
        bool failed;
        /// @solidity memory-safe-assembly
        assembly {
            let freeMemoryPointer := mload(0x40)
            mstore(0x00, 0x23b872dd) // transferFrom(address,address,uint256), its selector at 0x1c
            mstore(0x20, from)
            mstore(0x40, to)
            mstore(0x60, amount)
            let success := call(gas(), token, 0, 0x1c, 0x64, 0x00, 0x20)
            // As in safeTransfer; here the selector's last byte 0xdd stays in place.
            if iszero(and(eq(mload(0x00), 1), success)) {
                if iszero(success) {
                    returndatacopy(0x00, 0x00, returndatasize())
                    revert(0x00, returndatasize())
                }
                // Did not revert, did not return `true`: acceptable only as no data from code.
                failed := or(gt(returndatasize(), 0), iszero(extcodesize(token)))
            }
            mstore(0x40, freeMemoryPointer)
            mstore(0x60, 0)
        }
        if (failed) revert SafeERC20FailedOperation(token);
    }
}
