// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SSTORE2} from "solady/utils/SSTORE2.sol";

import {GasBenchmarkBase} from "./GasBenchmark.t.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {OperatorBatchExecutor} from "../../contracts/batch/OperatorBatchExecutor.sol";

/// @notice Gas of escrow calls batched through the operator's EIP-7702 delegation to
///         OperatorBatchExecutor, next to the same calls made one by one, in the fixture of
///         GasBenchmark.t.sol (100e6 each, 1% fee, ERC-3009 collector, warm TokenStore and balances).
///
///         Every benchmark sends calldata prepared in set-up and kept as contract code (SSTORE2), so
///         the direct and the batched variants carry the same small fixture cost (one EXTCODECOPY)
///         instead of thousands of gas of SLOADs. Like every `forge snapshot` figure, these exclude
///         the transaction's intrinsic cost (21,000 base + calldata bytes), which a batch pays once.
///
///         Names start with `test_batchgas_`, which tools/gas-check.js (`test_benchmark_<op>`) ignores.
abstract contract BatchExecutorGasBase is GasBenchmarkBase {
    uint256 internal constant N = 10;

    AuthCaptureEscrow.PaymentInfo[] internal infos;

    function setUp() public virtual override {
        super.setUp();
        // A real EIP-7702 delegation of the operator's EOA (forge 1.7.1 honours it under cancun).
        vm.signAndAttachDelegation(address(new OperatorBatchExecutor()), OPERATOR_PK);
        (bool ok,) = operator.call(""); // the next call carries the authorization
        require(ok && operator.code.length == 23, "delegation");
        for (uint256 i; i < N; ++i) {
            AuthCaptureEscrow.PaymentInfo memory info = _benchmarkPaymentInfo(BENCHMARK_AMOUNT);
            info.salt = 100 + i;
            infos.push(info);
        }
    }

    function _authorizeData(uint256 i) internal view returns (bytes memory) {
        AuthCaptureEscrow.PaymentInfo memory info = infos[i];
        return abi.encodeCall(
            AuthCaptureEscrow.authorize,
            (info, BENCHMARK_AMOUNT, address(erc3009Collector), _signERC3009(info, PAYER_PK))
        );
    }

    function _captureData(uint256 i) internal view returns (bytes memory) {
        return abi.encodeCall(AuthCaptureEscrow.capture, (infos[i], BENCHMARK_AMOUNT, BENCHMARK_FEE_BPS, feeReceiver));
    }

    /// @dev `execute` calldata for the first `n` members built by `member`.
    function _executeData(uint256 n, function(uint256) internal view returns (bytes memory) member)
        internal
        view
        returns (bytes memory)
    {
        OperatorBatchExecutor.Call[] memory calls = new OperatorBatchExecutor.Call[](n);
        for (uint256 i; i < n; ++i) {
            calls[i] = OperatorBatchExecutor.Call({target: address(escrow), data: member(i)});
        }
        return abi.encodeCall(OperatorBatchExecutor.execute, (calls));
    }

    /// @dev Sends the stored calldata to `to` as the operator (a transaction from the EOA). An
    ///      `execute` must report no failures.
    function _send(address to, address calldataPointer) internal {
        bytes memory data = SSTORE2.read(calldataPointer);
        vm.prank(operator, operator);
        (bool ok, bytes memory ret) = to.call(data);
        require(ok, "call reverted");
        if (to == operator) require(abi.decode(ret, (uint256)) == 0, "a member failed");
    }
}

contract BatchExecutorAuthorizeGas is BatchExecutorGasBase {
    address internal direct1;
    address internal execute1;
    address internal execute10;

    function setUp() public override {
        super.setUp();
        direct1 = SSTORE2.write(_authorizeData(0));
        execute1 = SSTORE2.write(_executeData(1, _authorizeData));
        execute10 = SSTORE2.write(_executeData(N, _authorizeData));
    }

    /// @dev Baseline: one authorize sent straight to the escrow.
    function test_batchgas_authorizeDirect1() public {
        _send(address(escrow), direct1);
    }

    function test_batchgas_authorize1() public {
        _send(operator, execute1);
    }

    function test_batchgas_authorize10() public {
        _send(operator, execute10);
    }
}

contract BatchExecutorCaptureGas is BatchExecutorGasBase {
    address internal direct1;
    address internal execute10;
    address internal captureBatch10;

    function setUp() public override {
        super.setUp();
        AuthCaptureEscrow.CaptureRequest[] memory requests = new AuthCaptureEscrow.CaptureRequest[](N);
        for (uint256 i; i < N; ++i) {
            AuthCaptureEscrow.PaymentInfo memory info = infos[i];
            bytes memory signature = _signERC3009(info, PAYER_PK);
            vm.prank(operator);
            escrow.authorize(info, BENCHMARK_AMOUNT, address(erc3009Collector), signature);
            requests[i] = AuthCaptureEscrow.CaptureRequest({
                paymentInfo: info, amount: BENCHMARK_AMOUNT, feeBps: BENCHMARK_FEE_BPS, feeReceiver: feeReceiver
            });
        }
        direct1 = SSTORE2.write(_captureData(0));
        execute10 = SSTORE2.write(_executeData(N, _captureData));
        captureBatch10 = SSTORE2.write(abi.encodeCall(AuthCaptureEscrow.captureBatch, (requests)));
    }

    /// @dev Baseline: one capture sent straight to the escrow.
    function test_batchgas_captureDirect1() public {
        _send(address(escrow), direct1);
    }

    function test_batchgas_capture10() public {
        _send(operator, execute10);
    }

    /// @dev For comparison: our escrow's own all-or-nothing `captureBatch` (not on the canonical one).
    function test_batchgas_captureBatch10() public {
        _send(address(escrow), captureBatch10);
    }
}
