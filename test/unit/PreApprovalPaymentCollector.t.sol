// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "solady/tokens/ERC20.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";
import {PreApprovalPaymentCollector} from "../../contracts/collectors/PreApprovalPaymentCollector.sol";

contract PreApprovalPaymentCollectorTest is UnitTestBase {
    AuthCaptureEscrow.PaymentInfo internal info;
    bytes32 internal h;

    function setUp() public override {
        super.setUp();
        info = _defaultInfo();
        h = escrow.getHash(info);
        usdc.mint(payer, MAX_AMOUNT);
        vm.prank(payer);
        usdc.approve(address(preApprovalCollector), type(uint256).max);
    }

    /*//////////////////////////////////////////////////////////////
                               BASICS
    //////////////////////////////////////////////////////////////*/

    function test_collectorType_isPayment() public view {
        assertEq(uint8(preApprovalCollector.collectorType()), uint8(TokenCollector.CollectorType.Payment));
        assertEq(address(preApprovalCollector.authCaptureEscrow()), address(escrow));
    }

    function test_collectTokens_reverts_OnlyAuthCaptureEscrow_when_calledByOperator() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        vm.prank(operator);
        vm.expectRevert(TokenCollector.OnlyAuthCaptureEscrow.selector);
        preApprovalCollector.collectTokens(info, operator, 10e6, "");
    }

    /*//////////////////////////////////////////////////////////////
                               preApprove
    //////////////////////////////////////////////////////////////*/

    function test_preApprove_marksPaymentAndEmits() public {
        assertFalse(preApprovalCollector.isPreApproved(h));
        vm.expectEmit(true, true, true, true, address(preApprovalCollector));
        emit PreApprovalPaymentCollector.PaymentPreApproved(h);
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        assertTrue(preApprovalCollector.isPreApproved(h));
    }

    function test_preApprove_keyedByEscrowHash() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        assertTrue(preApprovalCollector.isPreApproved(_specHash(info)));
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.salt = 1;
        assertFalse(preApprovalCollector.isPreApproved(escrow.getHash(other)));
    }

    function test_preApprove_movesNoTokens() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        assertEq(usdc.balanceOf(payer), MAX_AMOUNT);
        assertEq(usdc.balanceOf(_store()), 0);
    }

    function test_preApprove_succeeds_when_oneSecondBeforePreApprovalExpiry() public {
        vm.warp(info.preApprovalExpiry - 1);
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        assertTrue(preApprovalCollector.isPreApproved(h));
    }

    function test_preApprove_reverts_InvalidSender_when_callerIsOperator() public {
        _preApproveReverts(operator, _invalidSender(operator, payer));
    }

    function test_preApprove_reverts_InvalidSender_when_callerIsStranger() public {
        _preApproveReverts(stranger, _invalidSender(stranger, payer));
    }

    function test_preApprove_reverts_AfterPreApprovalExpiry_when_atExpiry() public {
        vm.warp(info.preApprovalExpiry);
        _preApproveReverts(payer, _afterPreApprovalExpiry(info.preApprovalExpiry, info));
    }

    function test_preApprove_reverts_PaymentAlreadyPreApproved_when_calledTwice() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        _preApproveReverts(payer, _alreadyPreApproved());
    }

    function test_preApprove_reverts_PaymentAlreadyCollected_when_collectedWithAnotherCollector() public {
        _authorize(info, 10e6); // ERC-3009
        _preApproveReverts(payer, _alreadyCollected());
    }

    function test_preApprove_reverts_PaymentAlreadyCollected_when_charged() public {
        _charge(info, 10e6, 0, feeReceiver);
        _preApproveReverts(payer, _alreadyCollected());
    }

    function test_preApprove_reverts_InvalidSender_beforeAfterPreApprovalExpiry() public {
        vm.warp(info.preApprovalExpiry);
        _preApproveReverts(operator, _invalidSender(operator, payer));
    }

    function test_preApprove_reverts_AfterPreApprovalExpiry_beforePaymentAlreadyPreApproved() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        vm.warp(info.preApprovalExpiry);
        _preApproveReverts(payer, _afterPreApprovalExpiry(info.preApprovalExpiry, info));
    }

    /// @dev The spec names both errors without ordering them; this is the reference contract's order.
    function test_preApprove_reverts_PaymentAlreadyPreApproved_beforePaymentAlreadyCollected() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(preApprovalCollector), "");
        _preApproveReverts(payer, _alreadyPreApproved());
    }

    /*//////////////////////////////////////////////////////////////
                              COLLECTION
    //////////////////////////////////////////////////////////////*/

    function test_collect_authorize_pullsExactlyAmountFromPayer() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        vm.prank(operator);
        escrow.authorize(info, 30e6, address(preApprovalCollector), "");
        _assertState(h, true, 30e6, 0);
        assertEq(usdc.balanceOf(payer), 70e6);
        assertEq(usdc.balanceOf(_store()), 30e6);
        assertEq(usdc.balanceOf(address(preApprovalCollector)), 0);
        assertEq(usdc.allowance(payer, address(preApprovalCollector)), type(uint256).max);
    }

    function test_collect_charge_pullsAndDistributes() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        vm.prank(operator);
        escrow.charge(info, 30e6, address(preApprovalCollector), "", 100, feeReceiver);
        _assertState(h, true, 0, 30e6);
        assertEq(usdc.balanceOf(payer), 70e6);
        assertEq(usdc.balanceOf(receiver), 29.7e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.3e6);
    }

    function test_collect_preApprovalStaysSetAfterCollection() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        vm.prank(operator);
        escrow.authorize(info, 30e6, address(preApprovalCollector), "");
        assertTrue(preApprovalCollector.isPreApproved(h));
        // The escrow still refuses a second collection of the same payment.
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, h));
        escrow.authorize(info, 30e6, address(preApprovalCollector), "");
    }

    function test_collect_reverts_PaymentNotPreApproved_on_authorize() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(PreApprovalPaymentCollector.PaymentNotPreApproved.selector, h));
        escrow.authorize(info, 10e6, address(preApprovalCollector), "");
    }

    function test_collect_reverts_PaymentNotPreApproved_on_charge() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(PreApprovalPaymentCollector.PaymentNotPreApproved.selector, h));
        escrow.charge(info, 10e6, address(preApprovalCollector), "", 0, feeReceiver);
    }

    function test_collect_reverts_PaymentNotPreApproved_when_anotherPaymentWasPreApproved() public {
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.salt = 1;
        bytes32 oh = escrow.getHash(other);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(PreApprovalPaymentCollector.PaymentNotPreApproved.selector, oh));
        escrow.authorize(other, 10e6, address(preApprovalCollector), "");
    }

    /// @dev The token's own error comes through unchanged (SafeERC20 semantics).
    function test_collect_reverts_withTokensInsufficientAllowance_when_noAllowance() public {
        vm.prank(payer);
        usdc.approve(address(preApprovalCollector), 0);
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        vm.prank(operator);
        vm.expectRevert(ERC20.InsufficientAllowance.selector);
        escrow.authorize(info, 10e6, address(preApprovalCollector), "");
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev `sender`'s pre-approval of the default payment reverts with exactly `err`.
    function _preApproveReverts(address sender, bytes memory err) internal {
        _expectRevertFrom(sender, err);
        preApprovalCollector.preApprove(info);
    }

    function _alreadyPreApproved() internal view returns (bytes memory) {
        return abi.encodeWithSelector(PreApprovalPaymentCollector.PaymentAlreadyPreApproved.selector, h);
    }

    function _alreadyCollected() internal view returns (bytes memory) {
        return abi.encodeWithSelector(PreApprovalPaymentCollector.PaymentAlreadyCollected.selector, h);
    }
}
