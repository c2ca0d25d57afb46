// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HeldPaymentTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

contract ReclaimTest is HeldPaymentTestBase {
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
        _expectEscrowEmit();
        emit AuthCaptureEscrow.PaymentReclaimed(h, 80e6);
        _expectTokenStoreCreated(store);
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
        _expectRevertFrom(operator, _invalidSender(operator, payer));
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_InvalidSender_when_callerIsReceiver() public {
        vm.warp(info.authorizationExpiry);
        _expectRevertFrom(receiver, _invalidSender(receiver, payer));
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_BeforeAuthorizationExpiry_when_oneSecondBefore() public {
        vm.warp(info.authorizationExpiry - 1);
        _assertTooEarlyToReclaim();
    }

    function test_reclaim_reverts_BeforeAuthorizationExpiry_when_rightAfterAuthorize() public {
        _assertTooEarlyToReclaim();
    }

    function test_reclaim_reverts_ZeroAuthorization_when_reclaimedTwice() public {
        vm.warp(info.authorizationExpiry);
        vm.prank(payer);
        escrow.reclaim(info);
        _assertNothingToReclaim(info, h);
    }

    function test_reclaim_reverts_ZeroAuthorization_when_voided() public {
        vm.prank(operator);
        escrow.void(info);
        vm.warp(info.authorizationExpiry);
        _assertNothingToReclaim(info, h);
    }

    function test_reclaim_reverts_ZeroAuthorization_when_fullyCaptured() public {
        vm.prank(operator);
        escrow.capture(info, 80e6, 0, feeReceiver);
        vm.warp(info.authorizationExpiry);
        _assertNothingToReclaim(info, h);
    }

    function test_reclaim_reverts_ZeroAuthorization_when_paymentUnknown() public {
        (AuthCaptureEscrow.PaymentInfo memory unknown, bytes32 uh) = _unknownPayment(8);
        vm.warp(unknown.authorizationExpiry);
        _assertNothingToReclaim(unknown, uh);
    }

    function test_reclaim_reverts_InvalidSender_beforeBeforeAuthorizationExpiry() public {
        _expectRevertFrom(operator, _invalidSender(operator, payer));
        escrow.reclaim(info);
    }

    function test_reclaim_reverts_BeforeAuthorizationExpiry_beforeZeroAuthorization() public {
        vm.prank(operator);
        escrow.void(info); // nothing held any more
        _assertTooEarlyToReclaim();
    }

    /// @dev The payer's reclaim, now, fails with `BeforeAuthorizationExpiry`.
    function _assertTooEarlyToReclaim() internal {
        bytes memory err = abi.encodeWithSelector(
            AuthCaptureEscrow.BeforeAuthorizationExpiry.selector, uint48(block.timestamp), info.authorizationExpiry
        );
        _expectRevertFrom(payer, err);
        escrow.reclaim(info);
    }

    /// @dev The payer's reclaim of `p` (hash `ph`) finds nothing held.
    function _assertNothingToReclaim(AuthCaptureEscrow.PaymentInfo memory p, bytes32 ph) internal {
        _expectRevertFrom(payer, _zeroAuthorization(ph));
        escrow.reclaim(p);
    }
}
