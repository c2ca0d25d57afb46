// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibClone} from "solady/utils/LibClone.sol";

import {EscrowHelpers} from "../base/EscrowHelpers.sol";
import {flipPaymentInfoBit} from "../base/PaymentInfoBits.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenStore} from "../../contracts/TokenStore.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";
import {MisdeliveringCollector, StoreRaidingCollector} from "../mocks/MockCollectors.sol";

/// @notice Collectors and TokenStores as attack surface: collectors that deliver too little or too
///         much, collectors of the wrong type, collectors and strangers calling a TokenStore
///         directly, strangers calling collectors directly, and one operator (or a payer) trying to
///         reach funds held for another operator's payments.
contract CollectorStoreSecurityTest is EscrowHelpers {
    address internal otherOperator = makeAddr("otherOperator");

    MisdeliveringCollector internal paymentMisdeliverer;
    MisdeliveringCollector internal refundMisdeliverer;
    StoreRaidingCollector internal raider;

    function setUp() public override {
        super.setUp();
        paymentMisdeliverer = new MisdeliveringCollector(address(escrow), TokenCollector.CollectorType.Payment);
        refundMisdeliverer = new MisdeliveringCollector(address(escrow), TokenCollector.CollectorType.Refund);
        raider = new StoreRaidingCollector(address(escrow));
        usdc.mint(address(paymentMisdeliverer), type(uint128).max);
        usdc.mint(address(refundMisdeliverer), type(uint128).max);
    }

    function _stateOf(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes memory) {
        (bool c, uint120 cap, uint120 ref) = escrow.paymentState(escrow.getHash(info));
        return abi.encode(c, cap, ref);
    }

    /// @dev A payment of `operator_` from the fixture payer, authorized for 10e6 and 4e6 captured.
    function _heldPaymentOf(address operator_, uint256 salt)
        internal
        returns (AuthCaptureEscrow.PaymentInfo memory info)
    {
        info = _paymentInfo(payer, 10e6);
        info.operator = operator_;
        info.salt = salt;
        _authorizeAndCapture(info, 10e6, 4e6, 100);
    }

    /*//////////////////////////////////////////////////////////////
                        UNDER- AND OVER-DELIVERY
    //////////////////////////////////////////////////////////////*/

    function test_honestMockCollectorWorks() public {
        // Control for the misdelivery tests: exact delivery is accepted.
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 10e6);
        vm.prank(operator);
        escrow.authorize(info, 7e6, address(paymentMisdeliverer), "");
        assertEq(usdc.balanceOf(escrow.getTokenStore(operator)), 7e6);
    }

    function testFuzz_underDelivery_rejected(uint120 amount, uint256 shortfall, bool useCharge) public {
        amount = uint120(bound(amount, 1, type(uint120).max));
        paymentMisdeliverer.setDelivery(0, bound(shortfall, 1, amount));
        _assertMisdeliveredPaymentRejected(amount, useCharge);
    }

    function testFuzz_overDelivery_rejected(uint120 amount, uint256 surplus, bool useCharge) public {
        amount = uint120(bound(amount, 1, type(uint120).max));
        paymentMisdeliverer.setDelivery(bound(surplus, 1, type(uint120).max), 0);
        _assertMisdeliveredPaymentRejected(amount, useCharge);
    }

    /// @dev Charging or authorizing `amount` through the (armed) misdelivering collector fails
    ///      with `TokenCollectionFailed` and leaves the payment untouched.
    function _assertMisdeliveredPaymentRejected(uint120 amount, bool useCharge) internal {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, amount);
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        vm.prank(operator);
        if (useCharge) escrow.charge(info, amount, address(paymentMisdeliverer), "", 0, feeReceiver);
        else escrow.authorize(info, amount, address(paymentMisdeliverer), "");
        assertEq(_stateOf(info), abi.encode(false, 0, 0));
    }

    function testFuzz_refundMisdelivery_rejected(uint256 refundAmount, uint256 off, bool over) public {
        AuthCaptureEscrow.PaymentInfo memory info = _heldPaymentOf(operator, 1);
        refundAmount = bound(refundAmount, 1, 4e6);
        if (over) refundMisdeliverer.setDelivery(bound(off, 1, 1e30), 0);
        else refundMisdeliverer.setDelivery(0, bound(off, 1, refundAmount));
        uint256 payerBefore = usdc.balanceOf(payer);

        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        vm.prank(operator);
        escrow.refund(info, refundAmount, address(refundMisdeliverer), "");
        assertEq(_stateOf(info), abi.encode(true, 6e6, 4e6));
        assertEq(usdc.balanceOf(payer), payerBefore);
    }

    function test_overDeliveryCannotFundAnotherPaymentsHold() public {
        // An operator with a legitimate hold cannot "top up" the store to cover a second,
        // unbacked authorization: each collection must add exactly its own amount.
        AuthCaptureEscrow.PaymentInfo memory first = _heldPaymentOf(operator, 2);
        AuthCaptureEscrow.PaymentInfo memory second = _paymentInfo(payer, 10e6);
        second.salt = 3;
        paymentMisdeliverer.setDelivery(0, 10e6); // delivers nothing
        vm.expectRevert(AuthCaptureEscrow.TokenCollectionFailed.selector);
        vm.prank(operator);
        escrow.authorize(second, 6e6, address(paymentMisdeliverer), "");
        assertEq(_stateOf(first), abi.encode(true, 6e6, 4e6));
    }

    /*//////////////////////////////////////////////////////////////
                              COLLECTOR TYPE
    //////////////////////////////////////////////////////////////*/

    function test_refundCollectorCannotCollectPayments() public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 10e6);
        usdc.mint(operator, 10e6);
        vm.prank(operator);
        usdc.approve(address(refundCollector), type(uint256).max);
        address[2] memory wrong = [address(refundCollector), address(refundMisdeliverer)];
        for (uint256 i; i < wrong.length; ++i) {
            vm.startPrank(operator);
            vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
            escrow.authorize(info, 1e6, wrong[i], "");
            vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
            escrow.charge(info, 1e6, wrong[i], "", 0, feeReceiver);
            vm.stopPrank();
        }
        assertEq(usdc.balanceOf(operator), 10e6, "nothing pulled");
    }

    function test_paymentCollectorsCannotFundRefunds() public {
        AuthCaptureEscrow.PaymentInfo memory info = _heldPaymentOf(operator, 4);
        address[3] memory wrong =
            [address(erc3009Collector), address(preApprovalCollector), address(paymentMisdeliverer)];
        for (uint256 i; i < wrong.length; ++i) {
            vm.expectRevert(AuthCaptureEscrow.InvalidCollectorForOperation.selector);
            vm.prank(operator);
            escrow.refund(info, 1e6, wrong[i], "");
        }
        assertEq(_stateOf(info), abi.encode(true, 6e6, 4e6));
    }

    /*//////////////////////////////////////////////////////////////
                     DIRECT CALLS TO STORES AND COLLECTORS
    //////////////////////////////////////////////////////////////*/

    function test_collectorCallingItsStoreDirectly_reverts() public {
        _heldPaymentOf(operator, 5); // the store is deployed and holds 6e6
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 10e6);
        info.salt = 6;
        for (uint256 withFee; withFee < 2; ++withFee) {
            raider.setTarget(address(0), withFee == 1);
            vm.expectRevert(TokenStore.OnlyAuthCaptureEscrow.selector);
            vm.prank(operator);
            escrow.authorize(info, 1e6, address(raider), "");
        }
        assertEq(usdc.balanceOf(escrow.getTokenStore(operator)), 6e6);
        assertEq(usdc.balanceOf(address(raider)), 0);
    }

    function test_collectorCallingAnotherOperatorsStore_reverts() public {
        _heldPaymentOf(otherOperator, 7);
        address victimStore = escrow.getTokenStore(otherOperator);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 10e6);
        info.salt = 8;
        raider.setTarget(victimStore, false);

        vm.expectRevert(TokenStore.OnlyAuthCaptureEscrow.selector);
        vm.prank(operator);
        escrow.authorize(info, 6e6, address(raider), "");
        assertEq(usdc.balanceOf(victimStore), 6e6);
    }

    function testFuzz_strangerCallingTokenStore_reverts(address stranger, uint256 amount, bool implementation) public {
        vm.assume(stranger != address(escrow));
        _heldPaymentOf(operator, 9);
        address store = implementation ? escrow.tokenStoreImplementation() : escrow.getTokenStore(operator);
        uint256 balanceBefore = usdc.balanceOf(store);

        vm.startPrank(stranger);
        vm.expectRevert(TokenStore.OnlyAuthCaptureEscrow.selector);
        TokenStore(store).sendTokens(address(usdc), stranger, amount);
        vm.expectRevert(TokenStore.OnlyAuthCaptureEscrow.selector);
        TokenStore(store).sendTokensWithFee(address(usdc), stranger, amount, stranger, amount);
        vm.stopPrank();
        assertEq(usdc.balanceOf(store), balanceBefore);
    }

    function test_partiesCallingTokenStore_revert() public {
        // Not even the operator who owns the store, nor the payer or receiver, may call it.
        _heldPaymentOf(operator, 10);
        TokenStore store = TokenStore(escrow.getTokenStore(operator));
        address[5] memory parties = [operator, payer, receiver, feeReceiver, address(erc3009Collector)];
        for (uint256 i; i < parties.length; ++i) {
            vm.startPrank(parties[i]);
            vm.expectRevert(TokenStore.OnlyAuthCaptureEscrow.selector);
            store.sendTokens(address(usdc), parties[i], 1);
            vm.expectRevert(TokenStore.OnlyAuthCaptureEscrow.selector);
            store.sendTokensWithFee(address(usdc), parties[i], 1, parties[i], 1);
            vm.stopPrank();
        }
        assertEq(store.authCaptureEscrow(), address(escrow));
    }

    function testFuzz_strangerCallingCollector_reverts(address stranger) public {
        vm.assume(stranger != address(escrow));
        // A valid, signed, unused authorization is sitting there: only the escrow may use it.
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 10e6);
        usdc.mint(payer, 10e6);
        bytes memory signature = _signERC3009(info, PAYER_PK);
        vm.prank(payer);
        preApprovalCollector.preApprove(info);
        usdc.mint(operator, 10e6);
        vm.prank(operator);
        usdc.approve(address(refundCollector), type(uint256).max);
        address store = escrow.getTokenStore(operator);

        vm.startPrank(stranger);
        vm.expectRevert(TokenCollector.OnlyAuthCaptureEscrow.selector);
        erc3009Collector.collectTokens(info, stranger, 10e6, signature);
        vm.expectRevert(TokenCollector.OnlyAuthCaptureEscrow.selector);
        preApprovalCollector.collectTokens(info, store, 10e6, "");
        vm.expectRevert(TokenCollector.OnlyAuthCaptureEscrow.selector);
        refundCollector.collectTokens(info, stranger, 10e6, "");
        vm.stopPrank();
        assertEq(usdc.balanceOf(payer), 10e6);
        assertEq(usdc.balanceOf(operator), 10e6);
    }

    /*//////////////////////////////////////////////////////////////
                          OPERATOR ISOLATION
    //////////////////////////////////////////////////////////////*/

    function test_storesAreDistinctClonesOfTheImplementation() public {
        _heldPaymentOf(operator, 11);
        _heldPaymentOf(otherOperator, 12);
        address implementation = escrow.tokenStoreImplementation();
        address a = escrow.getTokenStore(operator);
        address b = escrow.getTokenStore(otherOperator);
        assertNotEq(a, b);
        // CREATE2 by the escrow, salt = the operator, init code = Solady's minimal proxy of the implementation.
        bytes32 initCodeHash = LibClone.initCodeHash(implementation);
        assertEq(a, vm.computeCreate2Address(bytes32(bytes20(operator)), initCodeHash, address(escrow)));
        assertEq(b, vm.computeCreate2Address(bytes32(bytes20(otherOperator)), initCodeHash, address(escrow)));
        address plainClone = LibClone.clone(implementation);
        assertEq(a.code, plainClone.code, "a plain minimal proxy of the implementation");
        assertEq(b.code, plainClone.code);
        assertEq(TokenStore(a).authCaptureEscrow(), address(escrow));
    }

    function test_operatorCannotTouchAnotherOperatorsPayment() public {
        AuthCaptureEscrow.PaymentInfo memory victim = _heldPaymentOf(operator, 13);
        _fundRefunds(10e6);
        usdc.mint(otherOperator, 10e6);
        vm.prank(otherOperator);
        usdc.approve(address(refundCollector), type(uint256).max);
        bytes memory wrongSender =
            abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, otherOperator, operator);

        vm.startPrank(otherOperator);
        _assertHeldOperationsRevert(victim, wrongSender);
        AuthCaptureEscrow.CaptureRequest[] memory requests = new AuthCaptureEscrow.CaptureRequest[](1);
        requests[0] = AuthCaptureEscrow.CaptureRequest(victim, 1e6, 100, feeReceiver);
        vm.expectRevert(wrongSender);
        escrow.captureBatch(requests);
        AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](1);
        infos[0] = victim;
        vm.expectRevert(wrongSender);
        escrow.voidBatch(infos);

        // Re-labelling the payment as its own makes it a different (empty) payment.
        AuthCaptureEscrow.PaymentInfo memory forged = abi.decode(abi.encode(victim), (AuthCaptureEscrow.PaymentInfo)); // a copy, not an alias
        forged.operator = otherOperator;
        bytes32 forgedHash = escrow.getHash(forged);
        vm.expectRevert(
            abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, forgedHash, 0, 1e6)
        );
        escrow.capture(forged, 1e6, 100, feeReceiver);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, forgedHash));
        escrow.void(forged);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.RefundExceedsCapture.selector, 1e6, 0));
        escrow.refund(forged, 1e6, address(refundCollector), "");
        vm.stopPrank();

        assertEq(usdc.balanceOf(escrow.getTokenStore(operator)), 6e6, "victim store untouched");
        assertEq(_stateOf(victim), abi.encode(true, 6e6, 4e6));
    }

    function test_eachOperatorPaysOutOfItsOwnStoreOnly() public {
        AuthCaptureEscrow.PaymentInfo memory mine = _heldPaymentOf(otherOperator, 14);
        _heldPaymentOf(operator, 15);
        address myStore = escrow.getTokenStore(otherOperator);
        address theirStore = escrow.getTokenStore(operator);

        vm.startPrank(otherOperator);
        escrow.capture(mine, 2e6, 100, feeReceiver);
        escrow.void(mine);
        vm.stopPrank();
        assertEq(usdc.balanceOf(myStore), 0);
        assertEq(usdc.balanceOf(theirStore), 6e6, "other operator's store untouched");

        // With its own store empty, the operator has nothing left to move anywhere.
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, escrow.getHash(mine)));
        vm.prank(otherOperator);
        escrow.void(mine);
    }

    /// @dev A payer (or anyone) altering any single field of a held payment gets a different,
    ///      empty payment: the hold cannot be reclaimed or voided through it.
    function testFuzz_forgedPaymentInfoReachesNoFunds(uint256 field, uint256 bitSeed) public {
        AuthCaptureEscrow.PaymentInfo memory real = _heldPaymentOf(operator, 16);
        _heldPaymentOf(otherOperator, 17);
        field = bound(field, 0, 11);
        AuthCaptureEscrow.PaymentInfo memory forged = flipPaymentInfoBit(real, field, bitSeed);
        bytes32 forgedHash = escrow.getHash(forged);
        assertNotEq(forgedHash, escrow.getHash(real));
        vm.warp(real.authorizationExpiry);

        vm.prank(forged.payer);
        if (forged.authorizationExpiry > block.timestamp) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    AuthCaptureEscrow.BeforeAuthorizationExpiry.selector,
                    uint48(block.timestamp),
                    forged.authorizationExpiry
                )
            );
        } else {
            vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, forgedHash));
        }
        escrow.reclaim(forged);

        vm.prank(forged.operator);
        vm.expectRevert(abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, forgedHash));
        escrow.void(forged);

        assertEq(usdc.balanceOf(escrow.getTokenStore(operator)), 6e6);
        assertEq(usdc.balanceOf(escrow.getTokenStore(otherOperator)), 6e6);
    }
}
