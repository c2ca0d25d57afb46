// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Permit2Fixture} from "../base/Permit2Fixture.sol";
import {standardPaymentInfo} from "../base/PaymentFixtures.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {OperatorRefundCollector} from "../../contracts/collectors/OperatorRefundCollector.sol";
import {Permit2PaymentCollector} from "../../contracts/collectors/Permit2PaymentCollector.sol";
import {Multicall3} from "../../contracts/dev/Multicall3.sol";
import {RawResultToken} from "../mocks/MockTokens.sol";

/// @notice Differential tests against the REFERENCE contracts (base/commerce-payments v1.0, compiled
///         in ../shared/canonical/v1.0 and deployed here from their creation code): the same Permit2
///         payment, the same lifecycle and the same token failures, run once through our escrow and
///         collectors and once through the reference's, from the same state (a snapshot is taken and
///         restored between the two), must leave the same balances and payment state and revert
///         with the same bytes. The reference's ABI matches ours, so our types encode the calls.
/// @dev Compared revert data never embeds a payment hash (which depends on the escrow's address):
///      it is Permit2's, the token's, SafeERC20's or a timestamp check's.
contract ReferenceDifferentialTest is Permit2Fixture {
    string internal constant REFERENCE = "../shared/canonical/v1.0/";
    uint256 internal constant PAYER_PK = 0xA11CE;

    /// @dev One escrow and its collectors.
    struct Escrow {
        address escrow;
        address permit2Collector;
        address refundCollector;
    }

    Escrow internal ours;
    Escrow internal ref;
    RawResultToken internal token;

    address internal payer;
    address internal operator = makeAddr("operator");
    address internal receiver = makeAddr("receiver");
    address internal feeReceiver = makeAddr("feeReceiver");

    function setUp() public {
        vm.warp(1_767_225_600);
        payer = vm.addr(PAYER_PK);
        _installPermit2();
        address multicall3 = address(new Multicall3());
        token = new RawResultToken();

        ours.escrow = address(new AuthCaptureEscrow());
        ours.permit2Collector = address(new Permit2PaymentCollector(ours.escrow, PERMIT2, multicall3));
        ours.refundCollector = address(new OperatorRefundCollector(ours.escrow));

        ref.escrow = _deploy(_creationCode("AuthCaptureEscrow"));
        ref.permit2Collector = _deploy(
            abi.encodePacked(_creationCode("Permit2PaymentCollector"), abi.encode(ref.escrow, PERMIT2, multicall3))
        );
        ref.refundCollector =
            _deploy(abi.encodePacked(_creationCode("OperatorRefundCollector"), abi.encode(ref.escrow)));

        token.mint(payer, 1_000e6);
        token.mint(operator, 1_000e6);
        vm.prank(payer);
        token.approve(PERMIT2, type(uint256).max);
    }

    function _creationCode(string memory name) internal view returns (bytes memory) {
        return vm.parseJsonBytes(vm.readFile(string.concat(REFERENCE, name, ".json")), ".bytecode");
    }

    function _deploy(bytes memory initCode) internal returns (address deployed) {
        assembly {
            deployed := create(0, add(initCode, 0x20), mload(initCode))
        }
        require(deployed != address(0) && deployed.code.length != 0, "deploy failed");
    }

    /*//////////////////////////////////////////////////////////////
                                 HARNESS
    //////////////////////////////////////////////////////////////*/

    /// @dev A payment in the test token, up to `maxAmount`, salt `salt` (fixture expiries and fees).
    function _info(uint120 maxAmount, uint256 salt) internal view returns (AuthCaptureEscrow.PaymentInfo memory) {
        return standardPaymentInfo(operator, payer, receiver, address(token), maxAmount, feeReceiver, salt);
    }

    /// @dev The payer's Permit2 signature of `info` for `e`'s collector.
    function _sign(Escrow memory e, AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes memory) {
        return _signPermit2(_permit2Terms(info, e.permit2Collector, e.escrow), PAYER_PK);
    }

    /// @dev Calls `e.escrow` as `sender` and appends (success, return data) to `log`.
    function _step(bytes memory log, Escrow memory e, address sender, bytes memory data)
        internal
        returns (bytes memory)
    {
        vm.prank(sender);
        (bool ok, bytes memory returned) = e.escrow.call(data);
        return bytes.concat(log, abi.encode(ok, returned));
    }

    /// @dev `authorize` through `e`'s Permit2 collector, as the operator.
    function _authorize(
        bytes memory log,
        Escrow memory e,
        AuthCaptureEscrow.PaymentInfo memory info,
        uint256 amount,
        bytes memory sig
    ) internal returns (bytes memory) {
        return _step(
            log, e, operator, abi.encodeCall(AuthCaptureEscrow.authorize, (info, amount, e.permit2Collector, sig))
        );
    }

    /// @dev `charge` through `e`'s Permit2 collector, as the operator, fee to the fixture's receiver.
    function _charge(
        bytes memory log,
        Escrow memory e,
        AuthCaptureEscrow.PaymentInfo memory info,
        uint256 amount,
        bytes memory sig,
        uint16 feeBps
    ) internal returns (bytes memory) {
        bytes memory data = abi.encodeCall(
            AuthCaptureEscrow.charge, (info, amount, e.permit2Collector, sig, feeBps, feeReceiver)
        );
        return _step(log, e, operator, data);
    }

    /// @dev `capture` as the operator, fee to the fixture's receiver.
    function _capture(
        bytes memory log,
        Escrow memory e,
        AuthCaptureEscrow.PaymentInfo memory info,
        uint256 amount,
        uint16 feeBps
    ) internal returns (bytes memory) {
        return _step(log, e, operator, abi.encodeCall(AuthCaptureEscrow.capture, (info, amount, feeBps, feeReceiver)));
    }

    /// @dev `refund` through `e`'s operator refund collector, as the operator.
    function _refund(bytes memory log, Escrow memory e, AuthCaptureEscrow.PaymentInfo memory info, uint256 amount)
        internal
        returns (bytes memory)
    {
        return _step(log, e, operator, abi.encodeCall(AuthCaptureEscrow.refund, (info, amount, e.refundCollector, "")));
    }

    /// @dev `void` as the operator.
    function _void(bytes memory log, Escrow memory e, AuthCaptureEscrow.PaymentInfo memory info)
        internal
        returns (bytes memory)
    {
        return _step(log, e, operator, abi.encodeCall(AuthCaptureEscrow.void, (info)));
    }

    /// @dev `reclaim` as the payer.
    function _reclaim(bytes memory log, Escrow memory e, AuthCaptureEscrow.PaymentInfo memory info)
        internal
        returns (bytes memory)
    {
        return _step(log, e, payer, abi.encodeCall(AuthCaptureEscrow.reclaim, (info)));
    }

    /// @dev `log` followed by every party's balance, the store's, and the state of `infos` at `e`.
    function _observe(bytes memory log, Escrow memory e, AuthCaptureEscrow.PaymentInfo[] memory infos)
        internal
        view
        returns (bytes memory)
    {
        address store = AuthCaptureEscrow(e.escrow).getTokenStore(operator);
        log = bytes.concat(
            log,
            abi.encode(
                token.balanceOf(payer),
                token.balanceOf(operator),
                token.balanceOf(receiver),
                token.balanceOf(feeReceiver),
                token.balanceOf(store),
                token.balanceOf(e.permit2Collector),
                token.balanceOf(e.escrow)
            )
        );
        for (uint256 i; i < infos.length; ++i) {
            (bool collected, uint120 capturable, uint120 refundable) =
                AuthCaptureEscrow(e.escrow).paymentState(AuthCaptureEscrow(e.escrow).getHash(infos[i]));
            log = bytes.concat(log, abi.encode(collected, capturable, refundable));
        }
        return log;
    }

    /// @dev Runs `scenario` on ours, then from the same state on the reference, and asserts the two
    ///      observations are identical; returns ours.
    function _differential(function(Escrow memory) internal returns (bytes memory) scenario)
        internal
        returns (bytes memory observedOurs)
    {
        uint256 snapshot = vm.snapshotState();
        observedOurs = scenario(ours);
        vm.revertToState(snapshot);
        bytes memory observedRef = scenario(ref);
        assertEq(observedOurs, observedRef, "ours and the reference differ");
    }

    /*//////////////////////////////////////////////////////////////
                       SCENARIO: A WHOLE PERMIT2 LIFECYCLE
    //////////////////////////////////////////////////////////////*/

    uint120 internal fMaxAmount;
    uint256 internal fAuthorize;
    uint256 internal fCapture;
    uint16 internal fFeeBps;
    uint256 internal fRefund;
    uint256 internal fCharge;

    function _lifecycle(Escrow memory e) internal returns (bytes memory log) {
        AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](3);
        infos[0] = _info(fMaxAmount, 1); // authorize, capture, refund, void
        infos[1] = _info(fMaxAmount, 2); // charge
        infos[2] = _info(fMaxAmount, 3); // authorize, reclaim
        vm.prank(operator);
        token.approve(e.refundCollector, type(uint256).max);

        log = _authorize(log, e, infos[0], fAuthorize, _sign(e, infos[0]));
        log = _capture(log, e, infos[0], fCapture, fFeeBps);
        log = _refund(log, e, infos[0], fRefund);
        log = _void(log, e, infos[0]);
        log = _charge(log, e, infos[1], fCharge, _sign(e, infos[1]), fFeeBps);
        log = _authorize(log, e, infos[2], fAuthorize, _sign(e, infos[2]));
        vm.warp(infos[2].authorizationExpiry);
        log = _reclaim(log, e, infos[2]);
        log = _observe(log, e, infos);
    }

    function testFuzz_differential_permit2Lifecycle(
        uint120 maxAmount,
        uint256 authorizeAmount,
        uint256 captureAmount,
        uint16 feeBps,
        uint256 refundAmount,
        uint256 chargeAmount
    ) public {
        // Something stays held after the capture, so the void has something to release (a void of
        // nothing reverts with the payment hash, which differs between two escrows by design).
        fMaxAmount = uint120(bound(maxAmount, 2, 300e6));
        fAuthorize = bound(authorizeAmount, 2, fMaxAmount);
        fCapture = bound(captureAmount, 1, fAuthorize - 1);
        fFeeBps = uint16(bound(feeBps, 0, 100));
        fRefund = bound(refundAmount, 1, fCapture);
        fCharge = bound(chargeAmount, 1, fMaxAmount);
        bytes memory observed = _differential(_lifecycle);

        // And the scenario did what it says (every step succeeded), so the comparison is not vacuous.
        for (uint256 i; i < 7; ++i) {
            (bool ok,) = abi.decode(_slice(observed, i), (bool, bytes));
            assertTrue(ok, "every lifecycle step succeeds");
        }
    }

    /// @dev The `i`-th (success, return data) record of a log.
    function _slice(bytes memory log, uint256 i) internal pure returns (bytes memory record) {
        uint256 offset;
        for (uint256 k; k <= i; ++k) {
            (, bytes memory returned) = abi.decode(_tail(log, offset), (bool, bytes));
            uint256 size = 32 * 3 + ((returned.length + 31) / 32) * 32;
            if (k == i) return _head(_tail(log, offset), size);
            offset += size;
        }
    }

    function _tail(bytes memory data, uint256 from) internal pure returns (bytes memory out) {
        out = new bytes(data.length - from);
        for (uint256 j; j < out.length; ++j) {
            out[j] = data[from + j];
        }
    }

    function _head(bytes memory data, uint256 size) internal pure returns (bytes memory out) {
        out = new bytes(size);
        for (uint256 j; j < size; ++j) {
            out[j] = data[j];
        }
    }

    /*//////////////////////////////////////////////////////////////
                 SCENARIO: SIGNATURES AND PERMIT2 REFUSING
    //////////////////////////////////////////////////////////////*/

    function _permit2Refusals(Escrow memory e) internal returns (bytes memory log) {
        AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](1);
        infos[0] = _info(50e6, 9);
        bytes memory good = _sign(e, infos[0]);
        // Signed by someone else.
        bytes memory stranger = _signPermit2(_permit2Terms(infos[0], e.permit2Collector, e.escrow), 0xBAD);
        log = _authorize(log, e, infos[0], 10e6, stranger);
        // Signed for the other implementation's collector.
        Escrow memory other = e.escrow == ours.escrow ? ref : ours;
        log = _authorize(log, e, infos[0], 10e6, _sign(other, infos[0]));
        // Empty signature.
        log = _authorize(log, e, infos[0], 10e6, "");
        // No Permit2 allowance.
        vm.prank(payer);
        token.approve(PERMIT2, 0);
        log = _charge(log, e, infos[0], 10e6, good, 0);
        vm.prank(payer);
        token.approve(PERMIT2, type(uint256).max);
        // The token refuses the pull (Permit2 reports it its own way).
        token.setRevert(abi.encodeWithSignature("Paused()"));
        log = _authorize(log, e, infos[0], 10e6, good);
        // After the pre-approval expiry.
        vm.warp(infos[0].preApprovalExpiry);
        log = _authorize(log, e, infos[0], 10e6, good);
        log = _observe(log, e, infos);
    }

    function test_differential_permit2Refusals() public {
        bytes memory observed = _differential(_permit2Refusals);
        for (uint256 i; i < 6; ++i) {
            (bool ok,) = abi.decode(_slice(observed, i), (bool, bytes));
            assertFalse(ok, "every refusal refuses");
        }
        (, bytes memory noAllowance) = abi.decode(_slice(observed, 3), (bool, bytes));
        assertEq(noAllowance, abi.encodeWithSignature("Error(string)", "TRANSFER_FROM_FAILED"));
    }

    /*//////////////////////////////////////////////////////////////
          SCENARIO: THE TOKEN FAILS ON THE WAY OUT (SafeERC20 semantics)
    //////////////////////////////////////////////////////////////*/

    bytes internal fTokenRevertData;
    bool internal fTokenReturnsRaw;
    bytes internal fTokenReturnData;

    /// @dev Holds two payments through Permit2 (one partly captured, one left to expire), then
    ///      breaks the token as configured and tries capture, void, refund, reclaim and charge.
    function _failingToken(Escrow memory e) internal returns (bytes memory log) {
        AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](3);
        infos[0] = _info(20e6, 20);
        infos[1] = _info(20e6, 21);
        infos[2] = _info(20e6, 22);
        vm.prank(operator);
        token.approve(e.refundCollector, type(uint256).max);
        log = _authorize(log, e, infos[0], 15e6, _sign(e, infos[0]));
        log = _capture(log, e, infos[0], 5e6, 100);
        log = _authorize(log, e, infos[1], 7e6, _sign(e, infos[1]));
        bytes memory chargeSig = _sign(e, infos[2]);

        if (fTokenReturnsRaw) token.setReturn(fTokenReturnData);
        else token.setRevert(fTokenRevertData);

        log = _capture(log, e, infos[0], 1e6, 100);
        log = _refund(log, e, infos[0], 1e6);
        log = _void(log, e, infos[0]);
        log = _charge(log, e, infos[2], 1e6, chargeSig, 0);
        vm.warp(infos[1].authorizationExpiry);
        log = _reclaim(log, e, infos[1]);
        log = _observe(log, e, infos);
    }

    function testFuzz_differential_tokenRevertDataPassesThrough(bytes memory revertData) public {
        fTokenRevertData = revertData;
        bytes memory observed = _differential(_failingToken);
        // capture, refund, void, reclaim fail with exactly the token's bytes.
        for (uint256 i = 3; i < 8; ++i) {
            if (i == 6) continue; // charge: Permit2's pull fails first, with Permit2's own message
            (bool ok, bytes memory returned) = abi.decode(_slice(observed, i), (bool, bytes));
            assertFalse(ok);
            assertEq(returned, revertData, "the token's revert data, byte for byte");
        }
    }

    function test_differential_tokenReturningFalse() public {
        fTokenReturnsRaw = true;
        fTokenReturnData = abi.encode(false);
        bytes memory observed = _differential(_failingToken);
        bytes memory failed = abi.encodeWithSignature("SafeERC20FailedOperation(address)", address(token));
        for (uint256 i = 3; i < 8; ++i) {
            if (i == 6) continue;
            (bool ok, bytes memory returned) = abi.decode(_slice(observed, i), (bool, bytes));
            assertFalse(ok);
            assertEq(returned, failed);
        }
    }

    function test_differential_tokenReturningNothing() public {
        fTokenReturnsRaw = true;
        fTokenReturnData = "";
        bytes memory observed = _differential(_failingToken);
        for (uint256 i; i < 8; ++i) {
            (bool ok,) = abi.decode(_slice(observed, i), (bool, bytes));
            assertTrue(ok, "USDT-style tokens work everywhere, Permit2 included");
        }
    }
}
