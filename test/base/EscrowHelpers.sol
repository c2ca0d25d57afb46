// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SafeTransferLib} from "solady/utils/SafeTransferLib.sol";

import {EscrowTestBase} from "./EscrowTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

/// @notice The minting every mock token of the suites offers.
interface IMintableToken {
    /// @notice Mints `amount` to `to`.
    function mint(address to, uint256 amount) external;
}

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

    /// @dev Mints `payerAmount` of `token` to the payer and `operatorAmount` to the operator; the
    ///      payer approves `payerCollector` and the operator the refund collector, without limit.
    ///      Works with tokens that return nothing from `approve`.
    function _fundPayerAndOperator(address token, uint256 payerAmount, uint256 operatorAmount, address payerCollector)
        internal
    {
        IMintableToken(token).mint(payer, payerAmount);
        IMintableToken(token).mint(operator, operatorAmount);
        vm.prank(payer);
        SafeTransferLib.safeApprove(token, payerCollector, type(uint256).max);
        vm.prank(operator);
        SafeTransferLib.safeApprove(token, address(refundCollector), type(uint256).max);
    }

    /// @dev Under the prank already in force, capturing, voiding and refunding 1 USDC-unit of `held`
    ///      (1% fee, operator-funded refund) each revert with exactly `err`.
    function _assertHeldOperationsRevert(AuthCaptureEscrow.PaymentInfo memory held, bytes memory err) internal {
        vm.expectRevert(err);
        escrow.capture(held, 1e6, 100, feeReceiver);
        vm.expectRevert(err);
        escrow.void(held);
        vm.expectRevert(err);
        escrow.refund(held, 1e6, address(refundCollector), "");
    }
}
