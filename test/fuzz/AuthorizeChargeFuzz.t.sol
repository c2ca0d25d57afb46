// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFuzzBase} from "./EscrowFuzzBase.t.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

/// @notice Fuzzes authorize and charge over amounts, fee ranges, fee choices, expiries and
///         timestamps: valid inputs must move exactly the right balances, invalid ones must fail
///         with exactly the error the spec's check order names first.
contract AuthorizeChargeFuzzTest is EscrowFuzzBase {

    /*//////////////////////////////////////////////////////////////
                                AUTHORIZE
    //////////////////////////////////////////////////////////////*/

    function testFuzz_authorize_holdsExactAmount(uint120 maxAmount, uint256 amount, uint256 salt) public {
        maxAmount = uint120(bound(maxAmount, 1, UINT120_MAX));
        amount = bound(amount, 1, maxAmount);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, maxAmount);
        info.salt = salt;

        bytes32 h = _authorizeSigned(info, amount);

        assertEq(usdc.balanceOf(payer), maxAmount - amount, "payer keeps the unauthorized rest");
        assertEq(usdc.balanceOf(_store()), amount, "store holds the authorization");
        assertEq(usdc.balanceOf(address(erc3009Collector)), 0, "collector keeps nothing");
        _assertState(h, true, amount, 0);
    }

    function testFuzz_authorize_preApprovalCollectorHoldsExactAmount(uint120 maxAmount, uint256 amount) public {
        maxAmount = uint120(bound(maxAmount, 1, UINT120_MAX));
        amount = bound(amount, 1, maxAmount);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, maxAmount);
        usdc.mint(payer, amount);
        vm.startPrank(payer);
        usdc.approve(address(preApprovalCollector), amount);
        preApprovalCollector.preApprove(info);
        vm.stopPrank();

        vm.prank(operator);
        escrow.authorize(info, amount, address(preApprovalCollector), "");

        assertEq(usdc.balanceOf(payer), 0);
        assertEq(usdc.balanceOf(_store()), amount);
        _assertState(escrow.getHash(info), true, amount, 0);
    }

    function testFuzz_authorize_revertsAboveMaxAmount(uint120 maxAmount, uint256 amount) public {
        maxAmount = uint120(bound(maxAmount, 1, UINT120_MAX - 1));
        amount = bound(amount, uint256(maxAmount) + 1, UINT120_MAX);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, maxAmount);
        usdc.mint(payer, maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);

        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ExceedsMaxAmount.selector, amount, maxAmount));
        vm.prank(operator);
        escrow.authorize(info, amount, address(erc3009Collector), signature);
        _assertState(escrow.getHash(info), false, 0, 0);
    }

    function testFuzz_authorizeAndCharge_revertAboveUint120(uint256 amount, uint120 maxAmount) public {
        amount = bound(amount, UINT120_MAX + 1, type(uint256).max);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, maxAmount);
        // The amount check precedes payment validation, so even an expired payment reports it.
        info.preApprovalExpiry = 0;
        bytes memory expected = abi.encodeWithSelector(AuthCaptureEscrow.AmountOverflow.selector, amount, UINT120_MAX);

        vm.startPrank(operator);
        vm.expectRevert(expected);
        escrow.authorize(info, amount, address(erc3009Collector), "");
        vm.expectRevert(expected);
        escrow.charge(info, amount, address(erc3009Collector), "", 0, feeReceiver);
        vm.stopPrank();
    }

    function testFuzz_authorizeAndCharge_revertOnZeroAmount(uint120 maxAmount, uint48 preApprovalExpiry) public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, maxAmount);
        info.preApprovalExpiry = preApprovalExpiry;
        bytes memory expected = abi.encodeWithSelector(AuthCaptureEscrow.ZeroAmount.selector);

        vm.startPrank(operator);
        vm.expectRevert(expected);
        escrow.authorize(info, 0, address(erc3009Collector), "");
        vm.expectRevert(expected);
        escrow.charge(info, 0, address(erc3009Collector), "", 0, feeReceiver);
        vm.stopPrank();
    }

    function testFuzz_authorizeAndCharge_senderCheckedFirst(address caller, uint256 amount) public {
        vm.assume(caller != operator);
        // Everything else is wrong too: only the sender error may surface.
        AuthCaptureEscrow.PaymentInfo memory info = _info(1, 0, 0, 0, 2, 1, address(0), 0);
        bytes memory expected = abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, caller, operator);

        vm.startPrank(caller);
        vm.expectRevert(expected);
        escrow.authorize(info, amount, address(erc3009Collector), "");
        vm.expectRevert(expected);
        escrow.charge(info, amount, address(erc3009Collector), "", 20_000, address(0));
        vm.stopPrank();
    }

    function testFuzz_authorize_feeRangeValidation(uint16 minFeeBps, uint16 maxFeeBps) public {
        minFeeBps = uint16(bound(minFeeBps, 0, 12_000));
        maxFeeBps = uint16(bound(maxFeeBps, 0, 12_000));
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        info.minFeeBps = minFeeBps;
        info.maxFeeBps = maxFeeBps;
        usdc.mint(payer, info.maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);

        if (maxFeeBps > MAX_BPS) {
            vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOverflow.selector, maxFeeBps));
        } else if (minFeeBps > maxFeeBps) {
            vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeBpsRange.selector, minFeeBps, maxFeeBps));
        }
        vm.prank(operator);
        escrow.authorize(info, 1e6, address(erc3009Collector), signature);
    }

    /// @dev With maxFeeBps > 10000 and minFeeBps > maxFeeBps both wrong, FeeBpsOverflow comes first.
    function testFuzz_authorizeAndCharge_feeOverflowCheckedBeforeRange(uint16 minFeeBps, uint16 maxFeeBps) public {
        maxFeeBps = uint16(bound(maxFeeBps, MAX_BPS + 1, type(uint16).max - 1));
        minFeeBps = uint16(bound(minFeeBps, uint256(maxFeeBps) + 1, type(uint16).max));
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        info.minFeeBps = minFeeBps;
        info.maxFeeBps = maxFeeBps;
        bytes memory expected = abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOverflow.selector, maxFeeBps);

        vm.startPrank(operator);
        vm.expectRevert(expected);
        escrow.authorize(info, 1e6, address(erc3009Collector), "");
        vm.expectRevert(expected);
        escrow.charge(info, 1e6, address(erc3009Collector), "", minFeeBps, feeReceiver);
        vm.stopPrank();
    }

    function testFuzz_authorize_expiryOrdering(uint256 preOffset, uint256 authOffset, uint256 refundOffset) public {
        uint48 now_ = uint48(block.timestamp);
        uint48 pre = now_ + uint48(bound(preOffset, 1, 100));
        uint48 auth = now_ + uint48(bound(authOffset, 0, 100));
        uint48 ref = now_ + uint48(bound(refundOffset, 0, 100));
        AuthCaptureEscrow.PaymentInfo memory info = _info(1e6, pre, auth, ref, 0, 100, feeReceiver, 0);
        usdc.mint(payer, info.maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);

        bool ordered = pre <= auth && auth <= ref;
        if (!ordered) {
            vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.InvalidExpiries.selector, pre, auth, ref));
        }
        vm.prank(operator);
        escrow.authorize(info, 1e6, address(erc3009Collector), signature);
        _assertState(escrow.getHash(info), ordered, ordered ? 1e6 : 0, 0);
    }

    function testFuzz_authorize_aroundPreApprovalExpiry(uint48 preApprovalExpiry, uint256 delta) public {
        preApprovalExpiry = uint48(bound(preApprovalExpiry, block.timestamp + 3, type(uint48).max - 3));
        uint48 timestamp = uint48(bound(delta, preApprovalExpiry - 3, preApprovalExpiry + 3));
        AuthCaptureEscrow.PaymentInfo memory info =
            _info(1e6, preApprovalExpiry, type(uint48).max, type(uint48).max, 0, 0, address(0), 0);
        usdc.mint(payer, info.maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);
        vm.warp(timestamp);

        if (timestamp >= preApprovalExpiry) {
            vm.expectRevert(
                abi.encodeWithSelector(AuthCaptureEscrow.AfterPreApprovalExpiry.selector, timestamp, preApprovalExpiry)
            );
        }
        vm.prank(operator);
        escrow.authorize(info, 1e6, address(erc3009Collector), signature);
        assertEq(usdc.balanceOf(_store()), timestamp < preApprovalExpiry ? 1e6 : 0);
    }

    /// @dev Every validation input at once; a model of the spec's check order predicts the outcome.
    function testFuzz_authorize_matchesSpecModel(SpecModelSeeds memory seeds, uint256 salt) public {
        (AuthCaptureEscrow.PaymentInfo memory info, uint256 amount) = _specModelCase(seeds, feeReceiver, salt);
        uint120 maxAmount = info.maxAmount;
        usdc.mint(payer, maxAmount);
        bytes memory signature = info.preApprovalExpiry > block.timestamp ? _signERC3009(info, PAYER_PK) : new bytes(65);

        bytes memory expected = _first(_amountError(amount), _paymentError(info, amount));
        if (expected.length != 0) vm.expectRevert(expected);
        vm.prank(operator);
        escrow.authorize(info, amount, address(erc3009Collector), signature);

        bool ok = expected.length == 0;
        assertEq(usdc.balanceOf(_store()), ok ? amount : 0, "store");
        assertEq(usdc.balanceOf(payer), ok ? maxAmount - amount : maxAmount, "payer");
        _assertState(escrow.getHash(info), ok, ok ? amount : 0, 0);
    }

    function testFuzz_authorize_onlyOnce(uint120 maxAmount, uint256 amount, uint256 secondAmount) public {
        maxAmount = uint120(bound(maxAmount, 1, UINT120_MAX));
        amount = bound(amount, 1, maxAmount);
        secondAmount = bound(secondAmount, 1, maxAmount);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, maxAmount);
        bytes32 h = _authorizeSigned(info, amount);

        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, h));
        escrow.authorize(info, secondAmount, address(erc3009Collector), "");
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, h));
        escrow.charge(info, secondAmount, address(erc3009Collector), "", info.minFeeBps, feeReceiver);
        // Even after the hold is voided the payment stays used.
        escrow.void(info);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, h));
        escrow.authorize(info, secondAmount, address(erc3009Collector), "");
        vm.stopPrank();
        _assertState(h, true, 0, 0);
    }

    /*//////////////////////////////////////////////////////////////
                                  CHARGE
    //////////////////////////////////////////////////////////////*/

    function testFuzz_charge_distributesExactly(uint120 maxAmount, uint256 amount, FeeSplitSeeds memory seeds) public {
        // With no fixed receiver the operator picks one; the fee goes wherever it says.
        (AuthCaptureEscrow.PaymentInfo memory info, uint16 feeBps, address chosenFeeReceiver) =
            _feeSplitCase(maxAmount, seeds);
        maxAmount = info.maxAmount;
        amount = bound(amount, 1, maxAmount);
        usdc.mint(payer, maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);

        vm.prank(operator);
        escrow.charge(info, amount, address(erc3009Collector), signature, feeBps, chosenFeeReceiver);

        uint256 fee = _fee(amount, feeBps);
        assertEq(usdc.balanceOf(chosenFeeReceiver), fee, "fee receiver gets amount*feeBps/10000");
        assertEq(usdc.balanceOf(receiver), amount - fee, "receiver gets the remainder");
        assertEq(usdc.balanceOf(payer), maxAmount - amount, "payer pays exactly amount");
        assertEq(usdc.balanceOf(_store()), 0, "nothing stays in the store");
        _assertState(escrow.getHash(info), true, 0, amount);
    }

    function testFuzz_charge_zeroFeeNeedsNoFeeReceiver(uint120 maxAmount, uint256 amount) public {
        maxAmount = uint120(bound(maxAmount, 1, UINT120_MAX));
        amount = bound(amount, 1, maxAmount);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, maxAmount);
        info.feeReceiver = address(0);
        usdc.mint(payer, maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);

        vm.prank(operator);
        escrow.charge(info, amount, address(erc3009Collector), signature, 0, address(0));
        assertEq(usdc.balanceOf(receiver), amount);
        assertEq(usdc.balanceOf(address(0)), 0);
    }

    function testFuzz_charge_feeOutOfRange(uint16 minFeeBps, uint16 maxFeeBps, uint16 feeBps) public {
        AuthCaptureEscrow.PaymentInfo memory info = _validInfo(1e6, minFeeBps, maxFeeBps);
        vm.assume(feeBps < info.minFeeBps || feeBps > info.maxFeeBps);
        usdc.mint(payer, info.maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);

        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOutOfRange.selector, feeBps, info.minFeeBps, info.maxFeeBps)
        );
        vm.prank(operator);
        escrow.charge(info, 1e6, address(erc3009Collector), signature, feeBps, feeReceiver);
    }

    function testFuzz_charge_feeReceiverRules(uint16 feeBps, address attempted, bool fixedFeeReceiver) public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        info.minFeeBps = 0;
        info.maxFeeBps = MAX_BPS;
        if (!fixedFeeReceiver) info.feeReceiver = address(0);
        feeBps = uint16(bound(feeBps, 0, MAX_BPS));
        usdc.mint(payer, info.maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);

        bytes memory expected = _feeError(info, feeBps, attempted);
        if (expected.length != 0) vm.expectRevert(expected);
        vm.prank(operator);
        escrow.charge(info, 1e6, address(erc3009Collector), signature, feeBps, attempted);
        if (expected.length == 0 && attempted != receiver) {
            assertEq(usdc.balanceOf(attempted), _fee(1e6, feeBps));
        }
    }

    /// @dev One charge attempt of the model test, kept in memory to spare the stack.
    struct ChargeCase {
        AuthCaptureEscrow.PaymentInfo info;
        uint256 amount;
        uint16 feeBps;
        address chosenFeeReceiver;
        bytes32 paymentInfoHash;
        bytes expected;
    }

    /// @dev Payment validation, then fee validation, then PaymentAlreadyCollected, as the spec orders them.
    function testFuzz_charge_matchesSpecModel(
        SpecModelSeeds memory seeds,
        uint256 feeSeed,
        uint8 feeReceiverKind,
        bool alreadyCollected
    ) public {
        ChargeCase memory c;
        (c.info, c.amount) = _specModelCase(seeds, feeReceiverKind % 2 == 0 ? feeReceiver : address(0), 0);
        c.feeBps = _pickFee(c.info, feeSeed);
        uint8 choice = feeReceiverKind % 3;
        c.chosenFeeReceiver = choice == 0 ? c.info.feeReceiver : (choice == 1 ? address(0) : otherFeeReceiver);
        c.paymentInfoHash = escrow.getHash(c.info);
        if (alreadyCollected) {
            // Mark the payment collected the way a prior authorize would (written to storage
            // directly, as the fuzzed expiries may not allow a real one); see test_paymentStateSlotLayout.
            vm.store(address(escrow), keccak256(abi.encode(c.paymentInfoHash, uint256(0))), bytes32(uint256(1)));
        }
        c.expected = _first(
            _first(_amountError(c.amount), _paymentError(c.info, c.amount)),
            _first(
                _feeError(c.info, c.feeBps, c.chosenFeeReceiver),
                alreadyCollected
                    ? abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, c.paymentInfoHash)
                    : bytes("")
            )
        );
        _runCharge(c);
    }

    function _runCharge(ChargeCase memory c) internal {
        uint256 maxAmount = c.info.maxAmount;
        usdc.mint(payer, maxAmount);
        bytes memory signature =
            c.info.preApprovalExpiry > block.timestamp ? _signERC3009(c.info, PAYER_PK) : new bytes(65);

        if (c.expected.length != 0) vm.expectRevert(c.expected);
        vm.prank(operator);
        escrow.charge(c.info, c.amount, address(erc3009Collector), signature, c.feeBps, c.chosenFeeReceiver);

        if (c.expected.length == 0) {
            uint256 fee = _fee(c.amount, c.feeBps);
            assertEq(usdc.balanceOf(receiver), c.amount - fee, "receiver");
            if (c.chosenFeeReceiver != address(0)) assertEq(usdc.balanceOf(c.chosenFeeReceiver), fee, "fee receiver");
            assertEq(usdc.balanceOf(payer), maxAmount - c.amount, "payer");
            _assertState(c.paymentInfoHash, true, 0, c.amount);
        } else {
            assertEq(usdc.balanceOf(payer), maxAmount, "payer untouched");
            assertEq(usdc.balanceOf(receiver), 0, "receiver untouched");
        }
    }

    function test_paymentStateSlotLayout() public {
        // Guards the vm.store shortcut above: slot 0 mapping, hasCollectedPayment in the low byte.
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 5);
        bytes32 h = _authorizeSigned(info, 3);
        bytes32 raw = vm.load(address(escrow), keccak256(abi.encode(h, uint256(0))));
        assertEq(uint256(raw), 1 | (3 << 8));
    }

    /*//////////////////////////////////////////////////////////////
                                 HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev The fuzzed inputs of a spec-model case (see `_specModelCase`).
    struct SpecModelSeeds {
        uint8 amountKind;
        uint256 amountSeed;
        uint120 maxAmount;
        uint256 expirySeed;
        uint16 minFeeBps;
        uint16 maxFeeBps;
    }

    /// @dev A payment of the spec-model tests, valid or not, and the amount to try on it: maxAmount
    ///      bounded to [1, uint120 max], the amount from `_pickAmount`, the fee range from
    ///      `_setFeeRange`, the expiries from `_setJitteredExpiries`, fee receiver and salt as given.
    function _specModelCase(SpecModelSeeds memory seeds, address feeReceiver_, uint256 salt)
        internal
        view
        returns (AuthCaptureEscrow.PaymentInfo memory info, uint256 amount)
    {
        uint120 maxAmount = uint120(bound(seeds.maxAmount, 1, UINT120_MAX));
        amount = _pickAmount(seeds.amountKind, seeds.amountSeed, maxAmount);
        info = _info(maxAmount, 0, 0, 0, 0, 0, feeReceiver_, salt);
        _setFeeRange(info, seeds.minFeeBps, seeds.maxFeeBps);
        _setJitteredExpiries(info, seeds.expirySeed);
    }

    /// @dev 0: zero; 1 and 4: within [1, maxAmount]; 2: above maxAmount within uint120; 3: above uint120.
    function _pickAmount(uint8 kind, uint256 seed, uint120 maxAmount) internal pure returns (uint256) {
        kind %= 5;
        if (kind == 0) return 0;
        if (kind == 2 && maxAmount < UINT120_MAX) return bound(seed, uint256(maxAmount) + 1, UINT120_MAX);
        if (kind == 3) return bound(seed, UINT120_MAX + 1, type(uint256).max);
        return bound(seed, 1, maxAmount);
    }

    /// @dev Half the time inside the payment's range (when it has one), otherwise anywhere in [0, 11000].
    function _pickFee(AuthCaptureEscrow.PaymentInfo memory info, uint256 seed) internal pure returns (uint16) {
        if (seed % 2 == 0 && info.minFeeBps <= info.maxFeeBps) {
            return uint16(bound(seed >> 1, info.minFeeBps, info.maxFeeBps));
        }
        return uint16(bound(seed >> 1, 0, 11_000));
    }

    /// @dev Half the time valid expiries (future, ordered, possibly equal); otherwise expiries a few
    ///      seconds either side of now and of each other: ordered or not, past or future.
    function _setJitteredExpiries(AuthCaptureEscrow.PaymentInfo memory info, uint256 seed) internal view {
        uint48 now_ = uint48(block.timestamp);
        if ((seed >> 24) % 2 == 0) {
            info.preApprovalExpiry = now_ + 1 + uint48(seed % 3);
            info.authorizationExpiry = info.preApprovalExpiry + uint48((seed >> 8) % 3);
            info.refundExpiry = info.authorizationExpiry + uint48((seed >> 16) % 3);
        } else {
            info.preApprovalExpiry = now_ - 3 + uint48(seed % 7);
            info.authorizationExpiry = info.preApprovalExpiry - 3 + uint48((seed >> 8) % 7);
            info.refundExpiry = info.authorizationExpiry - 3 + uint48((seed >> 16) % 7);
        }
    }

    /// @dev Half the time a valid range (min <= max <= 10000), otherwise both anywhere in [0, 20000]
    ///      (so overflow, inverted range, and both at once all come up often).
    function _setFeeRange(AuthCaptureEscrow.PaymentInfo memory info, uint16 minSeed, uint16 maxSeed) internal pure {
        if (minSeed % 2 == 0) {
            info.maxFeeBps = uint16(bound(maxSeed, 0, MAX_BPS));
            info.minFeeBps = uint16(bound(minSeed >> 1, 0, info.maxFeeBps));
        } else {
            info.minFeeBps = uint16(bound(minSeed >> 1, 0, 20_000));
            info.maxFeeBps = uint16(bound(maxSeed, 0, 20_000));
        }
    }
}
