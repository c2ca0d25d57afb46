// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IMulticall3} from "../interfaces/IMulticall3.sol";

/// @title Multicall3
/// @notice The `tryAggregate` subset of Multicall3, for development chains where the public
///         singleton (0xcA11bde05977b3631167028862bE2a173976CA11) has no code. The ERC-3009
///         collector routes ERC-6492 prepare calls through it.
contract Multicall3 is IMulticall3 {
    /// @inheritdoc IMulticall3
    function tryAggregate(bool requireSuccess, Call[] calldata calls)
        external
        payable
        returns (Result[] memory returnData)
    {
        returnData = new Result[](calls.length);
        for (uint256 i; i < calls.length; ++i) {
            (bool success, bytes memory ret) = calls[i].target.call(calls[i].callData);
            if (requireSuccess && !success) revert CallFailed(i, ret);
            returnData[i] = Result({success: success, returnData: ret});
        }
    }

    /// @notice Call `index` failed while `requireSuccess` was set.
    error CallFailed(uint256 index, bytes returnData);
}
