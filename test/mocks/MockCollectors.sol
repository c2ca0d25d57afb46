// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenStore} from "../../contracts/TokenStore.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";
import {SafeTokenTransfer} from "../../contracts/libraries/SafeTokenTransfer.sol";

/// @title MockCollector
/// @notice Base of the test collectors: reports the type it was deployed with and hands each
///         collection to `_deliver`, so a mock only writes how it moves (or fails to move) tokens.
abstract contract MockCollector is TokenCollector {
    /// @notice The type this collector reports.
    CollectorType public immutable reportedType;

    /// @param authCaptureEscrow_ The escrow this collector serves.
    /// @param reportedType_ The `collectorType()` it reports.
    constructor(address authCaptureEscrow_, CollectorType reportedType_) TokenCollector(authCaptureEscrow_) {
        reportedType = reportedType_;
    }

    /// @inheritdoc TokenCollector
    function collectorType() external view override returns (CollectorType) {
        return reportedType;
    }

    /// @dev Collector data is ignored by every mock.
    function _collectTokens(AuthCaptureEscrow.PaymentInfo calldata info, address store, uint256 amount, bytes calldata)
        internal
        override
    {
        _deliver(info, store, amount);
    }

    /// @dev What the mock does when the escrow asks it for `amount` of `info.token` into `store`.
    function _deliver(AuthCaptureEscrow.PaymentInfo calldata info, address store, uint256 amount) internal virtual;
}

/// @title MisdeliveringCollector
/// @notice A collector of either type that pays the TokenStore out of its own pre-funded balance,
///         delivering `amount + surplus - shortfall` instead of exactly `amount`. With both set to
///         zero it is an honest collector; otherwise the escrow must revert `TokenCollectionFailed`.
contract MisdeliveringCollector is MockCollector {
    /// @notice Units delivered on top of the requested amount.
    uint256 public surplus;
    /// @notice Units held back from the requested amount.
    uint256 public shortfall;

    /// @param authCaptureEscrow_ The escrow this collector serves.
    /// @param reportedType_ The `collectorType()` it reports.
    constructor(address authCaptureEscrow_, CollectorType reportedType_)
        MockCollector(authCaptureEscrow_, reportedType_)
    {}

    /// @notice Sets how far off each delivery is.
    /// @param surplus_ Units added to each delivery.
    /// @param shortfall_ Units removed from each delivery (capped at the amount).
    function setDelivery(uint256 surplus_, uint256 shortfall_) public {
        surplus = surplus_;
        shortfall = shortfall_;
    }

    /// @dev Sends the (mis)calculated amount from this contract's own balance.
    function _deliver(AuthCaptureEscrow.PaymentInfo calldata info, address store, uint256 amount) internal override {
        uint256 delivered = amount + surplus;
        delivered = shortfall >= delivered ? 0 : delivered - shortfall;
        if (delivered != 0) SafeTokenTransfer.safeTransfer(info.token, store, delivered);
    }
}

/// @title StoreRaidingCollector
/// @notice A Payment collector that, when asked to collect, instead tries to pay itself out of a
///         TokenStore by calling it directly. The store must refuse (`OnlyAuthCaptureEscrow`):
///         only the escrow may move store funds, even in the middle of an escrow operation.
contract StoreRaidingCollector is MockCollector {
    /// @notice The store to raid (zero: the store of the payment being collected).
    address public targetStore;
    /// @notice Whether to use `sendTokensWithFee` (true) or `sendTokens` (false).
    bool public useSendWithFee;

    /// @param authCaptureEscrow_ The escrow this collector serves.
    constructor(address authCaptureEscrow_) MockCollector(authCaptureEscrow_, CollectorType.Payment) {}

    /// @notice Chooses the store to raid and the function used.
    /// @param targetStore_ The store (zero: the one the escrow hands over).
    /// @param useSendWithFee_ Whether to call `sendTokensWithFee` instead of `sendTokens`.
    function setTarget(address targetStore_, bool useSendWithFee_) external {
        targetStore = targetStore_;
        useSendWithFee = useSendWithFee_;
    }

    /// @dev Calls the store directly; its revert bubbles up through the escrow.
    function _deliver(AuthCaptureEscrow.PaymentInfo calldata info, address store, uint256 amount) internal override {
        TokenStore target = TokenStore(targetStore == address(0) ? store : targetStore);
        if (useSendWithFee) {
            target.sendTokensWithFee(info.token, address(this), amount, address(this), amount);
        } else {
            target.sendTokens(info.token, address(this), amount);
        }
    }
}

/// @notice Receiver of the `ReentrantCollector` hook.
interface ICollectHook {
    /// @notice Called by the collector after it has delivered the tokens.
    function onCollect() external;
}

/// @title ReentrantCollector
/// @notice A collector of either type that delivers exactly the requested amount from its own
///         balance and then calls a hook (a `ReentrantActor`) that re-enters the escrow.
contract ReentrantCollector is MockCollector {
    /// @notice The contract called after delivery (zero: none).
    address public hook;

    /// @param authCaptureEscrow_ The escrow this collector serves.
    /// @param reportedType_ The `collectorType()` it reports.
    constructor(address authCaptureEscrow_, CollectorType reportedType_)
        MockCollector(authCaptureEscrow_, reportedType_)
    {}

    /// @notice Sets the hook target.
    /// @param hook_ The contract to call after delivering, or zero.
    function setHook(address hook_) external {
        hook = hook_;
    }

    /// @dev Delivers honestly, then hands control to the hook (its revert bubbles).
    function _deliver(AuthCaptureEscrow.PaymentInfo calldata info, address store, uint256 amount) internal override {
        SafeTokenTransfer.safeTransfer(info.token, store, amount);
        if (hook != address(0)) ICollectHook(hook).onCollect();
    }
}

/// @title MockPayerPullCollector
/// @notice The simplest honest Payment collector: `transferFrom(payer -> tokenStore, amount)` on the
///         payer's plain ERC-20 allowance, with no pre-approval bookkeeping. Lets tests use tokens
///         without ERC-3009 (the escrow only ever sees the collector).
contract MockPayerPullCollector is MockCollector {
    /// @param authCaptureEscrow_ The escrow this collector serves.
    constructor(address authCaptureEscrow_) MockCollector(authCaptureEscrow_, CollectorType.Payment) {}

    /// @dev Pulls straight from the payer.
    function _deliver(AuthCaptureEscrow.PaymentInfo calldata info, address store, uint256 amount) internal override {
        SafeTokenTransfer.safeTransferFrom(info.token, info.payer, store, amount);
    }
}
