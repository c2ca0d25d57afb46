// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice An ERC-6492 prepare target that always reverts.
contract RevertingTarget {
    error PrepareFailed();

    fallback() external {
        revert PrepareFailed();
    }
}

/// @notice An ERC-6492 prepare target that records who called it and with what.
contract SenderRecorder {
    address public lastSender;
    bytes public lastData;
    uint256 public calls;

    fallback() external {
        lastSender = msg.sender;
        lastData = msg.data;
        ++calls;
    }
}
