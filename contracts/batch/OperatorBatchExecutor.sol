// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title OperatorBatchExecutor
/// @notice Lets an operator's signer EOA send many escrow calls (authorize, capture, void, refund,
///         charge, ... on any Commerce Payments `AuthCaptureEscrow`) in one transaction while staying
///         `msg.sender` of each of them.
///
///         The EOA delegates to this contract with EIP-7702, then sends a transaction to itself
///         calling `execute(calls)` (or `executeAll`). The code runs in the EOA's context, so every
///         inner call is made by the EOA: the escrow's `msg.sender == paymentInfo.operator` check
///         holds without any change to the escrow.
///
/// @dev Threat model.
///      - Who can call: only the EOA itself. `execute` and `executeAll` require
///        `msg.sender == address(this)`, which under delegation means a transaction the EOA signed
///        and sent to itself (or a call this code makes to itself from inside such a transaction).
///        Anyone else, including any contract the batch calls and which calls back, reverts with
///        `Unauthorized(caller)`. At the contract's own deployment address the check can never pass
///        (the contract never calls itself unless already inside `execute`), so that instance is inert.
///      - Delegation: set only by the operator's own key (an EIP-7702 authorization is signed by the
///        EOA's private key); this contract has no owner, no initializer and nothing to configure.
///        Whoever holds that key already controls the EOA; the executor adds no new power.
///      - No storage, on purpose: a 7702 delegate shares storage with the EOA, and the EOA may later
///        delegate elsewhere. This contract declares no state variables and writes no slot
///        (constants live in the code), so it cannot collide with, or leave state for, any other
///        delegate.
///      - No approvals, no funds of its own: the executor code grants no allowance and holds nothing.
///        Tokens and allowances (e.g. the operator's approval of a refund collector) stay the EOA's,
///        exactly as without delegation, and are only moved by calls the EOA itself put in a batch.
///      - Receiving: `receive()` keeps plain ETH transfers to the EOA working. There is deliberately
///        no `fallback` and no ERC-721 / ERC-1155 receiver hook: a "safe" NFT transfer to the
///        delegated EOA reverts (the token stays with its sender) instead of landing in an account
///        whose tooling does not expect it. The operator's signer holds no NFTs.
///      - Value-less calls: escrow calls carry no ETH, so `Call` has no value field and the entry
///        points are not payable; ETH can still leave the EOA through an ordinary transaction.
///      - Gas griefing: a call target (or a token it calls) can return an arbitrarily large revert
///        blob. Only the first `MAX_REVERT_DATA` bytes are ever copied into memory, so one failing
///        member cannot make the rest of the batch run out of gas through memory expansion. A
///        target can still burn the gas forwarded to it (all but 1/64 of what is left); the batch
///        author chooses the targets, so that is a cost of their own choosing.
contract OperatorBatchExecutor {
    /// @notice One call of a batch.
    /// @param target The contract to call; must have code, or the call counts as failed.
    /// @param data The calldata (selector and arguments).
    struct Call {
        address target;
        bytes data;
    }

    /// @notice The most revert data kept from a failed call: a selector and eight 32-byte words
    ///         (room for every escrow error and an `Error(string)` message of up to 192 bytes). Longer
    ///         revert data is truncated to this length.
    uint256 public constant MAX_REVERT_DATA = 4 + 32 * 8;

    /// @notice Call `index` of an `execute` batch reverted; the other calls still ran.
    /// @param index The position of the call in the batch.
    /// @param revertData Its revert data, truncated to `MAX_REVERT_DATA` bytes; decode it with the
    ///        target's ABI (e.g. the escrow's custom errors).
    event CallFailed(uint256 indexed index, bytes revertData);

    /// @notice The caller is not the delegating EOA itself.
    /// @param caller The rejected `msg.sender`.
    error Unauthorized(address caller);

    /// @notice Call `index` of an `executeAll` batch reverted, so the whole batch did.
    /// @param index The position of the failing call.
    /// @param revertData Its revert data, truncated to `MAX_REVERT_DATA` bytes.
    error CallReverted(uint256 index, bytes revertData);

    /// @notice A call's target has no code (e.g. a wrong escrow address); reported as that call's
    ///         revert data, since a call to such an address would otherwise "succeed" doing nothing.
    /// @param target The target without code.
    error NoCode(address target);

    /// @notice Runs `calls` in order, each isolated: a call that reverts is reported with
    ///         `CallFailed` and does not undo the others. Successes emit nothing of ours (the
    ///         targets' own events tell them).
    /// @dev Only the EOA itself may call (`msg.sender == address(this)`).
    /// @param calls The calls to make, in order.
    /// @return failures How many calls reverted.
    function execute(Call[] calldata calls) external returns (uint256 failures) {
        if (msg.sender != address(this)) revert Unauthorized(msg.sender);
        for (uint256 i; i < calls.length; ++i) {
            (bool success, bytes memory revertData) = _call(calls[i]);
            if (!success) {
                emit CallFailed(i, revertData);
                ++failures;
            }
        }
    }

    /// @notice Runs `calls` in order, all or nothing: the first call that reverts reverts the
    ///         whole batch with `CallReverted`.
    /// @dev Only the EOA itself may call (`msg.sender == address(this)`).
    /// @param calls The calls to make, in order.
    function executeAll(Call[] calldata calls) external {
        if (msg.sender != address(this)) revert Unauthorized(msg.sender);
        for (uint256 i; i < calls.length; ++i) {
            (bool success, bytes memory revertData) = _call(calls[i]);
            if (!success) revert CallReverted(i, revertData);
        }
    }

    /// @notice Keeps plain ETH transfers to the delegating EOA working.
    receive() external payable {}

    /// @dev Calls `c.target` with `c.data` and no value. Return data of a successful call is never
    ///      copied. On failure, `revertData` holds the first `MAX_REVERT_DATA` bytes of the revert
    ///      data (or `NoCode(target)` when the target has no code).
    function _call(Call calldata c) private returns (bool success, bytes memory revertData) {
        address target = c.target;
        if (target.code.length == 0) return (false, abi.encodeWithSelector(NoCode.selector, target));
        bytes calldata data = c.data;
        assembly ("memory-safe") {
            // Lay the calldata out at the free memory pointer (scratch: not allocated, so a
            // successful call leaves memory as it was) and call with no output buffer.
            let m := mload(0x40)
            calldatacopy(m, data.offset, data.length)
            success := call(gas(), target, 0, m, data.length, 0x00, 0x00)
            if iszero(success) {
                // Copy at most MAX_REVERT_DATA bytes of the revert data into a new `bytes`
                // at `m` (overwriting the calldata copy), then allocate it, rounded up to a word.
                let n := returndatasize()
                if gt(n, MAX_REVERT_DATA) { n := MAX_REVERT_DATA }
                revertData := m
                mstore(m, n)
                returndatacopy(add(m, 0x20), 0x00, n)
                mstore(0x40, add(add(m, 0x20), and(add(n, 0x1f), not(0x1f))))
            }
        }
    }
}
