// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowTestBase} from "./EscrowTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

/// @notice Assertions and expectation helpers shared by the unit, fuzz and security suites, layered
///         on the shared fixture (which the gas benchmarks also build on and so stays untouched).
abstract contract EscrowHelpers is EscrowTestBase {
    /// @dev The operator's TokenStore.
    function _store() internal view returns (address) {
        return escrow.getTokenStore(operator);
    }

    /// @dev Asserts the escrow's state of a payment.
    function _assertState(bytes32 paymentInfoHash, bool collected, uint256 capturable, uint256 refundable)
        internal
        view
    {
        (bool c, uint120 cap, uint120 ref) = escrow.paymentState(paymentInfoHash);
        assertEq(c, collected, "hasCollectedPayment");
        assertEq(cap, capturable, "capturableAmount");
        assertEq(ref, refundable, "refundableAmount");
    }

    /// @dev Expects the event emitted right after this call to come from the escrow, every topic
    ///      and the data checked.
    function _expectEscrowEmit() internal {
        vm.expectEmit(true, true, true, true, address(escrow));
    }

    /// @dev Expects the escrow to announce the operator's TokenStore clone at `store` (read it
    ///      with `_store()` before the first expectation: no call may come between them).
    function _expectTokenStoreCreated(address store) internal {
        _expectEscrowEmit();
        emit AuthCaptureEscrow.TokenStoreCreated(operator, store);
    }

    /// @dev Makes the next call come from `sender` and expects it to revert with exactly `revertData`.
    function _expectRevertFrom(address sender, bytes memory revertData) internal {
        vm.prank(sender);
        vm.expectRevert(revertData);
    }
}
