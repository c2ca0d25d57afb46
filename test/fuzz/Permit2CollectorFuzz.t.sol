// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFuzzBase} from "./EscrowFuzzBase.t.sol";
import {IPermit2Testing, Permit2Fixture} from "../base/Permit2Fixture.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {Permit2PaymentCollector} from "../../contracts/collectors/Permit2PaymentCollector.sol";

/// @notice The Permit2 collector over the input space: any payer key, amount, maximum and salt
///         holds exactly the amount and spends exactly the payment's nonce; any other signer is
///         refused; and a charge through Permit2 ends in exactly the balances the same charge
///         through the ERC-3009 collector does.
contract Permit2CollectorFuzzTest is EscrowFuzzBase, Permit2Fixture {
    /// @dev secp256k1's group order: private keys are in [1, N - 1].
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    Permit2PaymentCollector internal permit2Collector;

    function setUp() public override {
        super.setUp();
        _installPermit2();
        permit2Collector = new Permit2PaymentCollector(address(escrow), PERMIT2, address(multicall3));
    }

    /// @dev A funded payer with key `pk` who approved Permit2, and a valid payment of theirs.
    function _payerPayment(uint256 pk, uint120 maxAmount, uint256 salt)
        internal
        returns (AuthCaptureEscrow.PaymentInfo memory info)
    {
        address who = vm.addr(pk);
        info = _paymentInfo(who, maxAmount);
        info.salt = salt;
        usdc.mint(who, maxAmount);
        vm.prank(who);
        usdc.approve(PERMIT2, type(uint256).max);
    }

    function testFuzz_permit2_authorizeHoldsExactAmount(uint256 pk, uint120 maxAmount, uint256 amount, uint256 salt)
        public
    {
        pk = bound(pk, 1, SECP256K1_N - 1);
        maxAmount = uint120(bound(maxAmount, 1, UINT120_MAX));
        amount = bound(amount, 1, maxAmount);
        AuthCaptureEscrow.PaymentInfo memory info = _payerPayment(pk, maxAmount, salt);
        vm.assume(info.payer != _store() && info.payer != address(escrow));
        bytes memory sig = _signPermit2(_permit2Terms(info, address(permit2Collector), address(escrow)), pk);
        uint256 nonce = uint256(_payerAgnosticHash(info));

        vm.prank(operator);
        escrow.authorize(info, amount, address(permit2Collector), sig);

        _assertState(escrow.getHash(info), true, amount, 0);
        assertEq(usdc.balanceOf(info.payer), maxAmount - amount);
        assertEq(usdc.balanceOf(_store()), amount);
        assertTrue(_permit2NonceUsed(info.payer, nonce));
    }

    function testFuzz_permit2_anyOtherSignerRefused(uint256 wrongPk, uint120 maxAmount, uint256 salt) public {
        wrongPk = bound(wrongPk, 1, SECP256K1_N - 1);
        vm.assume(wrongPk != PAYER_PK);
        maxAmount = uint120(bound(maxAmount, 1, UINT120_MAX));
        AuthCaptureEscrow.PaymentInfo memory info = _payerPayment(PAYER_PK, maxAmount, salt);
        bytes memory sig = _signPermit2(_permit2Terms(info, address(permit2Collector), address(escrow)), wrongPk);
        _expectRevertFrom(operator, abi.encodeWithSelector(IPermit2Testing.InvalidSigner.selector));
        escrow.authorize(info, maxAmount, address(permit2Collector), sig);
        assertEq(usdc.balanceOf(payer), maxAmount);
        assertFalse(_permit2NonceUsed(payer, uint256(_payerAgnosticHash(info))));
    }

    function testFuzz_permit2_chargeEndsLikeERC3009Charge(uint120 maxAmount, uint256 amount, FeeSplitSeeds memory seeds)
        public
    {
        (AuthCaptureEscrow.PaymentInfo memory info, uint16 feeBps, address chosenFeeReceiver) =
            _feeSplitCase(maxAmount, seeds);
        amount = bound(amount, 1, info.maxAmount);
        usdc.mint(payer, info.maxAmount);
        vm.prank(payer);
        usdc.approve(PERMIT2, type(uint256).max);
        address[5] memory parties = [payer, receiver, chosenFeeReceiver, _store(), address(escrow)];

        bytes memory erc3009Sig = _signERC3009(info, PAYER_PK);
        uint256 snapshot = vm.snapshotState();
        vm.prank(operator);
        escrow.charge(info, amount, address(erc3009Collector), erc3009Sig, feeBps, chosenFeeReceiver);
        bytes memory viaERC3009 = _balances(parties);
        vm.revertToState(snapshot);

        bytes memory sig = _signPermit2(_permit2Terms(info, address(permit2Collector), address(escrow)), PAYER_PK);
        vm.prank(operator);
        escrow.charge(info, amount, address(permit2Collector), sig, feeBps, chosenFeeReceiver);
        assertEq(_balances(parties), viaERC3009, "same balances through either collector");
        _assertState(escrow.getHash(info), true, 0, amount);
    }

    function _balances(address[5] memory parties) internal view returns (bytes memory out) {
        for (uint256 i; i < parties.length; ++i) {
            out = bytes.concat(out, abi.encode(usdc.balanceOf(parties[i])));
        }
    }
}
