// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IMulticall3
/// @notice The `tryAggregate` entry point of the public Multicall3 singleton.
interface IMulticall3 {
    /// @notice One call of an aggregate.
    struct Call {
        /// @dev The contract to call.
        address target;
        /// @dev The calldata.
        bytes callData;
    }

    /// @notice The outcome of one call.
    struct Result {
        /// @dev Whether the call succeeded.
        bool success;
        /// @dev What it returned (or its revert data).
        bytes returnData;
    }

    /// @notice Makes every call; reverts on a failed one only if `requireSuccess`.
    /// @param requireSuccess Revert when any call fails.
    /// @param calls The calls to make, in order.
    /// @return returnData The outcome of each call.
    function tryAggregate(bool requireSuccess, Call[] calldata calls)
        external
        payable
        returns (Result[] memory returnData);
}
