// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowHelpers} from "../base/EscrowHelpers.sol";
import {receiveAuthorizationDigest} from "../base/PaymentFixtures.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TestUSDC} from "../../contracts/dev/TestUSDC.sol";
import {SafeTokenTransfer} from "../../contracts/libraries/SafeTokenTransfer.sol";
import {FailingUSDC} from "../mocks/FailingUSDC.sol";
import {
    FalseReturningToken,
    FeeOnTransferToken,
    MockERC20,
    NoReturnToken,
    RawResultToken,
    RevertingToken
} from "../mocks/MockTokens.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";
import {MisdeliveringCollector, MockPayerPullCollector} from "../mocks/MockCollectors.sol";

/// @notice The escrow against non-standard ERC-20s: fee-on-transfer (rejected at collection),
///         tokens that return false or revert (every operation fails cleanly and changes nothing:
///         a revert's data comes through byte for byte, anything but an ABI `true` is
///         `SafeERC20FailedOperation(token)`, as with OpenZeppelin's SafeERC20 in the reference),
///         USDT-style tokens that return nothing (fully supported), and a "token" with no code.
///         Tokens reach the escrow through the real pre-approval collector or a plain pull
///         collector, since none of these tokens has ERC-3009; an ERC-3009 token whose plain
///         `transfer` fails covers the ERC-3009 collector's onward transfers.
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

    /// @dev Every operation on a token whose `transfer` (outgoing from the store) fails: capture,
    ///      void, refund (the store pays the payer), charge and reclaim, each reverting with exactly
    ///      `expected` and changing nothing.
    function _assertOutgoingFailuresRevert(MockERC20 token, bytes memory expected) internal {
        (AuthCaptureEscrow.PaymentInfo memory held, AuthCaptureEscrow.PaymentInfo memory expiring) =
            _heldPayments(token);
        _breakOutgoing(token);
        address store = escrow.getTokenStore(operator);
        uint256 storeBefore = token.balanceOf(store);
        AuthCaptureEscrow.PaymentInfo memory fresh = _infoFor(address(token), 10e6, 12);

        vm.startPrank(operator);
        _assertHeldOperationsRevert(held, expected);
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

    /// @dev authorize and charge through the pre-approval collector, and refund through the
    ///      operator refund collector, on a token whose `transferFrom` (incoming) fails: each reverts
    ///      with exactly `expected` and changes nothing.
    function _assertIncomingFailuresRevert(MockERC20 token, bytes memory expected) internal {
        (AuthCaptureEscrow.PaymentInfo memory held,) = _heldPayments(token);
        AuthCaptureEscrow.PaymentInfo memory fresh = _infoFor(address(token), 10e6, 13);
        vm.startPrank(payer);
        token.approve(address(preApprovalCollector), type(uint256).max);
        preApprovalCollector.preApprove(fresh);
        vm.stopPrank();
        _breakIncoming(token);
        uint256 payerBefore = token.balanceOf(payer);
        uint256 operatorBefore = token.balanceOf(operator);

        vm.startPrank(operator);
        vm.expectRevert(expected);
        escrow.authorize(fresh, 1e6, address(preApprovalCollector), "");
        vm.expectRevert(expected);
        escrow.charge(fresh, 1e6, address(preApprovalCollector), "", 100, feeReceiver);
        vm.expectRevert(expected);
        escrow.refund(held, 1e6, address(refundCollector), "");
        vm.stopPrank();

        assertEq(_state(fresh), abi.encode(false, 0, 0));
        assertEq(_state(held), abi.encode(true, 6e6, 4e6));
        assertEq(token.balanceOf(payer), payerBefore);
        assertEq(token.balanceOf(operator), operatorBefore);
    }

    function _breakOutgoing(MockERC20 token) internal {
        if (address(token) == address(falseToken)) falseToken.setFailures(true, false);
        else revertingToken.setReverts(true, false);
    }

    function _breakIncoming(MockERC20 token) internal {
        if (address(token) == address(falseToken)) falseToken.setFailures(false, true);
        else revertingToken.setReverts(false, true);
    }

    /// @dev `SafeERC20FailedOperation(token)`, as OpenZeppelin's SafeERC20 reverts.
    function _failedOperation(address token) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(SafeTokenTransfer.SafeERC20FailedOperation.selector, token);
    }

    function test_tokenReturningFalseOnTransfer_revertsSafeERC20FailedOperation() public {
        MockERC20 token = _newFalseToken();
        _assertOutgoingFailuresRevert(token, _failedOperation(address(token)));
    }

    function test_tokenReturningFalseOnTransferFrom_revertsSafeERC20FailedOperation() public {
        MockERC20 token = _newFalseToken();
        _assertIncomingFailuresRevert(token, _failedOperation(address(token)));
    }

    function test_tokenRevertingOnTransfer_bubblesTokensOwnError() public {
        _assertOutgoingFailuresRevert(_newRevertingToken(), abi.encodeWithSelector(RevertingToken.TokenPaused.selector));
    }

    function test_tokenRevertingOnTransferFrom_bubblesTokensOwnError() public {
        _assertIncomingFailuresRevert(
            _newRevertingToken(), abi.encodeWithSelector(RevertingToken.TokenPaused.selector)
        );
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

    /*//////////////////////////////////////////////////////////////
                   REVERT DATA BYTE FOR BYTE, RETURN DATA
    //////////////////////////////////////////////////////////////*/

    /// @dev A held (partly captured) payment in a fresh RawResultToken, and the token.
    function _rawTokenHeld() internal returns (RawResultToken token, AuthCaptureEscrow.PaymentInfo memory held) {
        token = new RawResultToken();
        _fund(token, 100e6);
        held = _infoFor(address(token), 10e6, 30);
        vm.startPrank(operator);
        escrow.authorize(held, 10e6, address(pullCollector), "");
        escrow.capture(held, 4e6, 100, feeReceiver);
        vm.stopPrank();
    }

    function testFuzz_revertData_bubbledByteForByte(bytes memory data) public {
        (RawResultToken token, AuthCaptureEscrow.PaymentInfo memory held) = _rawTokenHeld();
        token.setRevert(data);
        vm.startPrank(operator);
        _assertHeldOperationsRevert(held, data);
        vm.expectRevert(data);
        escrow.authorize(_infoFor(address(token), 1e6, 31), 1e6, address(pullCollector), "");
        vm.stopPrank();
        assertEq(_state(held), abi.encode(true, 6e6, 4e6));
    }

    function test_revertData_longReasonString_bubbledByteForByte() public {
        (RawResultToken token, AuthCaptureEscrow.PaymentInfo memory held) = _rawTokenHeld();
        bytes memory reason = abi.encodeWithSignature(
            "Error(string)",
            "ERC20: transfer amount exceeds balance, and this reason is long enough to span several words"
        );
        token.setRevert(reason);
        vm.prank(operator);
        (bool ok, bytes memory returned) =
            address(escrow).call(abi.encodeCall(escrow.capture, (held, 1e6, 100, feeReceiver)));
        assertFalse(ok);
        assertEq(returned, reason);
    }

    function test_emptyRevert_bubbledAsEmpty() public {
        (RawResultToken token, AuthCaptureEscrow.PaymentInfo memory held) = _rawTokenHeld();
        token.setRevert("");
        vm.prank(operator);
        (bool ok, bytes memory returned) = address(escrow).call(abi.encodeCall(escrow.void, (held)));
        assertFalse(ok);
        assertEq(returned.length, 0);
    }

    /// @dev Only the ABI word `true` is success, as in SafeERC20: 2, a short `0x01`, a zero word.
    function test_returnDataOtherThanTrue_revertsSafeERC20FailedOperation() public {
        bytes[4] memory bad = [abi.encode(uint256(2)), bytes(hex"01"), abi.encode(false), bytes(hex"0000000000000000000000000000000000000000000000000000000000000001ff")];
        // The last one is a `true` word followed by a stray byte: accepted (only the first word counts).
        for (uint256 i; i < 3; ++i) {
            (RawResultToken token, AuthCaptureEscrow.PaymentInfo memory held) = _rawTokenHeld();
            token.setReturn(bad[i]);
            vm.startPrank(operator);
            _assertHeldOperationsRevert(held, _failedOperation(address(token)));
            vm.stopPrank();
        }
        (RawResultToken longTrue, AuthCaptureEscrow.PaymentInfo memory longHeld) = _rawTokenHeld();
        longTrue.setReturn(bad[3]);
        vm.prank(operator);
        escrow.capture(longHeld, 1e6, 100, feeReceiver);
        assertEq(_state(longHeld), abi.encode(true, 5e6, 5e6));
    }

    /*//////////////////////////////////////////////////////////////
              THE ERC-3009 COLLECTOR'S ONWARD TRANSFERS FAILING
    //////////////////////////////////////////////////////////////*/

    /// @dev The payer signs for 10 of `token`; authorizing 4 makes the collector transfer 6 back to
    ///      the payer and 4 to the store, where the token's `transfer` now fails.
    function _assertERC3009OnwardTransferReverts(FailingUSDC token, FailingUSDC.Mode mode, bytes memory expected)
        internal
    {
        AuthCaptureEscrow.PaymentInfo memory info = _infoFor(address(token), 10e6, 40);
        token.mint(payer, 10e6);
        bytes32 digest = receiveAuthorizationDigest(TestUSDC(address(token)), address(escrow), address(erc3009Collector), info);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(PAYER_PK, digest);
        token.setMode(mode);
        vm.prank(operator);
        vm.expectRevert(expected);
        escrow.authorize(info, 4e6, address(erc3009Collector), abi.encodePacked(r, s, v));
        assertEq(_state(info), abi.encode(false, 0, 0));
        assertEq(token.balanceOf(payer), 10e6);
    }

    function test_erc3009Collector_transferReturningFalse_revertsSafeERC20FailedOperation() public {
        FailingUSDC token = new FailingUSDC(address(this));
        _assertERC3009OnwardTransferReverts(token, FailingUSDC.Mode.ReturnFalse, _failedOperation(address(token)));
    }

    function test_erc3009Collector_transferReverting_bubblesTokensOwnError() public {
        FailingUSDC token = new FailingUSDC(address(this));
        // The first onward transfer is the excess (6) back to the payer.
        bytes memory expected =
            abi.encodeWithSelector(FailingUSDC.TransferBlocked.selector, address(erc3009Collector), payer, 6e6);
        _assertERC3009OnwardTransferReverts(token, FailingUSDC.Mode.Revert, expected);
    }

    function test_tokenWithoutCode_isRejected() public {
        address notAToken = makeAddr("notAToken");
        AuthCaptureEscrow.PaymentInfo memory info = _infoFor(notAToken, 1e6, 14);
        address noOpCollector = _noOpCollector();
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        vm.startPrank(operator);
        // A call to an address without code "succeeds" with no return data: SafeERC20's check.
        vm.expectRevert(_failedOperation(notAToken));
        escrow.authorize(info, 1e6, address(preApprovalCollector), "");
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
