// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SafeTransferLib} from "solady/utils/SafeTransferLib.sol";

import {EscrowHelpers} from "../base/EscrowHelpers.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {
    FalseReturningToken,
    FeeOnTransferToken,
    MockERC20,
    NoReturnToken,
    RevertingToken
} from "../mocks/MockTokens.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";
import {MisdeliveringCollector, MockPayerPullCollector} from "../mocks/MockCollectors.sol";

/// @notice The escrow against non-standard ERC-20s: fee-on-transfer (rejected at collection),
///         tokens that return false or revert (every operation fails cleanly with SafeTransferLib's
///         error and changes nothing), USDT-style tokens that return nothing (fully supported), and
///         a "token" with no code. Tokens reach the escrow through the real pre-approval collector
///         or a plain pull collector, since none of these tokens has ERC-3009.
contract TokenBehaviourSecurityTest is EscrowHelpers {
    MockPayerPullCollector internal pullCollector;
    FalseReturningToken internal falseToken;
    RevertingToken internal revertingToken;

    function setUp() public override {
        super.setUp();
        pullCollector = new MockPayerPullCollector(address(escrow));
    }

    /// @dev A payment in `token` (1% max fee, fixed fee receiver, fixture expiries).
    function _infoFor(address token, uint120 maxAmount, uint256 salt)
        internal
        view
        returns (AuthCaptureEscrow.PaymentInfo memory info)
    {
        info = _paymentInfo(payer, maxAmount);
        info.token = token;
        info.salt = salt;
    }

    /// @dev Mints to the payer and operator and approves the pull and refund collectors.
    function _fund(MockERC20 token, uint256 amount) internal {
        _fundPayerAndOperator(address(token), amount, amount, address(pullCollector));
    }

    function _state(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes memory) {
        (bool c, uint120 cap, uint120 ref) = escrow.paymentState(escrow.getHash(info));
        return abi.encode(c, cap, ref);
    }

    /*//////////////////////////////////////////////////////////////
                             FEE ON TRANSFER
    //////////////////////////////////////////////////////////////*/

    function testFuzz_feeOnTransfer_authorizeAndChargeRejected(uint256 feeBps, uint120 amount) public {
        FeeOnTransferToken token = new FeeOnTransferToken(bound(feeBps, 1, 10_000));
        amount = uint120(bound(amount, 1, 1e30));
        _fund(token, amount);
        AuthCaptureEscrow.PaymentInfo memory info = _infoFor(address(token), amount, 1);

        vm.startPrank(operator);
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        escrow.authorize(info, amount, address(pullCollector), "");
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        escrow.charge(info, amount, address(pullCollector), "", 0, feeReceiver);
        vm.stopPrank();

        assertEq(token.balanceOf(payer), amount, "payer untouched");
        assertEq(_state(info), abi.encode(false, 0, 0));
    }

    function test_feeOnTransfer_preApprovalCollectorRejected() public {
        FeeOnTransferToken token = new FeeOnTransferToken(50);
        AuthCaptureEscrow.PaymentInfo memory info = _infoFor(address(token), 1e6, 2);
        token.mint(payer, 1e6);
        vm.startPrank(payer);
        token.approve(address(preApprovalCollector), 1e6);
        preApprovalCollector.preApprove(info);
        vm.stopPrank();

        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        vm.prank(operator);
        escrow.authorize(info, 1e6, address(preApprovalCollector), "");
    }

    function test_feeOnTransfer_refundRejected() public {
        FeeOnTransferToken token = new FeeOnTransferToken(0);
        _fund(token, 10e6);
        AuthCaptureEscrow.PaymentInfo memory info = _infoFor(address(token), 10e6, 3);
        vm.startPrank(operator);
        escrow.authorize(info, 10e6, address(pullCollector), "");
        escrow.capture(info, 4e6, 100, feeReceiver);
        vm.stopPrank();

        token.setFeeBps(100);
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        vm.prank(operator);
        escrow.refund(info, 1e6, address(refundCollector), "");
        assertEq(_state(info), abi.encode(true, 6e6, 4e6));
    }

    /*//////////////////////////////////////////////////////////////
                          RETURNS FALSE / REVERTS
    //////////////////////////////////////////////////////////////*/

    /// @dev Sets up a held and partly captured payment, plus an expired one, in a token that
    ///      behaves until `breakToken` is called.
    function _heldPayments(MockERC20 token)
        internal
        returns (AuthCaptureEscrow.PaymentInfo memory held, AuthCaptureEscrow.PaymentInfo memory expiring)
    {
        _fund(token, 100e6);
        held = _infoFor(address(token), 10e6, 10);
        expiring = _infoFor(address(token), 10e6, 11);
        expiring.authorizationExpiry = expiring.preApprovalExpiry;
        vm.startPrank(operator);
        escrow.authorize(held, 10e6, address(pullCollector), "");
        escrow.capture(held, 4e6, 100, feeReceiver);
        escrow.authorize(expiring, 5e6, address(pullCollector), "");
        vm.stopPrank();
    }

    /// @dev Every operation on a token whose `transfer` (outgoing from the store) fails.
    function _assertOutgoingFailuresRevert(MockERC20 token, bytes4 expected) internal {
        (AuthCaptureEscrow.PaymentInfo memory held, AuthCaptureEscrow.PaymentInfo memory expiring) =
            _heldPayments(token);
        _breakOutgoing(token);
        address store = escrow.getTokenStore(operator);
        uint256 storeBefore = token.balanceOf(store);
        AuthCaptureEscrow.PaymentInfo memory fresh = _infoFor(address(token), 10e6, 12);

        vm.startPrank(operator);
        _assertHeldOperationsRevert(held, abi.encodeWithSelector(expected));
        vm.expectRevert(expected);
        escrow.charge(fresh, 1e6, address(pullCollector), "", 100, feeReceiver);
        vm.stopPrank();
        vm.warp(expiring.authorizationExpiry);
        vm.expectRevert(expected);
        vm.prank(payer);
        escrow.reclaim(expiring);

        assertEq(_state(held), abi.encode(true, 6e6, 4e6));
        assertEq(_state(expiring), abi.encode(true, 5e6, 0));
        assertEq(_state(fresh), abi.encode(false, 0, 0));
        assertEq(token.balanceOf(store), storeBefore);
    }

    /// @dev authorize, charge and refund on a token whose `transferFrom` (incoming) fails.
    function _assertIncomingFailuresRevert(MockERC20 token, bytes4 expected) internal {
        (AuthCaptureEscrow.PaymentInfo memory held,) = _heldPayments(token);
        _breakIncoming(token);
        AuthCaptureEscrow.PaymentInfo memory fresh = _infoFor(address(token), 10e6, 13);
        uint256 payerBefore = token.balanceOf(payer);

        vm.startPrank(operator);
        vm.expectRevert(expected);
        escrow.authorize(fresh, 1e6, address(pullCollector), "");
        vm.expectRevert(expected);
        escrow.charge(fresh, 1e6, address(pullCollector), "", 100, feeReceiver);
        vm.expectRevert(expected);
        escrow.refund(held, 1e6, address(refundCollector), "");
        vm.stopPrank();

        assertEq(_state(fresh), abi.encode(false, 0, 0));
        assertEq(_state(held), abi.encode(true, 6e6, 4e6));
        assertEq(token.balanceOf(payer), payerBefore);
    }

    function _breakOutgoing(MockERC20 token) internal {
        if (address(token) == address(falseToken)) falseToken.setFailures(true, false);
        else revertingToken.setReverts(true, false);
    }

    function _breakIncoming(MockERC20 token) internal {
        if (address(token) == address(falseToken)) falseToken.setFailures(false, true);
        else revertingToken.setReverts(false, true);
    }

    function test_tokenReturningFalseOnTransfer_revertsTransferFailed() public {
        _assertOutgoingFailuresRevert(_newFalseToken(), SafeTransferLib.TransferFailed.selector);
    }

    function test_tokenReturningFalseOnTransferFrom_revertsTransferFromFailed() public {
        _assertIncomingFailuresRevert(_newFalseToken(), SafeTransferLib.TransferFromFailed.selector);
    }

    function test_tokenRevertingOnTransfer_revertsTransferFailed() public {
        _assertOutgoingFailuresRevert(_newRevertingToken(), SafeTransferLib.TransferFailed.selector);
    }

    function test_tokenRevertingOnTransferFrom_revertsTransferFromFailed() public {
        _assertIncomingFailuresRevert(_newRevertingToken(), SafeTransferLib.TransferFromFailed.selector);
    }

    /// @dev Deploys the token whose transfers return false, as `falseToken`.
    function _newFalseToken() internal returns (MockERC20) {
        falseToken = new FalseReturningToken();
        return falseToken;
    }

    /// @dev Deploys the token whose transfers revert, as `revertingToken`.
    function _newRevertingToken() internal returns (MockERC20) {
        revertingToken = new RevertingToken();
        return revertingToken;
    }

    function test_tokenWithoutCode_isRejected() public {
        address notAToken = makeAddr("notAToken");
        AuthCaptureEscrow.PaymentInfo memory info = _infoFor(notAToken, 1e6, 14);
        address noOpCollector = _noOpCollector();
        vm.startPrank(operator);
        vm.expectRevert(SafeTransferLib.TransferFromFailed.selector);
        escrow.authorize(info, 1e6, address(pullCollector), "");
        // A collector that claims success without moving anything is caught by the balance check.
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        escrow.authorize(info, 1e6, noOpCollector, "");
        vm.stopPrank();
    }

    /// @dev A Payment collector that reports success and delivers nothing.
    function _noOpCollector() internal returns (address) {
        MisdeliveringCollector collector =
            new MisdeliveringCollector(address(escrow), TokenCollector.CollectorType.Payment);
        collector.setDelivery(0, type(uint256).max);
        return address(collector);
    }

    /*//////////////////////////////////////////////////////////////
                       USDT-STYLE: NO RETURN VALUE
    //////////////////////////////////////////////////////////////*/

    function test_noReturnToken_fullLifecycleWorks() public {
        NoReturnToken token = new NoReturnToken();
        _fundPayerAndOperator(address(token), 30e6, 5e6, address(preApprovalCollector));
        address store = escrow.getTokenStore(operator);

        // authorize -> capture (1% fee) -> refund -> void
        AuthCaptureEscrow.PaymentInfo memory info = _infoFor(address(token), 10e6, 20);
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        vm.startPrank(operator);
        escrow.authorize(info, 10e6, address(preApprovalCollector), "");
        escrow.capture(info, 6e6, 100, feeReceiver);
        escrow.refund(info, 2e6, address(refundCollector), "");
        escrow.void(info);
        vm.stopPrank();
        assertEq(token.balanceOf(receiver), 6e6 - 6e4);
        assertEq(token.balanceOf(feeReceiver), 6e4);
        assertEq(token.balanceOf(payer), 30e6 - 10e6 + 2e6 + 4e6);
        assertEq(token.balanceOf(operator), 3e6);
        assertEq(token.balanceOf(store), 0);
        assertEq(_state(info), abi.encode(true, 0, 4e6));

        // charge
        AuthCaptureEscrow.PaymentInfo memory charged = _infoFor(address(token), 10e6, 21);
        vm.prank(payer);
        preApprovalCollector.preApprove(charged);
        vm.prank(operator);
        escrow.charge(charged, 10e6, address(preApprovalCollector), "", 50, feeReceiver);
        assertEq(token.balanceOf(receiver), 6e6 - 6e4 + 10e6 - 5e4);
        assertEq(token.balanceOf(feeReceiver), 6e4 + 5e4);

        // authorize -> reclaim after expiry
        AuthCaptureEscrow.PaymentInfo memory reclaimed = _infoFor(address(token), 5e6, 22);
        vm.prank(payer);
        preApprovalCollector.preApprove(reclaimed);
        vm.prank(operator);
        escrow.authorize(reclaimed, 5e6, address(preApprovalCollector), "");
        uint256 payerBefore = token.balanceOf(payer);
        vm.warp(reclaimed.authorizationExpiry);
        vm.prank(payer);
        escrow.reclaim(reclaimed);
        assertEq(token.balanceOf(payer), payerBefore + 5e6);
        assertEq(token.balanceOf(store), 0);
    }
}
