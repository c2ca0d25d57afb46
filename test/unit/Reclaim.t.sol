// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

contract ReclaimTest is UnitTestBase {
    AuthCaptureEscrow.PaymentInfo internal info;
    bytes32 internal h;

    function setUp() public override {
        super.setUp();
        info = _defaultInfo();
        h = _authorize(info, 80e6);
    }

    function test_reclaim_succeeds_when_atAuthorizationExpiry() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(payer);
        escrow.reclaim(info);
        _assertState(h, true, 0, 0);
        assertEq(usdc.balanceOf(payer), MAX_AMOUNT);
        assertEq(usdc.balanceOf(_store()), 0);
    }

    function test_reclaim_succeeds_when_longAfterRefundExpiry() public {
        vm.warp(info.refundExpiry + 365 days);
        vm.prank(payer);
        escrow.reclaim(info);
        assertEq(usdc.balanceOf(payer), MAX_AMOUNT);
    }

    function test_reclaim_emitsPaymentReclaimedAndCreatesTokenStore() public {
        address store = _store();
        vm.warp(info.authorizationExpiry);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentReclaimed(h, 80e6);
        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.TokenStoreCreated(operator, store);
        vm.prank(payer);
        escrow.reclaim(info);
    }

    function test_reclaim_afterPartialCapture_returnsRemainderOnly() public {
        vm.prank(operator);
        escrow.capture(info, 30e6, 100, feeReceiver);
        vm.warp(info.authorizationExpiry);

        vm.expectEmit(true, true, true, true, address(escrow));
        emit AuthCaptureEscrow.PaymentReclaimed(h, 50e6);
        vm.prank(payer);
        escrow.reclaim(info);

        _assertState(h, true, 0, 30e6);
        assertEq(usdc.balanceOf(payer), 20e6 + 50e6);
    }

    function test_reclaim_reverts_InvalidSender_when_callerIsOperator() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, operator, payer));
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_InvalidSender_when_callerIsReceiver() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(receiver);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, receiver, payer));
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_BeforeAuthorizationExpiry_when_oneSecondBefore() public {
        vm.warp(info.authorizationExpiry - 1);
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.BeforeAuthorizationExpiry.selector,
                info.authorizationExpiry - 1,
                info.authorizationExpiry
            )
        );
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_BeforeAuthorizationExpiry_when_rightAfterAuthorize() public {
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.BeforeAuthorizationExpiry.selector, uint48(block.timestamp), info.authorizationExpiry
            )
        );
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_ZeroAuthorization_when_reclaimedTwice() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(payer);
        escrow.reclaim(info);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, h));
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_ZeroAuthorization_when_voided() public {
        vm.prank(operator);
        escrow.void(info);
        vm.warp(info.authorizationExpiry);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, h));
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_ZeroAuthorization_when_fullyCaptured() public {
        vm.prank(operator);
        escrow.capture(info, 80e6, 0, feeReceiver);
        vm.warp(info.authorizationExpiry);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, h));
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_ZeroAuthorization_when_paymentUnknown() public {
        AuthCaptureEscrow.PaymentInfo memory unknown = _defaultInfo();
        unknown.salt = 8;
        bytes32 uh = escrow.getHash(unknown);
        vm.warp(unknown.authorizationExpiry);
        vm.prank(payer);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, uh));
        escrow.reclaim(unknown);
    }

    function test_reclaim_reverts_InvalidSender_beforeBeforeAuthorizationExpiry() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, operator, payer));
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_BeforeAuthorizationExpiry_beforeZeroAuthorization() public {
        vm.prank(operator);
        escrow.void(info); // nothing held any more
        vm.prank(payer);
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.BeforeAuthorizationExpiry.selector, uint48(block.timestamp), info.authorizationExpiry
            )
        );
        escrow.reclaim(info);
    }
}
