// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../../../contracts/AuthCaptureEscrow.sol";
import {MisdeliveringCollector, MockCollector} from "../../mocks/MockCollectors.sol";
import {SafeTokenTransfer} from "../../../contracts/libraries/SafeTokenTransfer.sol";

/// @notice A collector of either type that delivers `amount + delta` tokens out of its own
///         (pre-funded) balance, to exercise the escrow's exact-delivery check: the shared
///         `MisdeliveringCollector` driven by one signed offset.
contract UnitMisdeliveringCollector is MisdeliveringCollector {
    constructor(address escrow_, CollectorType collectorType_) MisdeliveringCollector(escrow_, collectorType_) {}

    /// @notice Delivers `delta` units more (positive) or fewer (negative) than asked.
    function setDelta(int256 delta) external {
        setDelivery(delta > 0 ? uint256(delta) : 0, delta < 0 ? uint256(-delta) : 0);
    }
}

/// @notice A collector that calls back into the escrow with arbitrary calldata while collecting,
///         bubbling up whatever the inner call reverts with. Delivers from its own balance otherwise.
contract UnitReentrantCollector is MockCollector {
    /// @notice The calldata sent back into the escrow while collecting.
    bytes public reentryData;

    constructor(address escrow_, CollectorType collectorType_) MockCollector(escrow_, collectorType_) {}

    /// @notice Sets the calldata of the re-entrant call.
    function setReentryData(bytes calldata data) external {
        reentryData = data;
    }

    function _deliver(AuthCaptureEscrow.PaymentInfo calldata info, address store, uint256 amount) internal override {
        (bool ok, bytes memory ret) = address(authCaptureEscrow).call(reentryData);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        SafeTokenTransfer.safeTransfer(info.token, store, amount);
    }
}
