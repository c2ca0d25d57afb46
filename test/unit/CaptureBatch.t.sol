// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {TwoHeldPaymentsTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

contract CaptureBatchTest is TwoHeldPaymentsTestBase {
    function _req(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount, uint16 feeBps, address feeTo)
        internal
        pure
        returns (AuthCaptureEscrow.CaptureRequest memory)
    {
        return AuthCaptureEscrow.CaptureRequest({paymentInfo: info, amount: amount, feeBps: feeBps, feeReceiver: feeTo});
    }

    function _pair(AuthCaptureEscrow.CaptureRequest memory r0, AuthCaptureEscrow.CaptureRequest memory r1)
        internal
        pure
        returns (AuthCaptureEscrow.CaptureRequest[] memory reqs)
    {
        reqs = new AuthCaptureEscrow.CaptureRequest[](2);
        reqs[0] = r0;
        reqs[1] = r1;
    }

    function test_captureBatch_capturesEachRequest() public {
        vm.prank(operator);
        escrow.captureBatch(_pair(_req(a, 40e6, 100, feeReceiver), _req(b, 25e6, 0, feeReceiver)));

        _assertState(ha, true, 0, 40e6);
        _assertState(hb, true, 35e6, 25e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.4e6);
        assertEq(usdc.balanceOf(receiver), 39.6e6 + 25e6);
        assertEq(usdc.balanceOf(_store()), 35e6);
    }

    function test_captureBatch_emitsPaymentCapturedPerRequestInOrder() public {
        address store = _store();
        _expectPaymentCaptured(ha, 40e6, 100, feeReceiver);
        _expectTokenStoreCreated(store);
        _expectPaymentCaptured(hb, 25e6, 50, feeReceiver);
        vm.prank(operator);
        escrow.captureBatch(_pair(_req(a, 40e6, 100, feeReceiver), _req(b, 25e6, 50, feeReceiver)));
    }

    function test_captureBatch_createsTokenStoreOnce() public {
        vm.recordLogs();
        vm.prank(operator);
        escrow.captureBatch(_pair(_req(a, 40e6, 100, feeReceiver), _req(b, 25e6, 50, feeReceiver)));
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 1);
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.PaymentCaptured.selector), 2);
    }

    function test_captureBatch_samePaymentTwice_partialCaptures() public {
        vm.prank(operator);
        escrow.captureBatch(_pair(_req(a, 15e6, 0, feeReceiver), _req(a, 25e6, 0, feeReceiver)));
        _assertState(ha, true, 0, 40e6);
    }

    function test_captureBatch_emptyBatchIsNoOp() public {
        vm.recordLogs();
        vm.prank(operator);
        escrow.captureBatch(new AuthCaptureEscrow.CaptureRequest[](0));
        assertEq(vm.getRecordedLogs().length, 0);
        _assertState(ha, true, 40e6, 0);
    }

    function test_captureBatch_isAllOrNothing() public {
        uint256 storeBefore = usdc.balanceOf(_store());
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, hb, 60e6, 61e6));
        escrow.captureBatch(_pair(_req(a, 40e6, 100, feeReceiver), _req(b, 61e6, 0, feeReceiver)));

        _assertState(ha, true, 40e6, 0);
        _assertState(hb, true, 60e6, 0);
        assertEq(usdc.balanceOf(_store()), storeBefore);
        assertEq(usdc.balanceOf(receiver), 0);
        assertEq(_store().code.length, 0, "the store deployment is rolled back too");
    }

    function test_captureBatch_reverts_InsufficientAuthorization_when_samePaymentOverCaptured() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, ha, 10e6, 11e6));
        escrow.captureBatch(_pair(_req(a, 30e6, 0, feeReceiver), _req(a, 11e6, 0, feeReceiver)));
    }

    function test_captureBatch_reverts_InvalidSender_when_callerIsNotOperator() public {
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, payer, operator));
        escrow.captureBatch(_pair(_req(a, 1e6, 0, feeReceiver), _req(b, 1e6, 0, feeReceiver)));
    }

    function test_captureBatch_reverts_InvalidSender_when_oneRequestHasAnotherOperator() public {
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.operator = operator2;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, operator, operator2));
        escrow.captureBatch(_pair(_req(a, 1e6, 0, feeReceiver), _req(other, 1e6, 0, feeReceiver)));
    }

    function test_captureBatch_reverts_ZeroAmount_when_requestAmountZero() public {
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroAmount.selector);
        escrow.captureBatch(_pair(_req(a, 1e6, 0, feeReceiver), _req(b, 0, 0, feeReceiver)));
    }

    function test_captureBatch_reverts_AmountOverflow_when_requestAmountAboveUint120() public {
        uint256 amount = uint256(type(uint120).max) + 1;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.AmountOverflow.selector, amount, uint256(type(uint120).max))
        );
        escrow.captureBatch(_pair(_req(a, 1e6, 0, feeReceiver), _req(b, amount, 0, feeReceiver)));
    }

    function test_captureBatch_reverts_FeeBpsOutOfRange_when_requestFeeTooHigh() public {
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOutOfRange.selector, uint16(101), uint16(0), uint16(100))
        );
        escrow.captureBatch(_pair(_req(a, 1e6, 0, feeReceiver), _req(b, 1e6, 101, feeReceiver)));
    }

    function test_captureBatch_reverts_ZeroFeeReceiver_when_requestFeeReceiverZero() public {
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroFeeReceiver.selector);
        escrow.captureBatch(_pair(_req(a, 1e6, 0, feeReceiver), _req(b, 1e6, 10, address(0))));
    }

    function test_captureBatch_reverts_InvalidFeeReceiver_when_requestFeeReceiverDiffers() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeReceiver.selector, stranger, feeReceiver));
        escrow.captureBatch(_pair(_req(a, 1e6, 0, feeReceiver), _req(b, 1e6, 10, stranger)));
    }

    function test_captureBatch_reverts_AfterAuthorizationExpiry_when_atExpiry() public {
        vm.warp(a.authorizationExpiry);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.AfterAuthorizationExpiry.selector, a.authorizationExpiry, a.authorizationExpiry
            )
        );
        escrow.captureBatch(_pair(_req(a, 1e6, 0, feeReceiver), _req(b, 1e6, 0, feeReceiver)));
    }

    function test_captureBatch_reverts_firstFailingRequestsError() public {
        // Request 0 has a bad fee, request 1 a bad sender: request 0's error wins.
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.operator = operator2;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOutOfRange.selector, uint16(200), uint16(0), uint16(100))
        );
        escrow.captureBatch(_pair(_req(a, 1e6, 200, feeReceiver), _req(other, 1e6, 0, feeReceiver)));
    }

    function test_captureBatch_checkOrderWithinRequest() public {
        // Each request is checked like capture: sender, amount, fee, expiry, authorization.
        vm.warp(a.authorizationExpiry);
        AuthCaptureEscrow.CaptureRequest[] memory reqs = new AuthCaptureEscrow.CaptureRequest[](1);

        reqs[0] = _req(a, 0, 500, address(0));
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, stranger, operator));
        escrow.captureBatch(reqs);

        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroAmount.selector);
        escrow.captureBatch(reqs);

        reqs[0].amount = 50e6;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOutOfRange.selector, uint16(500), uint16(0), uint16(100))
        );
        escrow.captureBatch(reqs);

        reqs[0].feeBps = 10;
        vm.prank(operator);
        vm.expectRevert(AuthCaptureEscrow.ZeroFeeReceiver.selector);
        escrow.captureBatch(reqs);

        reqs[0].feeReceiver = stranger;
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeReceiver.selector, stranger, feeReceiver));
        escrow.captureBatch(reqs);

        reqs[0].feeReceiver = feeReceiver;
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.AfterAuthorizationExpiry.selector, a.authorizationExpiry, a.authorizationExpiry
            )
        );
        escrow.captureBatch(reqs);

        vm.warp(a.authorizationExpiry - 1);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, ha, 40e6, 50e6));
        escrow.captureBatch(reqs);
    }
}
