// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "solady/tokens/ERC20.sol";

import {AuthCaptureEscrow} from "../../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../../contracts/collectors/TokenCollector.sol";

/// @notice A collector of either type that delivers `amount + delta` tokens out of its own
///         (pre-funded) balance, to exercise the escrow's exact-delivery check.
contract UnitMisdeliveringCollector is TokenCollector {
    CollectorType internal immutable _collectorType;
    int256 public delta;

    constructor(address escrow_, CollectorType collectorType_) TokenCollector(escrow_) {
        _collectorType = collectorType_;
    }

    function setDelta(int256 delta_) external {
        delta = delta_;
    }

    function collectorType() external view override returns (CollectorType) {
        return _collectorType;
    }

    function _collectTokens(
        AuthCaptureEscrow.PaymentInfo calldata paymentInfo,
        address tokenStore,
        uint256 amount,
        bytes calldata
    ) internal override {
        uint256 deliver = uint256(int256(amount) + delta);
        if (deliver != 0) ERC20(paymentInfo.token).transfer(tokenStore, deliver);
    }
}

/// @notice A collector that calls back into the escrow with arbitrary calldata while collecting,
///         bubbling up whatever the inner call reverts with. Delivers from its own balance otherwise.
contract UnitReentrantCollector is TokenCollector {
    CollectorType internal immutable _collectorType;
    bytes public reentryData;

    constructor(address escrow_, CollectorType collectorType_) TokenCollector(escrow_) {
        _collectorType = collectorType_;
    }

    function setReentryData(bytes calldata data) external {
        reentryData = data;
    }

    function collectorType() external view override returns (CollectorType) {
        return _collectorType;
    }

    function _collectTokens(
        AuthCaptureEscrow.PaymentInfo calldata paymentInfo,
        address tokenStore,
        uint256 amount,
        bytes calldata
    ) internal override {
        (bool ok, bytes memory ret) = address(authCaptureEscrow).call(reentryData);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        ERC20(paymentInfo.token).transfer(tokenStore, amount);
    }
}
