// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";

import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {ERC3009PaymentCollector} from "../../contracts/collectors/ERC3009PaymentCollector.sol";
import {OperatorRefundCollector} from "../../contracts/collectors/OperatorRefundCollector.sol";
import {PreApprovalPaymentCollector} from "../../contracts/collectors/PreApprovalPaymentCollector.sol";
import {Multicall3} from "../../contracts/dev/Multicall3.sol";
import {TestUSDC} from "../../contracts/dev/TestUSDC.sol";
import {payerAgnosticHash, receiveAuthorizationDigest, standardPaymentInfo} from "./PaymentFixtures.sol";

/// @notice Shared fixture: a USDC-like token, the escrow, its three collectors and a cast of actors,
///         plus helpers to build, sign and drive payments.
abstract contract EscrowTestBase is Test {
    uint256 internal constant PAYER_PK = 0xA11CE;
    uint256 internal constant OPERATOR_PK = 0x0B0B;

    TestUSDC internal usdc;
    AuthCaptureEscrow internal escrow;
    Multicall3 internal multicall3;
    ERC3009PaymentCollector internal erc3009Collector;
    PreApprovalPaymentCollector internal preApprovalCollector;
    OperatorRefundCollector internal refundCollector;

    address internal payer;
    address internal operator;
    address internal receiver = makeAddr("receiver");
    address internal feeReceiver = makeAddr("feeReceiver");

    function setUp() public virtual {
        vm.warp(1_767_225_600); // 2026-01-01, so expiries relative to "now" are realistic
        payer = vm.addr(PAYER_PK);
        operator = vm.addr(OPERATOR_PK);

        usdc = new TestUSDC("USD Coin", "USDC", "2", address(this));
        escrow = _deployEscrow();
        multicall3 = new Multicall3();
        erc3009Collector = new ERC3009PaymentCollector(address(escrow), address(multicall3));
        preApprovalCollector = new PreApprovalPaymentCollector(address(escrow));
        refundCollector = new OperatorRefundCollector(address(escrow));

        vm.label(address(usdc), "USDC");
        vm.label(address(escrow), "AuthCaptureEscrow");
        vm.label(address(erc3009Collector), "ERC3009PaymentCollector");
        vm.label(address(preApprovalCollector), "PreApprovalPaymentCollector");
        vm.label(address(refundCollector), "OperatorRefundCollector");
        vm.label(payer, "payer");
        vm.label(operator, "operator");
    }

    /// @dev The escrow under test (a variant, e.g. `AuthCaptureEscrowV1_1`, overrides this).
    function _deployEscrow() internal virtual returns (AuthCaptureEscrow) {
        return new AuthCaptureEscrow();
    }

    /// @dev A payment of up to `maxAmount` from `payer_` with a 0-1% fee range, fee receiver fixed,
    ///      pre-approval 1 hour, authorization 1 day, refund 30 days from now.
    function _paymentInfo(address payer_, uint120 maxAmount)
        internal
        view
        returns (AuthCaptureEscrow.PaymentInfo memory info)
    {
        info = standardPaymentInfo(operator, payer_, receiver, address(usdc), maxAmount, feeReceiver, 0);
    }

    /// @dev The payer-agnostic hash (the ERC-3009 nonce), computed through the escrow itself.
    function _payerAgnosticHash(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes32) {
        return payerAgnosticHash(address(escrow), info);
    }

    /// @dev The EIP-712 digest of the ReceiveWithAuthorization a payer signs for `info`.
    function _receiveAuthorizationDigest(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes32) {
        return receiveAuthorizationDigest(usdc, address(escrow), address(erc3009Collector), info);
    }

    /// @dev The payer's ERC-3009 signature for `info`, as the ERC3009PaymentCollector expects it.
    function _signERC3009(AuthCaptureEscrow.PaymentInfo memory info, uint256 pk) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, _receiveAuthorizationDigest(info));
        return abi.encodePacked(r, s, v);
    }

    /// @dev Mints `info.maxAmount` to the payer, signs, and authorizes `amount` as the operator.
    function _authorize(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount) internal returns (bytes32) {
        usdc.mint(info.payer, info.maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);
        vm.prank(info.operator);
        escrow.authorize(info, amount, address(erc3009Collector), signature);
        return escrow.getHash(info);
    }

    /// @dev Authorizes `amount`, then captures `captureAmount` with `feeBps`.
    function _authorizeAndCapture(
        AuthCaptureEscrow.PaymentInfo memory info,
        uint256 amount,
        uint256 captureAmount,
        uint16 feeBps
    ) internal returns (bytes32 paymentInfoHash) {
        paymentInfoHash = _authorize(info, amount);
        vm.prank(info.operator);
        escrow.capture(info, captureAmount, feeBps, info.feeReceiver);
    }

    /// @dev Gives the operator `amount` and approves the refund collector for it.
    function _fundRefunds(uint256 amount) internal {
        usdc.mint(operator, amount);
        vm.prank(operator);
        usdc.approve(address(refundCollector), amount);
    }

    /// @dev The escrow's state for a payment as a tuple.
    function _state(bytes32 paymentInfoHash) internal view returns (bool collected, uint120 capturable, uint120 refundable) {
        return escrow.paymentState(paymentInfoHash);
    }
}
