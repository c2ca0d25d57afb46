// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {OperatorBatchExecutor} from "../../contracts/batch/OperatorBatchExecutor.sol";

/// @dev Cheatcodes forge 1.7.1 has that the bundled forge-std's `Vm` does not declare.
interface VmEvmVersion {
    function setEvmVersion(string calldata evm) external;
}

/// @notice Records who called it, in order.
contract CallLog {
    address[] public senders;
    uint256[] public tags;

    function hit(uint256 tag) external {
        senders.push(msg.sender);
        tags.push(tag);
    }

    function count() external view returns (uint256) {
        return tags.length;
    }
}

/// @notice Reverts in the ways the executor must report.
contract Failer {
    error Boom(uint256 code, address caller);

    function boom(uint256 code) external view {
        revert Boom(code, msg.sender);
    }

    /// @dev Reverts with `size` bytes where byte i is uint8(i).
    function blob(uint256 size) external pure {
        bytes memory b = new bytes(size);
        for (uint256 i; i < size; ++i) {
            b[i] = bytes1(uint8(i));
        }
        assembly {
            revert(add(b, 0x20), size)
        }
    }

    /// @dev Calls back into its caller with `data`, bubbling up a revert.
    function reenter(bytes calldata data) external {
        (bool ok, bytes memory ret) = msg.sender.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}

/// @notice Shared set-up: the operator's EOA delegates to the executor with a real EIP-7702
///         authorization (`vm.signAndAttachDelegation`; it works in forge 1.7.1 under the project's
///         cancun profile too, but 7702 exists from Prague on, so the suite switches to prague).
abstract contract ExecutorTestBase is UnitTestBase {
    OperatorBatchExecutor internal implementation;
    /// @dev The operator's EOA, seen through the executor's ABI.
    OperatorBatchExecutor internal batch;

    function setUp() public virtual override {
        super.setUp();
        VmEvmVersion(address(vm)).setEvmVersion("prague");
        implementation = new OperatorBatchExecutor();
        vm.signAndAttachDelegation(address(implementation), OPERATOR_PK);
        (bool ok,) = operator.call(""); // the next call carries the authorization
        assertTrue(ok);
        assertEq(operator.code, abi.encodePacked(hex"ef0100", address(implementation)), "delegation designator");
        batch = OperatorBatchExecutor(payable(operator));
    }

    /// @dev `execute` in a transaction the operator sends to itself.
    function _execute(OperatorBatchExecutor.Call[] memory calls) internal returns (uint256) {
        vm.prank(operator, operator);
        return batch.execute(calls);
    }

    function _executeAll(OperatorBatchExecutor.Call[] memory calls) internal {
        vm.prank(operator, operator);
        batch.executeAll(calls);
    }

    function _call(address target, bytes memory data) internal pure returns (OperatorBatchExecutor.Call memory) {
        return OperatorBatchExecutor.Call({target: target, data: data});
    }
}

/// @notice The executor on its own: access control, ordering, isolation, revert data, atomicity.
contract OperatorBatchExecutorTest is ExecutorTestBase {
    CallLog internal callLog;
    Failer internal failer;

    function setUp() public override {
        super.setUp();
        callLog = new CallLog();
        failer = new Failer();
    }

    function _hit(uint256 tag) internal view returns (OperatorBatchExecutor.Call memory) {
        return _call(address(callLog), abi.encodeCall(CallLog.hit, (tag)));
    }

    function _boom(uint256 code) internal view returns (OperatorBatchExecutor.Call memory) {
        return _call(address(failer), abi.encodeCall(Failer.boom, (code)));
    }

    function _three(
        OperatorBatchExecutor.Call memory c0,
        OperatorBatchExecutor.Call memory c1,
        OperatorBatchExecutor.Call memory c2
    ) internal pure returns (OperatorBatchExecutor.Call[] memory calls) {
        calls = new OperatorBatchExecutor.Call[](3);
        calls[0] = c0;
        calls[1] = c1;
        calls[2] = c2;
    }

    function _one(OperatorBatchExecutor.Call memory c0)
        internal
        pure
        returns (OperatorBatchExecutor.Call[] memory calls)
    {
        calls = new OperatorBatchExecutor.Call[](1);
        calls[0] = c0;
    }

    // --- who may call ---

    function test_execute_otherCallerRevertsUnauthorized() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(OperatorBatchExecutor.Unauthorized.selector, stranger));
        batch.execute(_one(_hit(1)));
        assertEq(callLog.count(), 0);
    }

    function test_execute_otherCallerWithOperatorOriginRevertsUnauthorized() public {
        // A contract called by the operator's own transaction is still not the operator.
        vm.prank(stranger, operator);
        vm.expectRevert(abi.encodeWithSelector(OperatorBatchExecutor.Unauthorized.selector, stranger));
        batch.execute(_one(_hit(1)));
    }

    function test_executeAll_otherCallerRevertsUnauthorized() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(OperatorBatchExecutor.Unauthorized.selector, stranger));
        batch.executeAll(_one(_hit(1)));
    }

    function test_implementation_isInertAtItsOwnAddress() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(OperatorBatchExecutor.Unauthorized.selector, operator));
        implementation.execute(_one(_hit(1)));
    }

    function test_execute_targetCallingBackIsUnauthorized() public {
        // A batch member that re-enters the EOA's execute is rejected (msg.sender is the member).
        bytes memory inner = abi.encodeCall(OperatorBatchExecutor.execute, (_one(_hit(7))));
        vm.expectEmit(true, true, true, true, operator);
        emit OperatorBatchExecutor.CallFailed(
            0, abi.encodeWithSelector(OperatorBatchExecutor.Unauthorized.selector, address(failer))
        );
        uint256 failures = _execute(_one(_call(address(failer), abi.encodeCall(Failer.reenter, (inner)))));
        assertEq(failures, 1);
        assertEq(callLog.count(), 0);
    }

    // --- ordering and isolation ---

    function test_execute_runsCallsInOrderAsTheEoa() public {
        uint256 failures = _execute(_three(_hit(10), _hit(20), _hit(30)));
        assertEq(failures, 0);
        assertEq(callLog.count(), 3);
        for (uint256 i; i < 3; ++i) {
            assertEq(callLog.tags(i), (i + 1) * 10);
            assertEq(callLog.senders(i), operator, "msg.sender of each call is the EOA");
        }
    }

    function test_execute_isolatedFailureEmitsExactRevertDataAndOthersApply() public {
        vm.expectEmit(true, true, true, true, operator);
        emit OperatorBatchExecutor.CallFailed(1, abi.encodeWithSelector(Failer.Boom.selector, 42, operator));
        uint256 failures = _execute(_three(_hit(1), _boom(42), _hit(3)));
        assertEq(failures, 1);
        assertEq(callLog.count(), 2);
        assertEq(callLog.tags(0), 1);
        assertEq(callLog.tags(1), 3);
    }

    function test_execute_returnsFailureCount() public {
        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](5);
        calls[0] = _boom(0);
        calls[1] = _hit(1);
        calls[2] = _boom(2);
        calls[3] = _boom(3);
        calls[4] = _hit(4);
        vm.recordLogs();
        assertEq(_execute(calls), 3);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 3);
        uint256[3] memory expected = [uint256(0), 2, 3];
        for (uint256 i; i < 3; ++i) {
            assertEq(logs[i].emitter, operator);
            assertEq(logs[i].topics[0], OperatorBatchExecutor.CallFailed.selector);
            assertEq(uint256(logs[i].topics[1]), expected[i]);
            assertEq(
                abi.decode(logs[i].data, (bytes)), abi.encodeWithSelector(Failer.Boom.selector, expected[i], operator)
            );
        }
    }

    function test_execute_successEmitsNothing() public {
        vm.recordLogs();
        _execute(_three(_hit(1), _hit(2), _hit(3)));
        assertEq(vm.getRecordedLogs().length, 0);
    }

    function test_execute_emptyBatchReturnsZero() public {
        assertEq(_execute(new OperatorBatchExecutor.Call[](0)), 0);
    }

    function test_execute_targetWithoutCodeFailsWithNoCode() public {
        address nothing = makeAddr("nothing");
        vm.expectEmit(true, true, true, true, operator);
        emit OperatorBatchExecutor.CallFailed(1, abi.encodeWithSelector(OperatorBatchExecutor.NoCode.selector, nothing));
        assertEq(_execute(_three(_hit(1), _call(nothing, hex"12345678"), _hit(3))), 1);
        assertEq(callLog.count(), 2);
    }

    function test_execute_writesNoStorage() public {
        vm.record();
        _execute(_three(_hit(1), _boom(2), _hit(3)));
        (bytes32[] memory reads, bytes32[] memory writes) = vm.accesses(operator);
        assertEq(reads.length, 0, "no storage read in the EOA");
        assertEq(writes.length, 0, "no storage written in the EOA");
    }

    // --- revert data cap ---

    function _blobPrefix(uint256 n) internal pure returns (bytes memory b) {
        b = new bytes(n);
        for (uint256 i; i < n; ++i) {
            b[i] = bytes1(uint8(i));
        }
    }

    function _expectBlob(uint256 size, uint256 kept) internal {
        vm.expectEmit(true, true, true, true, operator);
        emit OperatorBatchExecutor.CallFailed(0, _blobPrefix(kept));
        assertEq(_execute(_one(_call(address(failer), abi.encodeCall(Failer.blob, (size))))), 1);
    }

    function test_execute_revertDataCappedAtMax() public {
        assertEq(batch.MAX_REVERT_DATA(), 260);
        _expectBlob(100_000, 260);
    }

    function test_execute_revertDataAtOrBelowCapPassesWhole() public {
        _expectBlob(260, 260);
        _expectBlob(259, 259);
        _expectBlob(0, 0);
    }

    function test_execute_hugeRevertDataDoesNotStarveLaterCalls() public {
        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](4);
        for (uint256 i; i < 3; ++i) {
            calls[i] = _call(address(failer), abi.encodeCall(Failer.blob, (100_000)));
        }
        calls[3] = _hit(4);
        vm.recordLogs();
        assertEq(_execute(calls), 3);
        assertEq(callLog.count(), 1, "the call after the blobs still ran");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < 3; ++i) {
            assertEq(abi.decode(logs[i].data, (bytes)).length, 260);
        }
    }

    // --- executeAll ---

    function test_executeAll_runsEveryCall() public {
        _executeAll(_three(_hit(1), _hit(2), _hit(3)));
        assertEq(callLog.count(), 3);
    }

    function test_executeAll_firstFailureRevertsWholeBatch() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                OperatorBatchExecutor.CallReverted.selector,
                1,
                abi.encodeWithSelector(Failer.Boom.selector, 9, operator)
            )
        );
        _executeAll(_three(_hit(1), _boom(9), _hit(3)));
        assertEq(callLog.count(), 0, "the call before the failure was undone");
    }

    function test_executeAll_revertDataCapped() public {
        vm.expectRevert(abi.encodeWithSelector(OperatorBatchExecutor.CallReverted.selector, 0, _blobPrefix(260)));
        _executeAll(_one(_call(address(failer), abi.encodeCall(Failer.blob, (5000)))));
    }

    // --- receiving ---

    function test_receive_eoaStillAcceptsEth() public {
        vm.deal(stranger, 1 ether);
        vm.prank(stranger);
        (bool ok,) = operator.call{value: 1 ether}("");
        assertTrue(ok);
        assertEq(operator.balance, 1 ether);
    }

    function test_execute_isNotPayable() public {
        vm.deal(operator, 1 ether);
        vm.prank(operator, operator);
        (bool ok,) = operator.call{value: 1}(abi.encodeCall(OperatorBatchExecutor.execute, (_one(_hit(1)))));
        assertFalse(ok);
    }

    function test_unknownSelectorReverts() public {
        // No fallback: e.g. an ERC-721 safe transfer's onERC721Received check fails instead of
        // landing a token the operator's tooling does not expect.
        vm.prank(stranger);
        (bool ok,) = operator.call(abi.encodeWithSelector(0x150b7a02, stranger, stranger, 1, ""));
        assertFalse(ok);
    }
}

