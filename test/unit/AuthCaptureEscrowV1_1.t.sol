// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {AuthCaptureEscrowV1_1} from "../../contracts/AuthCaptureEscrowV1_1.sol";

/// @notice The v1.1 fee interface of `AuthCaptureEscrowV1_1` (capture / charge with an absolute
///         `feeAmount`), and that its inherited v1.0 entry points still work on the same payments.
contract AuthCaptureEscrowV1_1Test is UnitTestBase {
    /// @dev topic0 of the v1.1 events, from their signatures as the reference documents them.
    bytes32 internal constant CAPTURED_V1_1 = keccak256("PaymentCaptured(bytes32,uint256,uint256,address)");
    bytes32 internal constant CHARGED_V1_1 = keccak256(
        "PaymentCharged(bytes32,(address,address,address,address,uint120,uint48,uint48,uint48,uint16,uint16,address,uint256),uint256,address,uint256,address)"
    );
    bytes32 internal constant CAPTURED_V1_0 = keccak256("PaymentCaptured(bytes32,uint256,uint16,address)");

    AuthCaptureEscrowV1_1 internal v11;

    function _deployEscrow() internal override returns (AuthCaptureEscrow) {
        v11 = new AuthCaptureEscrowV1_1();
        return v11;
    }

    /// @dev The default payment with a 1-3% fee range (fee receiver fixed).
    function _info() internal view returns (AuthCaptureEscrow.PaymentInfo memory info) {
        info = _defaultInfo();
        info.minFeeBps = 100;
        info.maxFeeBps = 300;
    }

    function _capture(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount, uint256 feeAmount, address to)
        internal
    {
        vm.prank(info.operator);
        v11.capture(info, amount, feeAmount, to);
    }

    /*//////////////////////////////////////////////////////////////
                                CAPTURE
    //////////////////////////////////////////////////////////////*/

    function test_v11_capture_splitsByFeeAmount() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        bytes32 h = _authorize(info, 80e6);
        _capture(info, 50e6, 1.2e6, feeReceiver);

        assertEq(usdc.balanceOf(feeReceiver), 1.2e6);
        assertEq(usdc.balanceOf(receiver), 50e6 - 1.2e6);
        (bool collected, uint120 capturable, uint120 refundable) = _state(h);
        assertTrue(collected);
        assertEq(capturable, 30e6);
        assertEq(refundable, 50e6);
    }

    function test_v11_capture_emitsV1_1Event() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        bytes32 h = _authorize(info, 80e6);
        vm.expectEmit(true, false, false, true, address(escrow));
        emit AuthCaptureEscrowV1_1.PaymentCaptured(h, 40e6, 0.8e6, feeReceiver);
        _capture(info, 40e6, 0.8e6, feeReceiver);
    }

    function test_v11_capture_eventTopicIsTheReferenceV1_1One() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        _authorize(info, 80e6);
        vm.recordLogs();
        _capture(info, 40e6, 0.8e6, feeReceiver);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), CAPTURED_V1_1), 1);
        assertEq(_countLogs(logs, address(escrow), CAPTURED_V1_0), 0);
    }

    function test_v11_capture_feeBoundsRoundDown() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        _authorize(info, 80e6);
        // 199 units at 1-3%: minFee = 1.99 -> 1, maxFee = 5.97 -> 5.
        _capture(info, 199, 1, feeReceiver);
        _capture(info, 199, 5, feeReceiver);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrowV1_1.FeeAmountOutOfRange.selector, 6, 1, 5));
        v11.capture(info, 199, uint256(6), feeReceiver);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrowV1_1.FeeAmountOutOfRange.selector, 0, 1, 5));
        v11.capture(info, 199, uint256(0), feeReceiver);
    }

    function test_v11_capture_feeAboveMaxReverts() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        _authorize(info, 80e6);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrowV1_1.FeeAmountOutOfRange.selector, 3e6, 0.5e6, 1.5e6));
        v11.capture(info, 50e6, uint256(3e6), feeReceiver);
    }

    function test_v11_capture_checkOrder_feeBeforeExpiryBeforeAuthorization() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        bytes32 h = _authorize(info, 80e6);
        vm.warp(info.authorizationExpiry);
        // Fee first, even after expiry.
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrowV1_1.FeeAmountOutOfRange.selector, 0, 0.5e6, 1.5e6));
        v11.capture(info, 50e6, uint256(0), feeReceiver);
        // Then the expiry, even for more than is held.
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.AfterAuthorizationExpiry.selector, info.authorizationExpiry, info.authorizationExpiry
            )
        );
        v11.capture(info, 90e6, uint256(0.9e6), feeReceiver);
        vm.warp(info.authorizationExpiry - 1);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, h, 80e6, 90e6));
        v11.capture(info, 90e6, uint256(0.9e6), feeReceiver);
    }

    function test_v11_capture_feeReceiverRules() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        info.feeReceiver = address(0);
        info.minFeeBps = 0;
        _authorize(info, 80e6);
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroFeeReceiver.selector);
        v11.capture(info, 10e6, uint256(1), address(0));
        // A zero fee needs no receiver; a flexible receiver takes any address.
        _capture(info, 10e6, 0, address(0));
        _capture(info, 10e6, 0.1e6, stranger);
        assertEq(usdc.balanceOf(stranger), 0.1e6);

        AuthCaptureEscrow.PaymentInfo memory fixedInfo = _info();
        fixedInfo.salt = 7;
        _authorize(fixedInfo, 10e6);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeReceiver.selector, stranger, feeReceiver));
        v11.capture(fixedInfo, 10e6, uint256(0.1e6), stranger);
    }

    function test_v11_capture_senderAndAmountChecksFirst() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        _authorize(info, 80e6);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, stranger, operator));
        v11.capture(info, 0, uint256(999e6), feeReceiver);
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroAmount.selector);
        v11.capture(info, 0, uint256(999e6), feeReceiver);
        vm.prank(operator);
        vm.expectRevert(_amountOverflow(uint256(type(uint120).max) + 1));
        v11.capture(info, uint256(type(uint120).max) + 1, uint256(0), feeReceiver);
    }

    function test_v11_capture_andV1_0CaptureShareTheHold() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        bytes32 h = _authorize(info, 80e6);
        _capture(info, 30e6, 0.3e6, feeReceiver);
        vm.prank(operator);
        escrow.capture(info, 50e6, 200, feeReceiver);
        (, uint120 capturable, uint120 refundable) = _state(h);
        assertEq(capturable, 0);
        assertEq(refundable, 80e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.3e6 + 1e6);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, h, 0, 1));
        v11.capture(info, 1, uint256(0), feeReceiver);
    }

    /*//////////////////////////////////////////////////////////////
                                 CHARGE
    //////////////////////////////////////////////////////////////*/

    function _chargeV11(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount, uint256 feeAmount) internal {
        bytes memory signature = _mintAndSign(info, PAYER_PK);
        vm.prank(operator);
        v11.charge(info, amount, address(erc3009Collector), signature, feeAmount, feeReceiver);
    }

    function test_v11_charge_collectsAndDistributes() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        bytes32 h = v11.getHash(info);
        bytes memory signature = _mintAndSign(info, PAYER_PK);
        vm.recordLogs();
        vm.expectEmit(true, false, false, true, address(escrow));
        emit AuthCaptureEscrowV1_1.PaymentCharged(h, info, 60e6, address(erc3009Collector), 1.8e6, feeReceiver);
        vm.prank(operator);
        v11.charge(info, 60e6, address(erc3009Collector), signature, uint256(1.8e6), feeReceiver);
        assertEq(_countLogs(vm.getRecordedLogs(), address(escrow), CHARGED_V1_1), 1);
        assertEq(usdc.balanceOf(feeReceiver), 1.8e6);
        assertEq(usdc.balanceOf(receiver), 60e6 - 1.8e6);
        assertEq(usdc.balanceOf(payer), 40e6, "the collector returns what was not charged");
        (bool collected, uint120 capturable, uint120 refundable) = _state(h);
        assertTrue(collected);
        assertEq(capturable, 0);
        assertEq(refundable, 60e6);
    }

    function test_v11_charge_paymentValidationBeforeFee() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        bytes memory signature = _mintAndSign(info, PAYER_PK);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ExceedsMaxAmount.selector, 101e6, 100e6));
        v11.charge(info, 101e6, address(erc3009Collector), signature, uint256(999e6), feeReceiver);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrowV1_1.FeeAmountOutOfRange.selector, 999e6, 1e6, 3e6));
        v11.charge(info, 100e6, address(erc3009Collector), signature, uint256(999e6), feeReceiver);
    }

    function test_v11_charge_feeBeforeAlreadyCollected() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        bytes32 h = _authorize(info, 10e6);
        bytes memory signature = _signERC3009(info, PAYER_PK);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrowV1_1.FeeAmountOutOfRange.selector, 0, 0.1e6, 0.3e6));
        v11.charge(info, 10e6, address(erc3009Collector), signature, uint256(0), feeReceiver);
        vm.prank(operator);
        vm.expectRevert(_paymentAlreadyCollected(h));
        v11.charge(info, 10e6, address(erc3009Collector), signature, uint256(0.2e6), feeReceiver);
    }

    function test_v11_charge_thenRefundThroughTheSharedEntryPoint() public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        bytes32 h = v11.getHash(info);
        _chargeV11(info, 60e6, 0.6e6);
        _fundRefunds(20e6);
        vm.prank(operator);
        escrow.refund(info, 20e6, address(refundCollector), "");
        (,, uint120 refundable) = _state(h);
        assertEq(refundable, 40e6);
        assertEq(usdc.balanceOf(payer), 40e6 + 20e6);
    }

    /// @dev Any fee inside the rounded-down bounds is accepted, anything outside refused, and the
    ///      split always adds up to the amount.
    function testFuzz_v11_capture_feeBounds(uint120 amount, uint256 feeAmount) public {
        AuthCaptureEscrow.PaymentInfo memory info = _info();
        amount = uint120(bound(amount, 1, MAX_AMOUNT));
        feeAmount = bound(feeAmount, 0, uint256(amount) * 4 / 100);
        _authorize(info, MAX_AMOUNT);
        uint256 minFee = uint256(amount) * info.minFeeBps / 10_000;
        uint256 maxFee = uint256(amount) * info.maxFeeBps / 10_000;
        vm.prank(operator);
        if (feeAmount < minFee || feeAmount > maxFee) {
            vm.expectRevert(
                abi.encodeWithSelector(AuthCaptureEscrowV1_1.FeeAmountOutOfRange.selector, feeAmount, minFee, maxFee)
            );
            v11.capture(info, amount, feeAmount, feeReceiver);
        } else {
            v11.capture(info, amount, feeAmount, feeReceiver);
            assertEq(usdc.balanceOf(feeReceiver), feeAmount);
            assertEq(usdc.balanceOf(receiver), amount - feeAmount);
        }
    }
}
