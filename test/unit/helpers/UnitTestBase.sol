// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {EscrowHelpers} from "../../base/EscrowHelpers.sol";
import {UnitMisdeliveringCollector} from "./UnitCollectors.sol";
import {AuthCaptureEscrow} from "../../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../../contracts/collectors/TokenCollector.sol";

/// @notice Unit-test conveniences layered on the shared fixture (kept here so the shared base
///         stays untouched): default payments, charge / pre-approval drivers, state and log helpers,
///         and an independent implementation of the spec's hash formulas.
abstract contract UnitTestBase is EscrowHelpers {
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

    /// @dev Mints `info.maxAmount` to the payer and returns the ERC-3009 signature of `pk` for `info`.
    function _mintAndSign(AuthCaptureEscrow.PaymentInfo memory info, uint256 pk) internal returns (bytes memory) {
        usdc.mint(info.payer, info.maxAmount);
        return _signERC3009(info, pk);
    }

    /// @dev Gives the payer `amount`, approves the pre-approval collector and pre-approves `info`.
    function _preApprove(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount) internal {
        usdc.mint(info.payer, amount);
        vm.startPrank(info.payer);
        usdc.approve(address(preApprovalCollector), amount);
        preApprovalCollector.preApprove(info);
        vm.stopPrank();
    }

    /// @dev How many of `logs` came from `emitter` with first topic `topic0`.
    function _countLogs(Vm.Log[] memory logs, address emitter, bytes32 topic0) internal pure returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == emitter && logs[i].topics.length > 0 && logs[i].topics[0] == topic0) ++n;
        }
    }

    /// @dev Expects the escrow's next event to be `PaymentCaptured` of `paymentInfoHash` for `amount`
    ///      at `feeBps` to `feeReceiver_`.
    function _expectPaymentCaptured(bytes32 paymentInfoHash, uint256 amount, uint16 feeBps, address feeReceiver_)
        internal
    {
        _expectEscrowEmit();
        emit AuthCaptureEscrow.PaymentCaptured(paymentInfoHash, amount, feeBps, feeReceiver_);
    }

    /// @dev Expects the escrow's next event to be `PaymentVoided` of `paymentInfoHash` for `amount`.
    function _expectPaymentVoided(bytes32 paymentInfoHash, uint256 amount) internal {
        _expectEscrowEmit();
        emit AuthCaptureEscrow.PaymentVoided(paymentInfoHash, amount);
    }

    /// @dev As the operator, authorizes `amount` of `info` through the ERC-3009 collector with no
    ///      signature, expecting exactly `revertData` (validation fails before any collection).
    function _authorizeReverts(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount, bytes memory revertData)
        internal
    {
        _expectRevertFrom(operator, revertData);
        escrow.authorize(info, amount, address(erc3009Collector), "");
    }

    /// @dev As the operator, charges `amount` of `info` through the ERC-3009 collector with no
    ///      signature and the given fee, expecting exactly `revertData`.
    function _chargeReverts(
        AuthCaptureEscrow.PaymentInfo memory info,
        uint256 amount,
        uint16 feeBps,
        address feeReceiver_,
        bytes memory revertData
    ) internal {
        _expectRevertFrom(operator, revertData);
        escrow.charge(info, amount, address(erc3009Collector), "", feeBps, feeReceiver_);
    }

    /// @dev `InvalidExpiries` with the three expiries of `info`.
    function _invalidExpiries(AuthCaptureEscrow.PaymentInfo memory info) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(
            AuthCaptureEscrow.InvalidExpiries.selector,
            info.preApprovalExpiry,
            info.authorizationExpiry,
            info.refundExpiry
        );
    }

    /// @dev `AfterPreApprovalExpiry` at `timestamp` for `info`.
    function _afterPreApprovalExpiry(uint256 timestamp, AuthCaptureEscrow.PaymentInfo memory info)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(
            AuthCaptureEscrow.AfterPreApprovalExpiry.selector, uint48(timestamp), info.preApprovalExpiry
        );
    }

    /// @dev `InvalidSender` for `sender` where `expected` alone may call.
    function _invalidSender(address sender, address expected) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, sender, expected);
    }

    /// @dev `AmountOverflow` for `amount` above the uint120 range.
    function _amountOverflow(uint256 amount) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(AuthCaptureEscrow.AmountOverflow.selector, amount, uint256(type(uint120).max));
    }

    /// @dev `FeeBpsOutOfRange` for `feeBps` outside [`minFeeBps`, `maxFeeBps`].
    function _feeBpsOutOfRange(uint16 feeBps, uint16 minFeeBps, uint16 maxFeeBps) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(AuthCaptureEscrow.FeeBpsOutOfRange.selector, feeBps, minFeeBps, maxFeeBps);
    }

    /// @dev `InvalidFeeReceiver` for `attempted` where the payment fixes the fixture's fee receiver.
    function _invalidFeeReceiver(address attempted) internal view returns (bytes memory) {
        return abi.encodeWithSelector(AuthCaptureEscrow.InvalidFeeReceiver.selector, attempted, feeReceiver);
    }

    /// @dev `PaymentAlreadyCollected` for the payment `paymentInfoHash`.
    function _paymentAlreadyCollected(bytes32 paymentInfoHash) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, paymentInfoHash);
    }

    /// @dev `ZeroAuthorization` for the payment `paymentInfoHash`.
    function _zeroAuthorization(bytes32 paymentInfoHash) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(AuthCaptureEscrow.ZeroAuthorization.selector, paymentInfoHash);
    }

    /// @dev A collector of `collectorType` that delivers `delta` units off what it is asked for,
    ///      funded with `funds` of USDC.
    function _misdeliveringCollector(TokenCollector.CollectorType collectorType, int256 delta, uint256 funds)
        internal
        returns (address)
    {
        UnitMisdeliveringCollector c = new UnitMisdeliveringCollector(address(escrow), collectorType);
        c.setDelta(delta);
        usdc.mint(address(c), funds);
        return address(c);
    }

    /// @dev The default payment with another salt, never authorized, and its hash.
    function _unknownPayment(uint256 salt)
        internal
        view
        returns (AuthCaptureEscrow.PaymentInfo memory unknown, bytes32 unknownHash)
    {
        unknown = _defaultInfo();
        unknown.salt = salt;
        unknownHash = escrow.getHash(unknown);
    }
}

/// @notice Fixture for the tests of one held payment: the default payment, authorized for 80 USDC.
abstract contract HeldPaymentTestBase is UnitTestBase {
    AuthCaptureEscrow.PaymentInfo internal info;
    bytes32 internal h;

    function setUp() public virtual override {
        super.setUp();
        info = _defaultInfo();
        h = _authorize(info, 80e6);
    }
}

/// @notice Fixture for the batch tests: two payments of the operator held at once, `a` for 40 USDC
///         and `b` (salt 1) for 60 USDC.
abstract contract TwoHeldPaymentsTestBase is UnitTestBase {
    AuthCaptureEscrow.PaymentInfo internal a;
    AuthCaptureEscrow.PaymentInfo internal b;
    bytes32 internal ha;
    bytes32 internal hb;

    function setUp() public virtual override {
        super.setUp();
        a = _defaultInfo();
        b = _defaultInfo();
        b.salt = 1;
        ha = _authorize(a, 40e6);
        hb = _authorize(b, 60e6);
    }
}
