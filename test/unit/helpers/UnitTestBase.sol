// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {EscrowTestBase} from "../../base/EscrowTestBase.sol";
import {AuthCaptureEscrow} from "../../../contracts/AuthCaptureEscrow.sol";

/// @notice Unit-test conveniences layered on the shared fixture (kept here so the shared base
///         stays untouched): default payments, charge / pre-approval drivers, state and log helpers,
///         and an independent implementation of the spec's hash formulas.
abstract contract UnitTestBase is EscrowTestBase {
    /// @dev keccak256 of the PaymentInfo type string, written out from the spec (not read from the contract).
    bytes32 internal constant SPEC_PAYMENT_INFO_TYPEHASH = keccak256(
        "PaymentInfo(address operator,address payer,address receiver,address token,uint120 maxAmount,uint48 preApprovalExpiry,uint48 authorizationExpiry,uint48 refundExpiry,uint16 minFeeBps,uint16 maxFeeBps,address feeReceiver,uint256 salt)"
    );

    uint120 internal constant MAX_AMOUNT = 100e6;
    uint16 internal constant FEE_BPS = 100; // 1%, the top of the default range

    address internal operator2 = makeAddr("operator2");
    address internal stranger = makeAddr("stranger");

    /// @dev The default payment: payer -> receiver, up to 100 USDC, fee 0-1% to feeReceiver.
    function _defaultInfo() internal view returns (AuthCaptureEscrow.PaymentInfo memory) {
        return _paymentInfo(payer, MAX_AMOUNT);
    }

    /// @dev The hash exactly as the spec defines it, computed without calling the escrow.
    function _specHash(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes32) {
        return keccak256(
            abi.encode(block.chainid, address(escrow), keccak256(abi.encode(SPEC_PAYMENT_INFO_TYPEHASH, info)))
        );
    }

    /// @dev Mints `info.maxAmount` to the payer, signs, and charges `amount` as the operator.
    function _charge(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount, uint16 feeBps, address feeReceiver_)
        internal
        returns (bytes32)
    {
        usdc.mint(info.payer, info.maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);
        vm.prank(info.operator);
        escrow.charge(info, amount, address(erc3009Collector), signature, feeBps, feeReceiver_);
        return escrow.getHash(info);
    }

    /// @dev Gives the payer `amount`, approves the pre-approval collector and pre-approves `info`.
    function _preApprove(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount) internal {
        usdc.mint(info.payer, amount);
        vm.startPrank(info.payer);
        usdc.approve(address(preApprovalCollector), amount);
        preApprovalCollector.preApprove(info);
        vm.stopPrank();
    }

    function _assertState(bytes32 paymentInfoHash, bool collected, uint256 capturable, uint256 refundable)
        internal
        view
    {
        (bool c, uint120 cap, uint120 ref) = escrow.paymentState(paymentInfoHash);
        assertEq(c, collected, "hasCollectedPayment");
        assertEq(cap, capturable, "capturableAmount");
        assertEq(ref, refundable, "refundableAmount");
    }

    /// @dev How many of `logs` came from `emitter` with first topic `topic0`.
    function _countLogs(Vm.Log[] memory logs, address emitter, bytes32 topic0) internal pure returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == emitter && logs[i].topics.length > 0 && logs[i].topics[0] == topic0) ++n;
        }
    }

    function _store() internal view returns (address) {
        return escrow.getTokenStore(operator);
    }
}
