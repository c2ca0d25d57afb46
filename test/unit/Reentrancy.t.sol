// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {UnitMisdeliveringCollector, UnitReentrantCollector} from "./helpers/UnitCollectors.sol";
import {HookToken} from "./helpers/HookToken.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";

/// @notice Every state-changing entry point is non-reentrant: re-entry from a collector (authorize,
///         charge, refund) or from a token callback (capture, void, reclaim, batches) fails with Reentrancy().
contract ReentrancyTest is UnitTestBase {
    UnitReentrantCollector internal payCollector;
    UnitReentrantCollector internal refundReentrant;
    AuthCaptureEscrow.PaymentInfo internal info;

    function setUp() public override {
        super.setUp();
        payCollector = new UnitReentrantCollector(address(escrow), TokenCollector.CollectorType.Payment);
        refundReentrant = new UnitReentrantCollector(address(escrow), TokenCollector.CollectorType.Refund);
        usdc.mint(address(payCollector), 100e6);
        usdc.mint(address(refundReentrant), 100e6);
        info = _defaultInfo();
    }

    /// @dev Calldata for each of the eight non-view entry points, aimed at a harmless target payment.
    function _reentryCalls() internal view returns (bytes[] memory calls) {
        AuthCaptureEscrow.PaymentInfo memory t = _defaultInfo();
        t.salt = 1234;
        AuthCaptureEscrow.CaptureRequest[] memory reqs = new AuthCaptureEscrow.CaptureRequest[](0);
        AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](0);
        calls = new bytes[](8);
        calls[0] = abi.encodeCall(AuthCaptureEscrow.authorize, (t, 1, address(erc3009Collector), ""));
        calls[1] = abi.encodeCall(AuthCaptureEscrow.charge, (t, 1, address(erc3009Collector), "", 0, feeReceiver));
        calls[2] = abi.encodeCall(AuthCaptureEscrow.capture, (t, 1, 0, feeReceiver));
        calls[3] = abi.encodeCall(AuthCaptureEscrow.void, (t));
        calls[4] = abi.encodeCall(AuthCaptureEscrow.reclaim, (t));
        calls[5] = abi.encodeCall(AuthCaptureEscrow.refund, (t, 1, address(refundCollector), ""));
        calls[6] = abi.encodeCall(AuthCaptureEscrow.captureBatch, (reqs));
        calls[7] = abi.encodeCall(AuthCaptureEscrow.voidBatch, (infos));
    }

    function test_authorize_reverts_Reentrancy_when_collectorReentersAnyEntryPoint() public {
        _assertEveryReentryBlocked(payCollector, _authorizeThroughPayCollector);
    }

    function test_charge_reverts_Reentrancy_when_collectorReentersAnyEntryPoint() public {
        _assertEveryReentryBlocked(payCollector, _chargeThroughPayCollector);
    }

    function test_refund_reverts_Reentrancy_when_collectorReentersAnyEntryPoint() public {
        _authorizeAndCapture(info, 50e6, 50e6, 0);
        _assertEveryReentryBlocked(refundReentrant, _refundThroughReentrantCollector);
    }

    /// @dev Arms `collector` with each re-entrant call in turn; `operation` (run as the operator)
    ///      must then revert with exactly `Reentrancy()`.
    function _assertEveryReentryBlocked(UnitReentrantCollector collector, function() internal operation) internal {
        bytes[] memory calls = _reentryCalls();
        for (uint256 i; i < calls.length; ++i) {
            collector.setReentryData(calls[i]);
            _expectRevertFrom(operator, abi.encodeWithSelector(AuthCaptureEscrow.Reentrancy.selector));
            operation();
        }
    }

    function _authorizeThroughPayCollector() internal {
        escrow.authorize(info, 10e6, address(payCollector), "");
    }

    function _chargeThroughPayCollector() internal {
        escrow.charge(info, 10e6, address(payCollector), "", 0, feeReceiver);
    }

    function _refundThroughReentrantCollector() internal {
        escrow.refund(info, 10e6, address(refundReentrant), "");
    }

    function test_reentrantCollector_withHarmlessCall_succeeds() public {
        // Control: the same collector works when its callback is a view, so the reverts above
        // come from the guard and not from the collector itself.
        payCollector.setReentryData(abi.encodeCall(AuthCaptureEscrow.getHash, (info)));
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(payCollector), "");
        _assertState(escrow.getHash(info), true, 10e6, 0);
    }

    /*//////////////////////////////////////////////////////////////
                   RE-ENTRY FROM A TOKEN TRANSFER CALLBACK
    //////////////////////////////////////////////////////////////*/

    HookToken internal hook;
    AuthCaptureEscrow.PaymentInfo internal hookInfo;

    function _setUpHookPayment() internal {
        hook = new HookToken();
        UnitMisdeliveringCollector c = new UnitMisdeliveringCollector(address(escrow), TokenCollector.CollectorType.Payment);
        hook.mint(address(c), 100e6);
        hookInfo = _defaultInfo();
        hookInfo.token = address(hook);
        vm.prank(operator);
        escrow.authorize(hookInfo, 100e6, address(c), "");
    }

    function _assertHookHitReentrancy() internal view {
        assertTrue(hook.hookCalled(), "hook ran");
        assertFalse(hook.hookSuccess(), "re-entry must fail");
        assertEq(hook.hookReturnData(), abi.encodeWithSelector(AuthCaptureEscrow.Reentrancy.selector));
    }

    function test_capture_blocksReentry_fromTokenCallback() public {
        _setUpHookPayment();
        hook.arm(address(escrow), abi.encodeCall(AuthCaptureEscrow.void, (hookInfo)));
        vm.prank(operator);
        escrow.capture(hookInfo, 10e6, 0, feeReceiver);
        _assertHookHitReentrancy();
        _assertState(escrow.getHash(hookInfo), true, 90e6, 10e6);
    }

    function test_void_blocksReentry_fromTokenCallback() public {
        _setUpHookPayment();
        hook.arm(address(escrow), abi.encodeCall(AuthCaptureEscrow.capture, (hookInfo, 1, 0, feeReceiver)));
        vm.prank(operator);
        escrow.void(hookInfo);
        _assertHookHitReentrancy();
    }

    function test_reclaim_blocksReentry_fromTokenCallback() public {
        _setUpHookPayment();
        vm.warp(hookInfo.authorizationExpiry);
        hook.arm(address(escrow), abi.encodeCall(AuthCaptureEscrow.reclaim, (hookInfo)));
        vm.prank(payer);
        escrow.reclaim(hookInfo);
        _assertHookHitReentrancy();
        assertEq(hook.balanceOf(payer), 100e6);
    }

    function test_captureBatch_blocksReentry_fromTokenCallback() public {
        _setUpHookPayment();
        AuthCaptureEscrow.CaptureRequest[] memory reqs = new AuthCaptureEscrow.CaptureRequest[](1);
        reqs[0] = AuthCaptureEscrow.CaptureRequest(hookInfo, 10e6, 0, feeReceiver);
        hook.arm(address(escrow), abi.encodeCall(AuthCaptureEscrow.captureBatch, (reqs)));
        vm.prank(operator);
        escrow.captureBatch(reqs);
        _assertHookHitReentrancy();
        _assertState(escrow.getHash(hookInfo), true, 90e6, 10e6);
    }

    function test_voidBatch_blocksReentry_fromTokenCallback() public {
        _setUpHookPayment();
        AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](1);
        infos[0] = hookInfo;
        hook.arm(address(escrow), abi.encodeCall(AuthCaptureEscrow.voidBatch, (infos)));
        vm.prank(operator);
        escrow.voidBatch(infos);
        _assertHookHitReentrancy();
    }

    function test_lockIsReleasedAfterEachCall() public {
        // All calls of a test share one transaction, so a lock left set in transient storage would
        // make the second call fail.
        _authorize(info, 50e6);
        vm.startPrank(operator);
        escrow.capture(info, 10e6, 0, feeReceiver);
        escrow.capture(info, 10e6, 0, feeReceiver);
        escrow.void(info);
        vm.stopPrank();
        _assertState(escrow.getHash(info), true, 0, 20e6);
    }
}
