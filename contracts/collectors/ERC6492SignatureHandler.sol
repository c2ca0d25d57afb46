// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IMulticall3} from "../interfaces/IMulticall3.sol";

/// @title ERC6492SignatureHandler
/// @notice Lets a counterfactual smart wallet pay before it is deployed. An ERC-6492 signature is
///         `abi.encode(prepareTarget, prepareData, innerSignature) ++ 0x6492…6492`; the prepare call
///         (usually a factory deploying the wallet) runs first, then the token validates
///         `innerSignature` as usual (ERC-1271 on the now-deployed wallet).
/// @dev The prepare call goes through the public Multicall3 with `requireSuccess = false`, so it
///      cannot act with this collector's identity and a failing or already-done preparation does not
///      block the payment (the token's own signature check still decides).
abstract contract ERC6492SignatureHandler {
    /// @dev The 32-byte ERC-6492 suffix.
    bytes32 internal constant _ERC6492_MAGIC_VALUE = 0x6492649264926492649264926492649264926492649264926492649264926492;

    /// @notice The Multicall3 the prepare calls go through.
    IMulticall3 public immutable multicall3;

    /// @param multicall3_ The Multicall3 deployment (0xcA11…CA11 on public chains).
    constructor(address multicall3_) {
        multicall3 = IMulticall3(multicall3_);
    }

    /// @dev Returns `signature` untouched unless it carries the ERC-6492 suffix; otherwise runs the
    ///      prepare call and returns the inner signature.
    function _handleERC6492Signature(bytes calldata signature) internal returns (bytes memory) {
        uint256 length = signature.length;
        if (length < 32 || bytes32(signature[length - 32:]) != _ERC6492_MAGIC_VALUE) return signature;

        (address prepareTarget, bytes memory prepareData, bytes memory innerSignature) =
            abi.decode(signature[:length - 32], (address, bytes, bytes));

        IMulticall3.Call[] memory calls = new IMulticall3.Call[](1);
        calls[0] = IMulticall3.Call({target: prepareTarget, callData: prepareData});
        multicall3.tryAggregate(false, calls);

        return innerSignature;
    }
}
