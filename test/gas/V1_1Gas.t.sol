// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {GasBenchmarkBase} from "./GasBenchmark.t.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {AuthCaptureEscrowV1_1} from "../../contracts/AuthCaptureEscrowV1_1.sol";

/// @notice The main benchmarks' shape (same payment, same warm-up) on `AuthCaptureEscrowV1_1`:
///         its v1.1 `capture` / `charge` (fee as an amount: 1% of 100e6 = 1e6) and, for the cost
///         of the larger dispatcher, its inherited v1.0 `authorize` and `capture` (fee in bps).
abstract contract V1_1GasBase is GasBenchmarkBase {
    uint256 internal constant BENCHMARK_FEE_AMOUNT = 1e6;

    AuthCaptureEscrowV1_1 internal v11;

    function _deployEscrow() internal override returns (AuthCaptureEscrow) {
        v11 = new AuthCaptureEscrowV1_1();
        return v11;
    }
}

contract V1_1AuthorizeGas is V1_1GasBase {
    function test_v11gas_authorize() public {
        vm.prank(operator);
        escrow.authorize(paymentInfo, BENCHMARK_AMOUNT, address(erc3009Collector), signature);
    }
}

contract V1_1ChargeGas is V1_1GasBase {
    function test_v11gas_charge() public {
        vm.prank(operator);
        v11.charge(
            paymentInfo, BENCHMARK_AMOUNT, address(erc3009Collector), signature, BENCHMARK_FEE_AMOUNT, feeReceiver
        );
    }
}

contract V1_1CaptureGas is V1_1GasBase {
    function setUp() public override {
        super.setUp();
        _authorizeBenchmarkPayment();
    }

    function test_v11gas_capture() public {
        vm.prank(operator);
        v11.capture(paymentInfo, BENCHMARK_AMOUNT, BENCHMARK_FEE_AMOUNT, feeReceiver);
    }

    function test_v11gas_captureBps() public {
        vm.prank(operator);
        escrow.capture(paymentInfo, BENCHMARK_AMOUNT, BENCHMARK_FEE_BPS, feeReceiver);
    }
}
