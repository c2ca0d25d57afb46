// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";

import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {OperatorBatchExecutor} from "../../contracts/batch/OperatorBatchExecutor.sol";
import {Multicall3} from "../../contracts/dev/Multicall3.sol";
import {TestUSDC} from "../../contracts/dev/TestUSDC.sol";
import {receiveAuthorizationDigest, standardPaymentInfo} from "../base/PaymentFixtures.sol";

/// @dev Cheatcodes forge 1.7.1 has that the bundled forge-std's `Vm` does not declare.
interface VmEvmVersionCanonical {
    function setEvmVersion(string calldata evm) external;
}

/// @notice The executor driving the CANONICAL Commerce Payments escrow (base/commerce-payments v1.0,
///         compiled in ../shared/canonical, deployed here from its creation bytecode), which has no
///         batch entry points and requires `msg.sender == paymentInfo.operator` on every call.
///         The operator EOA delegates to the executor (EIP-7702) and batches authorizes, then
///         captures, in a transaction to itself.
///         The canonical escrow's ABI matches ours for these calls, so our `AuthCaptureEscrow` type
///         encodes the calldata; only the deployed code is the reference one.
contract OperatorBatchExecutorCanonicalTest is Test {
    string internal constant CANONICAL = "../shared/canonical/v1.0/";
    uint256 internal constant PAYER_PK = 0xA11CE;
    uint256 internal constant OPERATOR_PK = 0x0B0B;
    uint256 internal constant N = 5;

    TestUSDC internal usdc;
    address internal escrow; // the canonical AuthCaptureEscrow
    address internal collector; // the canonical ERC3009PaymentCollector
    OperatorBatchExecutor internal batch;

    address internal payer;
    address internal operator;
    address internal receiver = makeAddr("receiver");
    address internal feeReceiver = makeAddr("feeReceiver");

    function _creationCode(string memory name) internal view returns (bytes memory) {
        string memory json = vm.readFile(string.concat(CANONICAL, name, ".json"));
        return vm.parseJsonBytes(json, ".bytecode");
    }

    function _deploy(bytes memory initCode) internal returns (address deployed) {
        assembly {
            deployed := create(0, add(initCode, 0x20), mload(initCode))
        }
        require(deployed != address(0) && deployed.code.length != 0, "deploy failed");
    }

    function setUp() public {
        vm.warp(1_767_225_600);
        VmEvmVersionCanonical(address(vm)).setEvmVersion("prague");
        payer = vm.addr(PAYER_PK);
        operator = vm.addr(OPERATOR_PK);

        usdc = new TestUSDC("USD Coin", "USDC", "2", address(this));
        address multicall3 = address(new Multicall3());
        escrow = _deploy(_creationCode("AuthCaptureEscrow"));
        collector = _deploy(abi.encodePacked(_creationCode("ERC3009PaymentCollector"), abi.encode(escrow, multicall3)));

        vm.signAndAttachDelegation(address(new OperatorBatchExecutor()), OPERATOR_PK);
        (bool ok,) = operator.call(""); // the next call carries the authorization
        assertTrue(ok);
        batch = OperatorBatchExecutor(payable(operator));
    }

    function _info(uint256 salt) internal view returns (AuthCaptureEscrow.PaymentInfo memory) {
        return standardPaymentInfo(operator, payer, receiver, address(usdc), 10e6, feeReceiver, salt);
    }

    function _hash(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes32) {
        return AuthCaptureEscrow(escrow).getHash(info);
    }

    /// @dev The payer's ReceiveWithAuthorization for the canonical collector (nonce: the canonical
    ///      escrow's payer-agnostic hash).
    function _sign(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(PAYER_PK, receiveAuthorizationDigest(usdc, escrow, collector, info));
        return abi.encodePacked(r, s, v);
    }

    function _state(bytes32 h) internal view returns (bool collected, uint120 capturable, uint120 refundable) {
        return AuthCaptureEscrow(escrow).paymentState(h);
    }

    function _execute(OperatorBatchExecutor.Call[] memory calls) internal returns (uint256) {
        vm.prank(operator, operator);
        return batch.execute(calls);
    }

    function test_canonical_batchOfAuthorizesThenCaptures() public {
        usdc.mint(payer, N * 10e6);
        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](N);
        for (uint256 i; i < N; ++i) {
            AuthCaptureEscrow.PaymentInfo memory info = _info(i);
            calls[i] = OperatorBatchExecutor.Call(
                escrow, abi.encodeCall(AuthCaptureEscrow.authorize, (info, 10e6, collector, _sign(info)))
            );
        }
        vm.recordLogs();
        assertEq(_execute(calls), 0);
        assertEq(_countCallFailed(vm.getRecordedLogs()), 0);
        address store = AuthCaptureEscrow(escrow).getTokenStore(operator);
        assertEq(usdc.balanceOf(store), N * 10e6);
        for (uint256 i; i < N; ++i) {
            (bool collected, uint120 capturable,) = _state(_hash(_info(i)));
            assertTrue(collected);
            assertEq(capturable, 10e6);
        }

        for (uint256 i; i < N; ++i) {
            calls[i] = OperatorBatchExecutor.Call(
                escrow, abi.encodeCall(AuthCaptureEscrow.capture, (_info(i), 10e6, 100, feeReceiver))
            );
        }
        assertEq(_execute(calls), 0);
        assertEq(usdc.balanceOf(store), 0);
        assertEq(usdc.balanceOf(receiver), N * 9.9e6);
        assertEq(usdc.balanceOf(feeReceiver), N * 0.1e6);
        for (uint256 i; i < N; ++i) {
            (, uint120 capturable, uint120 refundable) = _state(_hash(_info(i)));
            assertEq(capturable, 0);
            assertEq(refundable, 10e6);
        }
    }

    function test_canonical_failingMemberReportsCanonicalErrorOthersApply() public {
        usdc.mint(payer, 2 * 10e6);
        AuthCaptureEscrow.PaymentInfo memory a = _info(1);
        AuthCaptureEscrow.PaymentInfo memory b = _info(2);
        AuthCaptureEscrow.PaymentInfo memory foreign = _info(3);
        foreign.operator = makeAddr("otherOperator");

        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](4);
        calls[0] = OperatorBatchExecutor.Call(
            escrow, abi.encodeCall(AuthCaptureEscrow.authorize, (a, 10e6, collector, _sign(a)))
        );
        calls[1] =
            OperatorBatchExecutor.Call(escrow, abi.encodeCall(AuthCaptureEscrow.capture, (a, 4e6, 0, feeReceiver)));
        // The canonical escrow checks msg.sender == paymentInfo.operator: the sender is our EOA.
        calls[2] = OperatorBatchExecutor.Call(escrow, abi.encodeCall(AuthCaptureEscrow.void, (foreign)));
        calls[3] = OperatorBatchExecutor.Call(
            escrow, abi.encodeCall(AuthCaptureEscrow.authorize, (b, 10e6, collector, _sign(b)))
        );

        vm.expectEmit(true, true, true, true, operator);
        emit OperatorBatchExecutor.CallFailed(
            2, abi.encodeWithSelector(AuthCaptureEscrow.InvalidSender.selector, operator, foreign.operator)
        );
        assertEq(_execute(calls), 1);

        (, uint120 capturable, uint120 refundable) = _state(_hash(a));
        assertEq(capturable, 6e6);
        assertEq(refundable, 4e6);
        (bool collected,,) = _state(_hash(b));
        assertTrue(collected);
    }

    function _countCallFailed(Vm.Log[] memory logs) internal view returns (uint256 n) {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == operator && logs[i].topics[0] == OperatorBatchExecutor.CallFailed.selector) ++n;
        }
    }
}
