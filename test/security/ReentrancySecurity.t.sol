// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SafeTransferLib} from "solady/utils/SafeTransferLib.sol";

import {EscrowHelpers} from "../base/EscrowHelpers.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";
import {CallbackToken} from "../mocks/MockTokens.sol";
import {ReentrantCollector} from "../mocks/MockCollectors.sol";
import {ReentrantActor} from "../mocks/ReentrantActor.sol";

/// @notice Every state-changing entry point is non-reentrant. A `ReentrantActor` is the operator
///         (and payer) of a set of "target" payments on which each of the eight escrow entry points
///         would succeed if called directly (proved by `test_targetCallsSucceedWhenNotReentrant`).
///         The actor is then triggered from inside an escrow operation, through a malicious
///         collector or an ERC-777-style token hook, and must be stopped by `Reentrancy()`
///         (0xab143c06) with no state change.
contract ReentrancySecurityTest is EscrowHelpers {
    bytes4 internal constant REENTRANCY_SELECTOR = 0xab143c06;
    uint256 internal constant INNER_KINDS = 8; // authorize, charge, capture, void, refund, reclaim, captureBatch, voidBatch
    uint256 internal constant OUTER_KINDS = 8; // same eight, as the operation being re-entered

    ReentrantActor internal actor;
    CallbackToken internal callbackToken;
    ReentrantCollector internal reentrantPaymentCollector;
    ReentrantCollector internal reentrantRefundCollector;

    // Targets of the re-entrant call: operator (and payer) = actor, token = USDC.
    AuthCaptureEscrow.PaymentInfo internal targetFreshForAuthorize;
    AuthCaptureEscrow.PaymentInfo internal targetFreshForCharge;
    AuthCaptureEscrow.PaymentInfo internal targetHeld; // capturable 1e6, refundable 1e6
    AuthCaptureEscrow.PaymentInfo internal targetExpired; // capturable 1e6, authorization expired

    // Operations being re-entered, through the token hook (token = CallbackToken).
    AuthCaptureEscrow.PaymentInfo internal hookFresh;
    AuthCaptureEscrow.PaymentInfo internal hookHeld;
    AuthCaptureEscrow.PaymentInfo internal hookExpired;

    // Operations being re-entered, through a malicious collector (token = USDC).
    AuthCaptureEscrow.PaymentInfo internal collectorFresh;
    AuthCaptureEscrow.PaymentInfo internal collectorHeld;

    function setUp() public override {
        super.setUp();
        actor = new ReentrantActor();
        callbackToken = new CallbackToken();
        callbackToken.setHook(address(actor));
        reentrantPaymentCollector = new ReentrantCollector(address(escrow), TokenCollector.CollectorType.Payment);
        reentrantRefundCollector = new ReentrantCollector(address(escrow), TokenCollector.CollectorType.Refund);
        reentrantPaymentCollector.setHook(address(actor));
        reentrantRefundCollector.setHook(address(actor));
        usdc.mint(address(reentrantPaymentCollector), 100e6);
        usdc.mint(address(reentrantRefundCollector), 100e6);
        vm.label(address(actor), "ReentrantActor");

        uint48 t0 = uint48(block.timestamp);
        _setUpTargets(t0);
        _setUpHookPayments(t0);
        _setUpCollectorPayments();

        // Move to a time where every target call is valid: the short authorizations have expired.
        vm.warp(t0 + 1 hours);
    }

    function _actorInfo(uint256 salt, uint48 t0, bool shortLived)
        internal
        view
        returns (AuthCaptureEscrow.PaymentInfo memory info)
    {
        info = _paymentInfo(address(actor), 10e6);
        info.operator = address(actor);
        info.salt = salt;
        info.preApprovalExpiry = shortLived ? t0 + 30 minutes : t0 + 1 days;
        info.authorizationExpiry = shortLived ? t0 + 1 hours : t0 + 2 days;
        info.refundExpiry = t0 + 30 days;
    }

    function _setUpTargets(uint48 t0) internal {
        usdc.mint(address(actor), 100e6);
        actor.execute(address(usdc), abi.encodeCall(usdc.approve, (address(preApprovalCollector), type(uint256).max)));
        actor.execute(address(usdc), abi.encodeCall(usdc.approve, (address(refundCollector), type(uint256).max)));

        targetFreshForAuthorize = _actorInfo(1, t0, false);
        targetFreshForCharge = _actorInfo(2, t0, false);
        targetHeld = _actorInfo(3, t0, false);
        targetExpired = _actorInfo(4, t0, true);
        AuthCaptureEscrow.PaymentInfo[4] memory all =
            [targetFreshForAuthorize, targetFreshForCharge, targetHeld, targetExpired];
        for (uint256 i; i < all.length; ++i) {
            actor.execute(address(preApprovalCollector), abi.encodeCall(preApprovalCollector.preApprove, (all[i])));
        }
        actor.execute(
            address(escrow),
            abi.encodeCall(escrow.authorize, (targetHeld, 2e6, address(preApprovalCollector), bytes("")))
        );
        actor.execute(address(escrow), abi.encodeCall(escrow.capture, (targetHeld, 1e6, 0, feeReceiver)));
        actor.execute(
            address(escrow),
            abi.encodeCall(escrow.authorize, (targetExpired, 1e6, address(preApprovalCollector), bytes("")))
        );
    }

    function _setUpHookPayments(uint48 t0) internal {
        _fundPayerAndOperator(address(callbackToken), 100e6, 100e6, address(preApprovalCollector));

        hookFresh = _paymentInfo(payer, 10e6);
        hookFresh.token = address(callbackToken);
        hookFresh.salt = 11;
        hookFresh.preApprovalExpiry = t0 + 1 days;
        hookFresh.authorizationExpiry = t0 + 2 days;
        hookHeld = _paymentInfo(payer, 10e6);
        hookHeld.token = address(callbackToken);
        hookHeld.salt = 12;
        hookHeld.preApprovalExpiry = t0 + 1 days;
        hookHeld.authorizationExpiry = t0 + 2 days;
        hookExpired = _paymentInfo(payer, 10e6);
        hookExpired.token = address(callbackToken);
        hookExpired.salt = 13;
        hookExpired.preApprovalExpiry = t0 + 30 minutes;
        hookExpired.authorizationExpiry = t0 + 1 hours;

        vm.startPrank(payer);
        preApprovalCollector.preApprove(hookFresh);
        preApprovalCollector.preApprove(hookHeld);
        preApprovalCollector.preApprove(hookExpired);
        vm.stopPrank();
        vm.startPrank(operator);
        escrow.authorize(hookHeld, 4e6, address(preApprovalCollector), "");
        escrow.capture(hookHeld, 2e6, 100, feeReceiver);
        escrow.authorize(hookExpired, 3e6, address(preApprovalCollector), "");
        vm.stopPrank();
    }

    function _setUpCollectorPayments() internal {
        collectorFresh = _paymentInfo(payer, 10e6);
        collectorFresh.salt = 21;
        collectorFresh.preApprovalExpiry = uint48(block.timestamp + 1 days);
        collectorFresh.authorizationExpiry = uint48(block.timestamp + 2 days);
        collectorHeld = _paymentInfo(payer, 10e6);
        collectorHeld.salt = 22;
        collectorHeld.authorizationExpiry = uint48(block.timestamp + 2 days);
        _authorizeAndCapture(collectorHeld, 5e6, 3e6, 100);
    }

    /*//////////////////////////////////////////////////////////////
                           CALL CONSTRUCTION
    //////////////////////////////////////////////////////////////*/

    /// @dev The re-entrant call of kind `k`, made by the actor on its own target payments.
    function _innerCall(uint256 k) internal view returns (bytes memory) {
        if (k == 0) return _authorizeCall(targetFreshForAuthorize, address(preApprovalCollector));
        if (k == 1) return _chargeCall(targetFreshForCharge, address(preApprovalCollector), 0);
        if (k == 2) return abi.encodeCall(escrow.capture, (targetHeld, 5e5, 0, feeReceiver));
        if (k == 3) return abi.encodeCall(escrow.void, (targetHeld));
        if (k == 4) return abi.encodeCall(escrow.refund, (targetHeld, 5e5, address(refundCollector), ""));
        if (k == 5) return abi.encodeCall(escrow.reclaim, (targetExpired));
        if (k == 6) return _captureBatchOfOne(targetHeld, 5e5, 0);
        return _voidBatchOfOne(targetHeld);
    }

    /// @dev The operation of kind `k` on the CallbackToken payments, and who must call it.
    function _hookOuterCall(uint256 k) internal view returns (address caller, bytes memory data) {
        caller = operator;
        if (k == 0) {
            data = _authorizeCall(hookFresh, address(preApprovalCollector));
        } else if (k == 1) {
            data = _chargeCall(hookFresh, address(preApprovalCollector), 100);
        } else if (k == 2) {
            data = abi.encodeCall(escrow.capture, (hookHeld, 1e6, 100, feeReceiver));
        } else if (k == 3) {
            data = abi.encodeCall(escrow.void, (hookHeld));
        } else if (k == 4) {
            data = abi.encodeCall(escrow.refund, (hookHeld, 1e6, address(refundCollector), ""));
        } else if (k == 5) {
            caller = payer;
            data = abi.encodeCall(escrow.reclaim, (hookExpired));
        } else if (k == 6) {
            data = _captureBatchOfOne(hookHeld, 1e6, 100);
        } else {
            data = _voidBatchOfOne(hookHeld);
        }
    }

    /// @dev A `captureBatch` of the one request capturing `amount` of `info` at `feeBps` to the fixture's fee receiver.
    function _captureBatchOfOne(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount, uint16 feeBps)
        internal
        view
        returns (bytes memory)
    {
        AuthCaptureEscrow.CaptureRequest[] memory requests = new AuthCaptureEscrow.CaptureRequest[](1);
        requests[0] = AuthCaptureEscrow.CaptureRequest(info, amount, feeBps, feeReceiver);
        return abi.encodeCall(escrow.captureBatch, (requests));
    }

    /// @dev A `voidBatch` of `info` alone.
    function _voidBatchOfOne(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes memory) {
        AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](1);
        infos[0] = info;
        return abi.encodeCall(escrow.voidBatch, (infos));
    }

    /// @dev The collector-driven operation of kind `k` (authorize, charge, refund) with a re-entering collector.
    function _collectorOuterCall(uint256 k) internal view returns (bytes memory) {
        if (k == 0) return _authorizeCall(collectorFresh, address(reentrantPaymentCollector));
        if (k == 1) return _chargeCall(collectorFresh, address(reentrantPaymentCollector), 100);
        return abi.encodeCall(escrow.refund, (collectorHeld, 1e6, address(reentrantRefundCollector), ""));
    }

    /// @dev An `authorize` of 1e6 of `info` through `collector`, with no collector data.
    function _authorizeCall(AuthCaptureEscrow.PaymentInfo memory info, address collector)
        internal
        view
        returns (bytes memory)
    {
        return abi.encodeCall(escrow.authorize, (info, 1e6, collector, ""));
    }

    /// @dev A `charge` of 1e6 of `info` through `collector` with no collector data, at `feeBps` to the
    ///      fixture's fee receiver.
    function _chargeCall(AuthCaptureEscrow.PaymentInfo memory info, address collector, uint16 feeBps)
        internal
        view
        returns (bytes memory)
    {
        return abi.encodeCall(escrow.charge, (info, 1e6, collector, "", feeBps, feeReceiver));
    }

    /// @dev Everything a re-entrant call could have changed: the state of every payment in the
    ///      test and the balances of every party, in both tokens.
    function _fingerprint() internal view returns (bytes32) {
        AuthCaptureEscrow.PaymentInfo[9] memory infos = [
            targetFreshForAuthorize,
            targetFreshForCharge,
            targetHeld,
            targetExpired,
            hookFresh,
            hookHeld,
            hookExpired,
            collectorFresh,
            collectorHeld
        ];
        bytes memory acc;
        for (uint256 i; i < infos.length; ++i) {
            (bool c, uint120 cap, uint120 ref) = escrow.paymentState(escrow.getHash(infos[i]));
            acc = bytes.concat(acc, abi.encode(c, cap, ref));
        }
        return keccak256(bytes.concat(acc, _balances(address(usdc)), _balances(address(callbackToken))));
    }

    /// @dev The target payments' state and the balances of the actor's store and the actor.
    function _targetFingerprint() internal view returns (bytes32) {
        AuthCaptureEscrow.PaymentInfo[4] memory infos =
            [targetFreshForAuthorize, targetFreshForCharge, targetHeld, targetExpired];
        bytes memory acc;
        for (uint256 i; i < infos.length; ++i) {
            (bool c, uint120 cap, uint120 ref) = escrow.paymentState(escrow.getHash(infos[i]));
            acc = bytes.concat(acc, abi.encode(c, cap, ref));
        }
        return keccak256(
            bytes.concat(
                acc,
                abi.encode(
                    usdc.balanceOf(address(actor)),
                    usdc.balanceOf(escrow.getTokenStore(address(actor))),
                    usdc.balanceOf(receiver),
                    usdc.balanceOf(feeReceiver)
                )
            )
        );
    }

    function _balances(address token) internal view returns (bytes memory) {
        address[7] memory who = [
            payer,
            operator,
            receiver,
            feeReceiver,
            address(actor),
            escrow.getTokenStore(operator),
            escrow.getTokenStore(address(actor))
        ];
        bytes memory acc;
        for (uint256 i; i < who.length; ++i) {
            acc = bytes.concat(acc, abi.encode(SafeTransferLib.balanceOf(token, who[i])));
        }
        return acc;
    }

    /// @dev With the actor armed to re-enter with inner call `inner` and bubble its failure,
    ///      `caller` runs `outerCall` on the escrow: it must fail with exactly `expectedRevert` and
    ///      change nothing. The state is rolled back afterwards.
    function _assertBubbledReentryReverts(
        address caller,
        bytes memory outerCall,
        uint256 inner,
        bytes memory expectedRevert
    ) internal {
        uint256 snapshot = vm.snapshotState();
        bytes32 before = _fingerprint();
        actor.arm(address(escrow), _innerCall(inner), true);

        vm.prank(caller);
        (bool ok, bytes memory returned) = address(escrow).call(outerCall);

        assertFalse(ok, "re-entered operation must fail");
        assertEq(returned, expectedRevert, "with exactly the expected error");
        assertEq(_fingerprint(), before, "and change nothing");
        vm.revertToState(snapshot);
    }

    /*//////////////////////////////////////////////////////////////
                                  TESTS
    //////////////////////////////////////////////////////////////*/

    /// @dev Control: each of the eight re-entrant calls succeeds when made directly, so in the
    ///      tests below only the reentrancy lock can be what stops it.
    function test_targetCallsSucceedWhenNotReentrant() public {
        for (uint256 k; k < INNER_KINDS; ++k) {
            uint256 snapshot = vm.snapshotState();
            bytes32 before = _targetFingerprint();
            actor.execute(address(escrow), _innerCall(k)); // reverts the test if the call fails
            assertNotEq(_targetFingerprint(), before, "the call has an effect");
            vm.revertToState(snapshot);
        }
    }

    /// @dev Malicious collector: authorize, charge and refund each re-entered with all eight calls.
    ///      The collector bubbles the failure, so the whole operation reverts with Reentrancy().
    function test_reentrantCollector_everyEntryPointRevertsWithReentrancy() public {
        for (uint256 outer; outer < 3; ++outer) {
            for (uint256 inner; inner < INNER_KINDS; ++inner) {
                _assertBubbledReentryReverts(
                    operator, _collectorOuterCall(outer), inner, abi.encodeWithSelector(REENTRANCY_SELECTOR)
                );
            }
        }
    }

    /// @dev Token hook, recording mode: all eight operations re-entered with all eight calls. The
    ///      re-entrant call fails with Reentrancy() and leaves the target payments untouched, while
    ///      the operation being re-entered completes exactly as it would without the hook.
    function test_reentrantToken_everyEntryPointRejectsReentrancy() public {
        for (uint256 outer; outer < OUTER_KINDS; ++outer) {
            (address caller, bytes memory outerCall) = _hookOuterCall(outer);
            // What the operation does without any re-entry, for comparison.
            uint256 snapshot = vm.snapshotState();
            vm.prank(caller);
            (bool refOk,) = address(escrow).call(outerCall);
            assertTrue(refOk, "the operation itself is valid");
            bytes32 expectedAfter = _fingerprint();
            vm.revertToState(snapshot);

            for (uint256 inner; inner < INNER_KINDS; ++inner) {
                snapshot = vm.snapshotState();
                bytes32 targetsBefore = _targetFingerprint();
                uint256 attemptsBefore = actor.attempts();
                actor.arm(address(escrow), _innerCall(inner), false);

                vm.prank(caller);
                (bool ok,) = address(escrow).call(outerCall);

                assertTrue(ok, "outer operation completes");
                assertEq(actor.attempts(), attemptsBefore + 1, "the hook did re-enter");
                assertFalse(actor.lastSucceeded(), "re-entrant call failed");
                assertEq(actor.lastRevertData(), abi.encodeWithSelector(REENTRANCY_SELECTOR), "with Reentrancy()");
                assertEq(_targetFingerprint(), targetsBefore, "re-entrant call changed nothing");
                assertEq(_fingerprint(), expectedAfter, "outer operation unaffected");
                vm.revertToState(snapshot);
            }
        }
    }

    /// @dev Token hook, bubbling mode: the token's transfer fails with the re-entrant call's own
    ///      Reentrancy(), which the collectors and the store pass through unchanged (as SafeERC20
    ///      does), whether the failing transfer is a collector's transferFrom (authorize, charge,
    ///      refund) or a store's transfer; the whole operation is rolled back.
    function test_reentrantToken_bubbledFailureRollsBackEverything() public {
        for (uint256 outer; outer < OUTER_KINDS; ++outer) {
            (address caller, bytes memory outerCall) = _hookOuterCall(outer);
            _assertBubbledReentryReverts(caller, outerCall, outer, abi.encodeWithSelector(REENTRANCY_SELECTOR));
        }
    }

    /// @dev A counterfactual-wallet "prepare" call (ERC-6492) runs inside authorize; if it tries to
    ///      re-enter, the lock stops it and Multicall3's tryAggregate(false) just moves on.
    function test_erc6492PrepareCallCannotReenter() public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        info.salt = 99;
        usdc.mint(payer, info.maxAmount);
        bytes memory inner = _signERC3009(info, PAYER_PK);
        bytes memory wrapped = abi.encodePacked(
            abi.encode(address(actor), abi.encodeCall(actor.onCollect, ()), inner),
            bytes32(0x6492649264926492649264926492649264926492649264926492649264926492)
        );
        bytes32 targetsBefore = _targetFingerprint();
        actor.arm(address(escrow), _innerCall(2), false); // capture on targetHeld

        vm.prank(operator);
        escrow.authorize(info, 1e6, address(erc3009Collector), wrapped);

        assertEq(actor.attempts(), 1);
        assertEq(actor.lastRevertData(), abi.encodeWithSelector(REENTRANCY_SELECTOR));
        assertEq(_targetFingerprint(), targetsBefore);
        (, uint120 capturable,) = escrow.paymentState(escrow.getHash(info));
        assertEq(capturable, 1e6, "the payment itself went through");
    }

    /// @dev The lock is released after each call: a contract may call several operations in a row.
    function test_lockIsReleasedBetweenCalls() public {
        actor.execute(address(escrow), _innerCall(2)); // capture
        actor.execute(address(escrow), _innerCall(4)); // refund
        actor.execute(address(escrow), _innerCall(3)); // void
        actor.execute(address(escrow), _innerCall(5)); // reclaim
        actor.execute(address(escrow), _innerCall(0)); // authorize
        actor.execute(address(escrow), _innerCall(1)); // charge
        (, uint120 capturable, uint120 refundable) = escrow.paymentState(escrow.getHash(targetHeld));
        assertEq(capturable, 0);
        assertEq(refundable, 1e6);
    }
}
