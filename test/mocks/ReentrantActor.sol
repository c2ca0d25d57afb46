// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ICollectHook} from "./MockCollectors.sol";
import {ITokenTransferHook} from "./MockTokens.sol";

/// @title ReentrantActor
/// @notice A contract account that plays operator and/or payer in the escrow and, when armed, makes
///         one pre-recorded call back into the escrow from inside a token hook or a collector hook.
///         Because it is the operator (or payer) of the payment it re-enters on, the re-entrant call
///         would pass the sender check; only the reentrancy lock can stop it.
/// @dev Two modes: `bubble` re-raises the re-entrant call's revert (so the outer operation fails
///      with it), otherwise the revert data is recorded in `lastRevertData` and the outer operation
///      continues, so a test can inspect exactly how the re-entrant call failed.
contract ReentrantActor is ITokenTransferHook, ICollectHook {
    /// @notice The test contract that deployed this actor and alone may drive it.
    address public immutable owner;

    /// @notice The contract the armed call goes to.
    address public reentryTarget;
    /// @notice The calldata of the armed call.
    bytes public reentryData;
    /// @notice Whether the next hook fires the call (it disarms itself when it does).
    bool public armed;
    /// @notice Whether a failing re-entrant call makes the hook revert with the same data.
    bool public bubble;

    /// @notice How many re-entrant calls were attempted.
    uint256 public attempts;
    /// @notice Whether the last re-entrant call succeeded.
    bool public lastSucceeded;
    /// @notice The revert data of the last failed re-entrant call.
    bytes public lastRevertData;

    /// @notice Someone other than the owner tried to drive the actor.
    error NotOwner();

    constructor() {
        owner = msg.sender;
    }

    /// @notice Makes an arbitrary call as this actor (approve, preApprove, authorize, ...).
    /// @param target The callee.
    /// @param data The calldata.
    /// @return result The callee's return data; a revert is re-raised verbatim.
    function execute(address target, bytes calldata data) external returns (bytes memory result) {
        if (msg.sender != owner) revert NotOwner();
        bool ok;
        (ok, result) = target.call(data);
        if (!ok) _raise(result);
    }

    /// @notice Arms the actor: the next hook call makes `target.call(data)` once.
    /// @param target The callee (the escrow).
    /// @param data The calldata of the re-entrant call.
    /// @param bubble_ Whether to re-raise its revert.
    function arm(address target, bytes calldata data, bool bubble_) external {
        if (msg.sender != owner) revert NotOwner();
        reentryTarget = target;
        reentryData = data;
        bubble = bubble_;
        armed = true;
    }

    /// @inheritdoc ITokenTransferHook
    function onTokenTransfer(address, address, uint256) external {
        _reenter();
    }

    /// @inheritdoc ICollectHook
    function onCollect() external {
        _reenter();
    }

    /// @dev Fires the armed call once.
    function _reenter() private {
        if (!armed) return;
        armed = false;
        ++attempts;
        (bool ok, bytes memory result) = reentryTarget.call(reentryData);
        lastSucceeded = ok;
        if (!ok) {
            lastRevertData = result;
            if (bubble) _raise(result);
        }
    }

    /// @dev Reverts with `data` as is.
    function _raise(bytes memory data) private pure {
        assembly {
            revert(add(data, 0x20), mload(data))
        }
    }
}
