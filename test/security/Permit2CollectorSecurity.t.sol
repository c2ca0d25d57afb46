// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowHelpers} from "../base/EscrowHelpers.sol";
import {IPermit2Testing, Permit2Fixture} from "../base/Permit2Fixture.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {Permit2PaymentCollector} from "../../contracts/collectors/Permit2PaymentCollector.sol";
import {ISignatureTransfer} from "../../contracts/interfaces/ISignatureTransfer.sol";
import {CallbackToken, NoReturnToken, RevertingToken} from "../mocks/MockTokens.sol";
import {ReentrantActor} from "../mocks/ReentrantActor.sol";

/// @notice What a payer's Permit2 signature can and cannot be used for: only by our collector,
///         only for the one payment it was made for (operator, receiver, amounts, fees, expiries
///         and salt all bound through the nonce), only from the payer who signed it, only once.
///         And the tokens Permit2 moves for us: non-standard ones behave as Permit2 makes them,
///         a token hook cannot re-enter the escrow in the middle of a Permit2 pull.
contract Permit2CollectorSecurityTest is EscrowHelpers, Permit2Fixture {
    uint256 internal constant OTHER_PAYER_PK = 0xB0B0;

    Permit2PaymentCollector internal permit2Collector;
    address internal attacker = makeAddr("attacker");

    function setUp() public override {
        super.setUp();
        _installPermit2();
        permit2Collector = new Permit2PaymentCollector(address(escrow), PERMIT2, address(multicall3));
        vm.prank(payer);
        usdc.approve(PERMIT2, type(uint256).max);
        usdc.mint(payer, 1_000e6);
    }

    function _terms(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (PermitTerms memory) {
        return _permit2Terms(info, address(permit2Collector), address(escrow));
    }

    function _sig(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes memory) {
        return _signPermit2(_terms(info), PAYER_PK);
    }

    function _invalidSigner() internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IPermit2Testing.InvalidSigner.selector);
    }

    /*//////////////////////////////////////////////////////////////
                       THE SIGNATURE IS BOUND TO ONE USE
    //////////////////////////////////////////////////////////////*/

    function test_signatureIsUselessDirectlyAtPermit2() public {
        // The signature names the collector as spender: anyone else presenting it to Permit2,
        // with the very terms it signs, is refused, and nothing moves.
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 100e6);
        PermitTerms memory t = _terms(info);
        ISignatureTransfer.PermitTransferFrom memory permit = ISignatureTransfer.PermitTransferFrom({
            permitted: ISignatureTransfer.TokenPermissions({token: t.token, amount: t.amount}),
            nonce: t.nonce,
            deadline: t.deadline
        });
        bytes memory sig = _sig(info);
        uint256 before = usdc.balanceOf(payer);
        vm.prank(attacker);
        vm.expectRevert(_invalidSigner());
        ISignatureTransfer(PERMIT2)
            .permitTransferFrom(
                permit, ISignatureTransfer.SignatureTransferDetails({to: attacker, requestedAmount: 1}), payer, sig
            );
        assertEq(usdc.balanceOf(payer), before);
    }

    /// @dev Every field of the payment except the payer is in the nonce: changing any one of them
    ///      (as a front-runner redirecting the payment would) voids the signature.
    function testFuzz_signatureCannotBeRedirected(uint8 field, address replacement, uint256 salt) public {
        AuthCaptureEscrow.PaymentInfo memory signed = _paymentInfo(payer, 100e6);
        signed.salt = salt;
        bytes memory sig = _sig(signed);
        AuthCaptureEscrow.PaymentInfo memory forged = _paymentInfo(payer, 100e6);
        forged.salt = salt;
        field = uint8(bound(field, 0, 7));
        vm.assume(replacement != address(0));
        if (field == 0) {
            vm.assume(replacement != operator);
            forged.operator = replacement;
        } else if (field == 1) {
            vm.assume(replacement != receiver);
            forged.receiver = replacement;
        } else if (field == 2) {
            vm.assume(replacement != feeReceiver);
            forged.feeReceiver = replacement;
        } else if (field == 3) {
            forged.maxFeeBps = 99;
        } else if (field == 4) {
            forged.authorizationExpiry += 1;
        } else if (field == 5) {
            forged.refundExpiry += 1;
        } else if (field == 6) {
            forged.salt = salt ^ 1;
        } else {
            forged.minFeeBps = 1;
        }
        uint256 before = usdc.balanceOf(payer);
        vm.prank(forged.operator);
        vm.expectRevert(_invalidSigner());
        escrow.authorize(forged, 10e6, address(permit2Collector), sig);
        assertEq(usdc.balanceOf(payer), before);
    }

    function test_signatureOfOnePayerCannotChargeAnother() public {
        // The nonce is payer-agnostic, but Permit2 checks the signature against the payment's payer.
        address otherPayer = vm.addr(OTHER_PAYER_PK);
        usdc.mint(otherPayer, 100e6);
        vm.prank(otherPayer);
        usdc.approve(PERMIT2, type(uint256).max);
        AuthCaptureEscrow.PaymentInfo memory mine = _paymentInfo(payer, 100e6);
        AuthCaptureEscrow.PaymentInfo memory theirs = _paymentInfo(otherPayer, 100e6);
        assertEq(_payerAgnosticHash(mine), _payerAgnosticHash(theirs), "same nonce");
        bytes memory sig = _sig(mine);
        _expectRevertFrom(operator, _invalidSigner());
        escrow.authorize(theirs, 10e6, address(permit2Collector), sig);
        assertEq(usdc.balanceOf(otherPayer), 100e6);
    }

    function test_signatureForAnotherEscrowsCollectorIsRefused() public {
        // A second deployment (another escrow, its own collector) cannot use our payer's signature.
        AuthCaptureEscrow other = new AuthCaptureEscrow();
        Permit2PaymentCollector otherCollector =
            new Permit2PaymentCollector(address(other), PERMIT2, address(multicall3));
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 100e6);
        bytes memory sig = _sig(info);
        _expectRevertFrom(operator, _invalidSigner());
        other.authorize(info, 10e6, address(otherCollector), sig);
    }

    function test_operatorCannotTakeMoreThanSigned() public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 100e6);
        bytes memory sig = _sig(info);
        _expectRevertFrom(
            operator, abi.encodeWithSelector(AuthCaptureEscrow.ExceedsMaxAmount.selector, 100e6 + 1, 100e6)
        );
        escrow.charge(info, 100e6 + 1, address(permit2Collector), sig, 0, feeReceiver);
    }

    function test_signatureUsableOnceEvenAcrossEntryPoints() public {
        // authorize, then the same signature for a charge of the same payment: the escrow refuses,
        // and Permit2 would refuse again (the nonce is spent).
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 100e6);
        bytes memory sig = _sig(info);
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(permit2Collector), sig);
        bytes32 h = escrow.getHash(info);
        _expectRevertFrom(operator, abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, h));
        escrow.charge(info, 10e6, address(permit2Collector), sig, 0, feeReceiver);
        assertTrue(_permit2NonceUsed(payer, uint256(_payerAgnosticHash(info))));
    }

    function test_collectorKeepsNothingAndHoldsNoApproval() public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 100e6);
        bytes memory sig = _sig(info);
        vm.prank(operator);
        escrow.charge(info, 70e6, address(permit2Collector), sig, 100, feeReceiver);
        assertEq(usdc.balanceOf(address(permit2Collector)), 0);
        assertEq(usdc.allowance(address(permit2Collector), PERMIT2), 0);
        assertEq(usdc.allowance(payer, address(permit2Collector)), 0, "the payer approves Permit2 only");
    }

    /*//////////////////////////////////////////////////////////////
                        NON-STANDARD TOKENS VIA PERMIT2
    //////////////////////////////////////////////////////////////*/

    function test_noReturnToken_fullLifecycleThroughPermit2() public {
        NoReturnToken token = new NoReturnToken();
        _fundPayerAndOperator(address(token), 50e6, 5e6, PERMIT2);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 30e6);
        info.token = address(token);
        bytes memory sig = _sig(info);
        vm.startPrank(operator);
        escrow.authorize(info, 30e6, address(permit2Collector), sig);
        escrow.capture(info, 20e6, 100, feeReceiver);
        escrow.refund(info, 5e6, address(refundCollector), "");
        escrow.void(info);
        vm.stopPrank();
        assertEq(token.balanceOf(payer), 50e6 - 30e6 + 5e6 + 10e6);
        assertEq(token.balanceOf(receiver), 19.8e6);
        assertEq(token.balanceOf(feeReceiver), 0.2e6);
        assertEq(token.balanceOf(_store()), 0);
    }

    function test_revertingToken_pullRefusedAsPermit2ReportsIt() public {
        // Permit2 (solmate SafeTransferLib) replaces the token's revert data by its own message;
        // the reference collector behaves the same (see ReferenceDifferential).
        RevertingToken token = new RevertingToken();
        _fundPayerAndOperator(address(token), 50e6, 0, PERMIT2);
        token.setReverts(false, true);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 30e6);
        info.token = address(token);
        bytes memory sig = _sig(info);
        _expectRevertFrom(operator, abi.encodeWithSignature("Error(string)", "TRANSFER_FROM_FAILED"));
        escrow.authorize(info, 30e6, address(permit2Collector), sig);
        assertEq(token.balanceOf(payer), 50e6);
    }

    function test_tokenHookCannotReenterDuringPermit2Pull() public {
        ReentrantActor actor = new ReentrantActor();
        CallbackToken token = new CallbackToken();
        _fundPayerAndOperator(address(token), 50e6, 0, PERMIT2);
        AuthCaptureEscrow.PaymentInfo memory held = _paymentInfo(payer, 30e6);
        held.token = address(token);
        held.salt = 1;
        bytes memory heldSig = _sig(held);
        vm.prank(operator);
        escrow.authorize(held, 10e6, address(permit2Collector), heldSig);

        // During the next Permit2 pull, the token calls the actor, which tries to void `held`.
        token.setHook(address(actor));
        actor.arm(address(escrow), abi.encodeCall(escrow.void, (held)), false);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 30e6);
        info.token = address(token);
        bytes memory sig = _sig(info);
        vm.prank(operator);
        escrow.authorize(info, 20e6, address(permit2Collector), sig);

        assertEq(actor.attempts(), 1, "the hook ran inside the pull");
        assertEq(actor.lastRevertData(), abi.encodeWithSelector(AuthCaptureEscrow.Reentrancy.selector));
        _assertState(escrow.getHash(held), true, 10e6, 0);
        _assertState(escrow.getHash(info), true, 20e6, 0);
    }
}
