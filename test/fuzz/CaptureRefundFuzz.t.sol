// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFuzzBase} from "./EscrowFuzzBase.t.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

/// @notice Fuzzes what happens to a payment after authorization: partial capture sequences with
///         exact fee splits, voids, reclaims and refund sequences, timestamps either side of every
///         expiry, and the exact error and check order of every invalid call.
contract CaptureRefundFuzzTest is EscrowFuzzBase {
    /// @dev Gives the operator plenty of refund funds, approved to the refund collector.
    function _fundOperatorForRefunds() internal {
        usdc.mint(operator, UINT120_MAX);
        vm.prank(operator);
        usdc.approve(address(refundCollector), type(uint256).max);
    }

    /// @dev A payment of the fixture payer held for `authAmount`, `captureAmount` of it captured
    ///      (no fee) when non-zero.
    function _partlyCapturedHold(uint120 authAmount, uint256 captureAmount)
        internal
        returns (AuthCaptureEscrow.PaymentInfo memory info, bytes32 h)
    {
        info = _paymentInfo(payer, authAmount);
        h = _authorizeSigned(info, authAmount);
        if (captureAmount != 0) {
            vm.prank(operator);
            escrow.capture(info, captureAmount, 0, feeReceiver);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 CAPTURE
    //////////////////////////////////////////////////////////////*/

    function testFuzz_capture_distributesExactly(
        uint120 maxAmount,
        uint256 authAmount,
        uint256 captureAmount,
        FeeSplitSeeds memory seeds
    ) public {
        (AuthCaptureEscrow.PaymentInfo memory info, uint16 feeBps, address chosen) = _feeSplitCase(maxAmount, seeds);
        authAmount = bound(authAmount, 1, info.maxAmount);
        captureAmount = bound(captureAmount, 1, authAmount);
        bytes32 h = _authorizeSigned(info, authAmount);

        vm.prank(operator);
        escrow.capture(info, captureAmount, feeBps, chosen);

        uint256 fee = _fee(captureAmount, feeBps);
        assertEq(usdc.balanceOf(chosen), fee, "fee");
        assertEq(usdc.balanceOf(receiver), captureAmount - fee, "remainder");
        assertEq(usdc.balanceOf(_store()), authAmount - captureAmount, "store keeps the rest of the hold");
        _assertState(h, true, authAmount - captureAmount, captureAmount);
    }

    function testFuzz_capture_partialSequence(
        uint120 authAmount,
        uint16 minFeeBps,
        uint16 maxFeeBps,
        uint256[8] calldata steps
    ) public {
        authAmount = uint120(bound(authAmount, 1, UINT120_MAX));
        AuthCaptureEscrow.PaymentInfo memory info = _validInfo(authAmount, minFeeBps, maxFeeBps);
        bytes32 h = _authorizeSigned(info, authAmount);

        Model memory m;
        m.capturable = authAmount;
        for (uint256 i; i < steps.length && m.capturable != 0; ++i) {
            // A quarter of the steps take everything left; the others a random part of it.
            uint256 chunk = steps[i] % 4 == 0 ? m.capturable : bound(steps[i] >> 2, 1, m.capturable);
            uint16 feeBps = uint16(bound(steps[i] >> 130, info.minFeeBps, info.maxFeeBps));
            vm.prank(operator);
            escrow.capture(info, chunk, feeBps, feeReceiver);
            m.feeBalance += _fee(chunk, feeBps);
            m.receiverBalance += chunk - _fee(chunk, feeBps);
            m.capturable -= chunk;
            m.refundable += chunk;

            assertEq(usdc.balanceOf(feeReceiver), m.feeBalance, "cumulative fees");
            assertEq(usdc.balanceOf(receiver), m.receiverBalance, "cumulative remainder");
            assertEq(usdc.balanceOf(_store()), m.capturable, "store");
            _assertState(h, true, m.capturable, m.refundable);
        }

        // Capturing one unit more than what is left always fails with the exact shortfall.
        vm.expectRevert(
            abi.encodeWithSelector(
                AuthCaptureEscrow.InsufficientAuthorization.selector, h, m.capturable, m.capturable + 1
            )
        );
        vm.prank(operator);
        escrow.capture(info, m.capturable + 1, info.minFeeBps, feeReceiver);
    }

    function testFuzz_capture_aroundAuthorizationExpiry(uint256 delta) public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        bytes32 h = _authorizeSigned(info, 1e6);
        uint48 expiry = info.authorizationExpiry;
        uint48 timestamp = uint48(bound(delta, expiry - 3, expiry + 3));
        vm.warp(timestamp);

        if (timestamp >= expiry) {
            vm.expectRevert(
                abi.encodeWithSelector(AuthCaptureEscrow.AfterAuthorizationExpiry.selector, timestamp, expiry)
            );
        }
        vm.prank(operator);
        escrow.capture(info, 1e6, 0, feeReceiver);
        _assertState(h, true, timestamp < expiry ? 0 : 1e6, timestamp < expiry ? 1e6 : 0);
    }

    /// @dev One capture attempt of the model test, kept in memory to spare the stack.
    struct CaptureCase {
        AuthCaptureEscrow.PaymentInfo info;
        bytes32 paymentInfoHash;
        uint256 authAmount;
        uint256 amount;
        uint16 feeBps;
        address chosenFeeReceiver;
        bytes expected;
    }

    /// @dev Amount, then fee, then expiry, then the hold: the spec's capture order.
    function testFuzz_capture_matchesSpecModel(
        uint120 authAmount,
        uint16 minFeeBps,
        uint16 maxFeeBps,
        uint8 amountKind,
        uint256 amountSeed,
        uint256 feeSeed,
        uint8 feeReceiverKind,
        uint256 timeSeed
    ) public {
        CaptureCase memory c;
        c.authAmount = bound(authAmount, 1, UINT120_MAX);
        c.info = _validInfo(uint120(c.authAmount), minFeeBps, maxFeeBps);
        if (feeReceiverKind % 2 == 1) c.info.feeReceiver = address(0);
        c.paymentInfoHash = _authorizeSigned(c.info, c.authAmount);

        amountKind %= 4;
        if (amountKind == 1) c.amount = bound(amountSeed, 1, c.authAmount);
        else if (amountKind == 2) c.amount = bound(amountSeed, c.authAmount + 1, UINT120_MAX + 1);
        else if (amountKind == 3) c.amount = bound(amountSeed, 1, type(uint256).max);
        c.feeBps = uint16(
            feeSeed % 2 == 0 ? bound(feeSeed >> 1, c.info.minFeeBps, c.info.maxFeeBps) : bound(feeSeed >> 1, 0, 12_000)
        );
        c.chosenFeeReceiver = [feeReceiver, address(0), otherFeeReceiver][feeReceiverKind % 3];
        vm.warp(bound(timeSeed, c.info.authorizationExpiry - 2, c.info.authorizationExpiry + 2));

        c.expected = _first(_amountError(c.amount), _feeError(c.info, c.feeBps, c.chosenFeeReceiver));
        if (c.expected.length == 0 && block.timestamp >= c.info.authorizationExpiry) {
            c.expected = abi.encodeWithSelector(
                AuthCaptureEscrow.AfterAuthorizationExpiry.selector, uint48(block.timestamp), c.info.authorizationExpiry
            );
        }
        if (c.expected.length == 0 && c.amount > c.authAmount) {
            c.expected = abi.encodeWithSelector(
                AuthCaptureEscrow.InsufficientAuthorization.selector, c.paymentInfoHash, c.authAmount, c.amount
            );
        }
        _runCapture(c);
    }

    function _runCapture(CaptureCase memory c) internal {
        if (c.expected.length != 0) vm.expectRevert(c.expected);
        vm.prank(operator);
        escrow.capture(c.info, c.amount, c.feeBps, c.chosenFeeReceiver);

        if (c.expected.length == 0) {
            uint256 fee = _fee(c.amount, c.feeBps);
            assertEq(usdc.balanceOf(receiver), c.amount - fee);
            if (c.chosenFeeReceiver != address(0)) assertEq(usdc.balanceOf(c.chosenFeeReceiver), fee);
            _assertState(c.paymentInfoHash, true, c.authAmount - c.amount, c.amount);
        } else {
            _assertState(c.paymentInfoHash, true, c.authAmount, 0);
            assertEq(usdc.balanceOf(_store()), c.authAmount);
        }
    }

    function testFuzz_operatorOnlyOperations_senderCheckedFirst(address caller) public {
        vm.assume(caller != operator);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        _authorizeSigned(info, 1e6);
        bytes memory expected = abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, caller, operator);

        vm.startPrank(caller);
        // Invalid amounts and fees too: the sender check must come first.
        vm.expectRevert(expected);
        escrow.capture(info, 0, 20_000, address(0));
        vm.expectRevert(expected);
        escrow.void(info);
        vm.expectRevert(expected);
        escrow.refund(info, 0, address(refundCollector), "");
        vm.stopPrank();
        assertEq(usdc.balanceOf(_store()), 1e6);
    }

    /*//////////////////////////////////////////////////////////////
                              VOID / RECLAIM
    //////////////////////////////////////////////////////////////*/

    function testFuzz_void_returnsRemainingHoldAtAnyTime(uint120 authAmount, uint256 captureAmount, uint256 warpBy)
        public
    {
        authAmount = uint120(bound(authAmount, 2, UINT120_MAX));
        captureAmount = bound(captureAmount, 0, authAmount - 1);
        (AuthCaptureEscrow.PaymentInfo memory info, bytes32 h) = _partlyCapturedHold(authAmount, captureAmount);
        // Anywhere from now to long after the refund expiry.
        vm.warp(block.timestamp + bound(warpBy, 0, 400 days));

        vm.prank(operator);
        escrow.void(info);
        assertEq(usdc.balanceOf(payer), authAmount - captureAmount, "payer gets the whole remaining hold");
        assertEq(usdc.balanceOf(_store()), 0);
        _assertState(h, true, 0, captureAmount);

        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, h));
        vm.prank(operator);
        escrow.void(info);
    }

    function testFuzz_reclaim_aroundAuthorizationExpiry(uint120 authAmount, uint256 captureAmount, uint256 delta)
        public
    {
        authAmount = uint120(bound(authAmount, 2, UINT120_MAX));
        captureAmount = bound(captureAmount, 0, authAmount - 1);
        (AuthCaptureEscrow.PaymentInfo memory info, bytes32 h) = _partlyCapturedHold(authAmount, captureAmount);
        uint48 expiry = info.authorizationExpiry;
        uint48 timestamp = uint48(bound(delta, expiry - 3, expiry + 3));
        vm.warp(timestamp);

        if (timestamp < expiry) {
            vm.expectRevert(
                abi.encodeWithSelector(AuthCaptureEscrow.BeforeAuthorizationExpiry.selector, timestamp, expiry)
            );
            vm.prank(payer);
            escrow.reclaim(info);
            _assertState(h, true, authAmount - captureAmount, captureAmount);
            return;
        }
        vm.prank(payer);
        escrow.reclaim(info);
        assertEq(usdc.balanceOf(payer), authAmount - captureAmount);
        _assertState(h, true, 0, captureAmount);

        // Capture and reclaim windows do not overlap: once reclaimable, nothing is capturable.
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.AfterAuthorizationExpiry.selector, timestamp, expiry));
        vm.prank(operator);
        escrow.capture(info, 1, 0, feeReceiver);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, h));
        vm.prank(payer);
        escrow.reclaim(info);
    }

    function testFuzz_reclaim_expiryCheckedBeforeHold(uint256 delta, uint256 salt) public {
        // A payment that was never authorized: before expiry the time error wins, after it the hold error.
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        info.salt = salt;
        bytes32 h = escrow.getHash(info);
        uint48 expiry = info.authorizationExpiry;
        uint48 timestamp = uint48(bound(delta, expiry - 3, expiry + 3));
        vm.warp(timestamp);

        vm.expectRevert(
            timestamp < expiry
                ? abi.encodeWithSelector(AuthCaptureEscrow.BeforeAuthorizationExpiry.selector, timestamp, expiry)
                : abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, h)
        );
        vm.prank(payer);
        escrow.reclaim(info);
    }

    function testFuzz_reclaim_onlyPayer(address caller) public {
        vm.assume(caller != payer);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        _authorizeSigned(info, 1e6);
        vm.warp(info.authorizationExpiry);

        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, caller, payer));
        vm.prank(caller);
        escrow.reclaim(info);
    }

    /*//////////////////////////////////////////////////////////////
                                  REFUND
    //////////////////////////////////////////////////////////////*/

    function testFuzz_refund_sequence(uint120 authAmount, uint256 captureAmount, uint256[6] calldata steps) public {
        authAmount = uint120(bound(authAmount, 1, UINT120_MAX));
        captureAmount = bound(captureAmount, 1, authAmount);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, authAmount);
        bytes32 h = _authorizeSigned(info, authAmount);
        vm.prank(operator);
        escrow.capture(info, captureAmount, 100, feeReceiver);
        _fundOperatorForRefunds();
        uint256 operatorFunds = usdc.balanceOf(operator);

        uint256 refundable = captureAmount;
        uint256 refunded;
        for (uint256 i; i < steps.length && refundable != 0; ++i) {
            uint256 amount = steps[i] % 4 == 0 ? refundable : bound(steps[i] >> 2, 1, refundable);
            vm.prank(operator);
            escrow.refund(info, amount, address(refundCollector), "");
            refundable -= amount;
            refunded += amount;

            assertEq(usdc.balanceOf(payer), refunded, "payer receives each refund");
            assertEq(usdc.balanceOf(operator), operatorFunds - refunded, "operator funds each refund");
            assertEq(usdc.balanceOf(_store()), authAmount - captureAmount, "store unchanged by refunds");
            _assertState(h, true, authAmount - captureAmount, refundable);
        }

        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.RefundExceedsCapture.selector, refundable + 1, refundable)
        );
        vm.prank(operator);
        escrow.refund(info, refundable + 1, address(refundCollector), "");
    }

    function testFuzz_refund_aroundRefundExpiry(uint256 delta) public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        bytes32 h = _authorizeSigned(info, 1e6);
        vm.prank(operator);
        escrow.capture(info, 1e6, 0, feeReceiver);
        _fundOperatorForRefunds();
        uint48 expiry = info.refundExpiry;
        uint48 timestamp = uint48(bound(delta, expiry - 3, expiry + 3));
        vm.warp(timestamp);

        if (timestamp >= expiry) {
            vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.AfterRefundExpiry.selector, timestamp, expiry));
        }
        vm.prank(operator);
        escrow.refund(info, 1e6, address(refundCollector), "");
        _assertState(h, true, 0, timestamp < expiry ? 0 : 1e6);
        assertEq(usdc.balanceOf(payer), timestamp < expiry ? 1e6 : 0);
    }

    /// @dev Amount, then expiry, then refundable: the spec's refund order.
    function testFuzz_refund_matchesSpecModel(
        uint120 captured,
        uint8 amountKind,
        uint256 amountSeed,
        uint256 timeSeed,
        bool neverCaptured
    ) public {
        captured = uint120(bound(captured, 1, UINT120_MAX));
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, captured);
        bytes32 h = _authorizeSigned(info, captured);
        if (!neverCaptured) {
            vm.prank(operator);
            escrow.capture(info, captured, 0, feeReceiver);
        }
        uint256 refundable = neverCaptured ? 0 : captured;
        _fundOperatorForRefunds();

        uint256 amount;
        amountKind %= 4;
        if (amountKind == 1) amount = bound(amountSeed, 1, captured);
        else if (amountKind == 2) amount = bound(amountSeed, uint256(captured) + 1, UINT120_MAX + 1);
        else if (amountKind == 3) amount = bound(amountSeed, 1, type(uint256).max);
        uint48 timestamp = uint48(bound(timeSeed, info.refundExpiry - 2, info.refundExpiry + 2));
        vm.warp(timestamp);

        bytes memory expected = _amountError(amount);
        if (expected.length == 0 && timestamp >= info.refundExpiry) {
            expected =
                abi.encodeWithSelector(AuthCaptureEscrow.AfterRefundExpiry.selector, timestamp, info.refundExpiry);
        }
        if (expected.length == 0 && amount > refundable) {
            expected = abi.encodeWithSelector(AuthCaptureEscrow.RefundExceedsCapture.selector, amount, refundable);
        }
        if (expected.length != 0) vm.expectRevert(expected);
        vm.prank(operator);
        escrow.refund(info, amount, address(refundCollector), "");

        bool ok = expected.length == 0;
        _assertState(h, true, neverCaptured ? captured : 0, ok ? refundable - amount : refundable);
        assertEq(usdc.balanceOf(payer), ok ? amount : 0);
    }

    /*//////////////////////////////////////////////////////////////
                      MIXED SEQUENCE AGAINST A MODEL
    //////////////////////////////////////////////////////////////*/

    /// @dev The running model of one payment and every party's balance.
    struct Model {
        uint256 capturable;
        uint256 refundable;
        uint256 payerBalance;
        uint256 receiverBalance;
        uint256 feeBalance;
        uint256 operatorBalance;
    }

    /// @dev Random capture / refund / void / reclaim / warp steps on one payment, each checked
    ///      against a running model of capturable, refundable and every party's balance.
    function testFuzz_lifecycle_randomSequenceMatchesModel(uint120 authAmount, uint256[12] calldata ops) public {
        authAmount = uint120(bound(authAmount, 1, 1e18));
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, authAmount);
        info.minFeeBps = 50;
        info.maxFeeBps = 500;
        bytes32 h = _authorizeSigned(info, authAmount);
        _fundOperatorForRefunds();

        Model memory m;
        m.capturable = authAmount;
        m.operatorBalance = usdc.balanceOf(operator);
        for (uint256 i; i < ops.length; ++i) {
            _step(info, m, ops[i] % 5, ops[i] >> 8);
            _assertState(h, true, m.capturable, m.refundable);
            assertEq(usdc.balanceOf(_store()), m.capturable, "store == capturable");
            assertEq(usdc.balanceOf(payer), m.payerBalance, "payer");
            assertEq(usdc.balanceOf(receiver), m.receiverBalance, "receiver");
            assertEq(usdc.balanceOf(feeReceiver), m.feeBalance, "fee receiver");
            assertEq(usdc.balanceOf(operator), m.operatorBalance, "operator");
        }
    }

    /// @dev Performs step `op` if it is currently allowed, otherwise lets time pass.
    function _step(AuthCaptureEscrow.PaymentInfo memory info, Model memory m, uint256 op, uint256 seed) internal {
        if (op == 0 && m.capturable != 0 && block.timestamp < info.authorizationExpiry) {
            uint256 amount = bound(seed, 1, m.capturable);
            uint16 feeBps = uint16(bound(seed >> 128, 50, 500));
            vm.prank(operator);
            escrow.capture(info, amount, feeBps, feeReceiver);
            uint256 fee = _fee(amount, feeBps);
            m.capturable -= amount;
            m.refundable += amount;
            m.feeBalance += fee;
            m.receiverBalance += amount - fee;
        } else if (op == 1 && m.refundable != 0 && block.timestamp < info.refundExpiry) {
            uint256 amount = bound(seed, 1, m.refundable);
            vm.prank(operator);
            escrow.refund(info, amount, address(refundCollector), "");
            m.refundable -= amount;
            m.payerBalance += amount;
            m.operatorBalance -= amount;
        } else if (op == 2 && m.capturable != 0) {
            vm.prank(operator);
            escrow.void(info);
            m.payerBalance += m.capturable;
            m.capturable = 0;
        } else if (op == 3 && m.capturable != 0 && block.timestamp >= info.authorizationExpiry) {
            vm.prank(payer);
            escrow.reclaim(info);
            m.payerBalance += m.capturable;
            m.capturable = 0;
        } else {
            vm.warp(block.timestamp + bound(seed, 1, 12 days));
        }
    }
}