/// @notice Batches through our AuthCaptureEscrow, the delegated EOA being `paymentInfo.operator`.
contract OperatorBatchExecutorEscrowTest is ExecutorTestBase {
    function _info(uint256 salt) internal view returns (AuthCaptureEscrow.PaymentInfo memory info) {
        info = _defaultInfo();
        info.salt = salt;
    }

    function _authorizeCall(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount)
        internal
        returns (OperatorBatchExecutor.Call memory)
    {
        usdc.mint(info.payer, info.maxAmount);
        bytes memory signature = _signERC3009(info, PAYER_PK);
        return
            _call(
                address(escrow), abi.encodeCall(escrow.authorize, (info, amount, address(erc3009Collector), signature))
            );
    }

    function _captureCall(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount, uint16 feeBps)
        internal
        view
        returns (OperatorBatchExecutor.Call memory)
    {
        return _call(address(escrow), abi.encodeCall(escrow.capture, (info, amount, feeBps, info.feeReceiver)));
    }

    function _voidCall(AuthCaptureEscrow.PaymentInfo memory info)
        internal
        view
        returns (OperatorBatchExecutor.Call memory)
    {
        return _call(address(escrow), abi.encodeCall(escrow.void, (info)));
    }

    function _refundCall(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount)
        internal
        view
        returns (OperatorBatchExecutor.Call memory)
    {
        return _call(address(escrow), abi.encodeCall(escrow.refund, (info, amount, address(refundCollector), "")));
    }

    function test_escrow_nAuthorizesInOneExecute() public {
        uint256 n = 8;
        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](n);
        for (uint256 i; i < n; ++i) {
            calls[i] = _authorizeCall(_info(100 + i), 1e6 * (i + 1));
        }
        vm.recordLogs();
        assertEq(_execute(calls), 0);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.PaymentAuthorized.selector), n);
        assertEq(_countLogs(logs, operator, OperatorBatchExecutor.CallFailed.selector), 0);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            _assertState(escrow.getHash(_info(100 + i)), true, 1e6 * (i + 1), 0);
            total += 1e6 * (i + 1);
        }
        assertEq(usdc.balanceOf(_store()), total);
    }

    function test_escrow_mixedAuthorizeCaptureVoidRefundChargeInOneExecute() public {
        AuthCaptureEscrow.PaymentInfo memory a = _info(1);
        AuthCaptureEscrow.PaymentInfo memory b = _info(2);
        AuthCaptureEscrow.PaymentInfo memory c = _info(3);
        AuthCaptureEscrow.PaymentInfo memory d = _info(4);
        AuthCaptureEscrow.PaymentInfo memory e = _info(5);
        AuthCaptureEscrow.PaymentInfo memory f = _info(6);
        bytes32 ha = _authorize(a, 40e6);
        bytes32 hb = _authorize(b, 60e6);
        bytes32 hc = _authorize(c, 30e6);
        bytes32 hd = _authorizeAndCapture(d, 50e6, 50e6, 0);
        _fundRefunds(20e6);
        uint256 payerBefore = usdc.balanceOf(payer);

        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](6);
        calls[0] = _captureCall(a, 40e6, 100);
        calls[1] = _captureCall(b, 25e6, 0);
        calls[2] = _voidCall(c);
        calls[3] = _refundCall(d, 20e6);
        calls[4] = _authorizeCall(e, 10e6);
        usdc.mint(payer, f.maxAmount);
        calls[5] = _call(
            address(escrow),
            abi.encodeCall(
                escrow.charge, (f, 5e6, address(erc3009Collector), _signERC3009(f, PAYER_PK), 100, feeReceiver)
            )
        );
        uint256 payerMinted = usdc.balanceOf(payer) - payerBefore; // e's and f's mints

        assertEq(_execute(calls), 0);

        _assertState(ha, true, 0, 40e6);
        _assertState(hb, true, 35e6, 25e6);
        _assertState(hc, true, 0, 0);
        _assertState(hd, true, 0, 30e6);
        _assertState(escrow.getHash(e), true, 10e6, 0);
        _assertState(escrow.getHash(f), true, 0, 5e6);
        // Payer: got the void (30) and the refund (20) back, paid the new authorize (10) and charge (5).
        assertEq(usdc.balanceOf(payer), payerBefore + payerMinted + 30e6 + 20e6 - 10e6 - 5e6);
        assertEq(usdc.balanceOf(operator), 0, "the refund came out of the EOA's own approved balance");
        assertEq(usdc.balanceOf(_store()), 35e6 + 10e6);
    }

    function test_escrow_failingMembersReportedOthersApply() public {
        AuthCaptureEscrow.PaymentInfo memory a = _info(1);
        AuthCaptureEscrow.PaymentInfo memory b = _info(2);
        AuthCaptureEscrow.PaymentInfo memory expired = _info(3);
        expired.preApprovalExpiry = uint48(block.timestamp - 1);
        AuthCaptureEscrow.PaymentInfo memory foreign = _info(4);
        foreign.operator = operator2;
        bytes32 ha = _authorizeAndCapture(a, 40e6, 40e6, 0); // fully captured already
        bytes32 hb = _authorize(b, 60e6);

        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](5);
        calls[0] = _captureCall(a, 1e6, 0); // nothing left to capture
        calls[1] = _captureCall(b, 60e6, 100);
        calls[2] = _authorizeCall(expired, 1e6); // pre-approval expired
        calls[3] = _authorizeCall(a, 1e6); // already collected
        calls[4] = _voidCall(foreign); // someone else's payment: msg.sender is our EOA, not operator2

        vm.expectEmit(true, true, true, true, operator);
        emit OperatorBatchExecutor.CallFailed(
            0, abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, ha, 0, 1e6)
        );
        _expectPaymentCaptured(hb, 60e6, 100, feeReceiver);
        vm.expectEmit(true, true, true, true, operator);
        emit OperatorBatchExecutor.CallFailed(
            2,
            abi.encodeWithSelector(
                AuthCaptureEscrow.AfterPreApprovalExpiry.selector, uint48(block.timestamp), expired.preApprovalExpiry
            )
        );
        vm.expectEmit(true, true, true, true, operator);
        emit OperatorBatchExecutor.CallFailed(
            3, abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, ha)
        );
        vm.expectEmit(true, true, true, true, operator);
        emit OperatorBatchExecutor.CallFailed(
            4, abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, operator, operator2)
        );
        assertEq(_execute(calls), 4);

        _assertState(ha, true, 0, 40e6);
        _assertState(hb, true, 0, 60e6);
        _assertState(escrow.getHash(expired), false, 0, 0);
    }

    function test_escrow_executeAllIsAtomic() public {
        AuthCaptureEscrow.PaymentInfo memory a = _info(1);
        AuthCaptureEscrow.PaymentInfo memory b = _info(2);
        bytes32 ha = _authorizeAndCapture(a, 40e6, 40e6, 0);
        bytes32 hb = _authorize(b, 60e6);

        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](2);
        calls[0] = _captureCall(b, 60e6, 100);
        calls[1] = _captureCall(a, 1e6, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                OperatorBatchExecutor.CallReverted.selector,
                1,
                abi.encodeWithSelector(AuthCaptureEscrow.InsufficientAuthorization.selector, ha, 0, 1e6)
            )
        );
        _executeAll(calls);
        _assertState(hb, true, 60e6, 0);
    }

    function test_escrow_strangerCannotBatchAsOperator() public {
        AuthCaptureEscrow.PaymentInfo memory b = _info(2);
        bytes32 hb = _authorize(b, 60e6);
        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](1);
        calls[0] = _voidCall(b);
        vm.prank(stranger, stranger);
        vm.expectRevert(abi.encodeWithSelector(OperatorBatchExecutor.Unauthorized.selector, stranger));
        batch.execute(calls);
        _assertState(hb, true, 60e6, 0);
    }
}

/// @notice The same executor code etched at the EOA (how a pre-Prague toolchain would simulate the
///         delegation): the behaviour does not depend on the delegation mechanism.
contract OperatorBatchExecutorEtchTest is UnitTestBase {
    function test_etchedExecutor_batchesAsTheEoa() public {
        OperatorBatchExecutor implementation = new OperatorBatchExecutor();
        vm.etch(operator, address(implementation).code);
        AuthCaptureEscrow.PaymentInfo memory a = _defaultInfo();
        bytes32 ha = _authorize(a, 40e6);
        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](2);
        calls[0] =
            OperatorBatchExecutor.Call(address(escrow), abi.encodeCall(escrow.capture, (a, 10e6, 0, feeReceiver)));
        calls[1] = OperatorBatchExecutor.Call(address(escrow), abi.encodeCall(escrow.void, (a)));
        vm.prank(operator, operator);
        assertEq(OperatorBatchExecutor(payable(operator)).execute(calls), 0);
        _assertState(ha, true, 0, 10e6);
    }
}
