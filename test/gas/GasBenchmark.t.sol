// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowTestBase} from "../base/EscrowTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

/// @notice Gas benchmarks of the same shape as the reference contract's own: 100e6 amount, 1% fee,
///         ERC-3009 collector, every expiry at type(uint48).max, the PaymentInfo kept in storage, and
///         a warm-up authorize + capture first so the operator's TokenStore exists and the receiver
///         and fee receiver already hold tokens; the payer holds a standing balance. `forge snapshot` under FOUNDRY_PROFILE=gas (the
///         deploy compiler settings) writes `.gas-snapshot`.
abstract contract GasBenchmarkBase is EscrowTestBase {
    uint120 internal constant BENCHMARK_AMOUNT = 100e6;
    uint16 internal constant BENCHMARK_FEE_BPS = 100;

    AuthCaptureEscrow.PaymentInfo internal paymentInfo;
    bytes internal signature;

    function setUp() public virtual override {
        super.setUp();
        // The payer holds a standing balance, as in the reference fixture.
        usdc.mint(payer, 1000e9);

        AuthCaptureEscrow.PaymentInfo memory warmup = _benchmarkPaymentInfo(1e6);
        warmup.salt = 1;
        _authorize(warmup, 1e6);
        vm.prank(operator);
        escrow.capture(warmup, 1e6, BENCHMARK_FEE_BPS, feeReceiver);

        paymentInfo = _benchmarkPaymentInfo(BENCHMARK_AMOUNT);
        signature = _signERC3009(paymentInfo, PAYER_PK);
        usdc.mint(payer, BENCHMARK_AMOUNT);
    }

    function _benchmarkPaymentInfo(uint120 amount) internal view returns (AuthCaptureEscrow.PaymentInfo memory info) {
        info = _paymentInfo(payer, amount);
        info.preApprovalExpiry = type(uint48).max;
        info.authorizationExpiry = type(uint48).max;
        info.refundExpiry = type(uint48).max;
        info.minFeeBps = BENCHMARK_FEE_BPS;
        info.maxFeeBps = BENCHMARK_FEE_BPS;
        info.salt = 2;
    }

    function _authorizeBenchmarkPayment() internal {
        vm.prank(operator);
        escrow.authorize(paymentInfo, BENCHMARK_AMOUNT, address(erc3009Collector), signature);
    }
}

contract AuthorizeGasBenchmark is GasBenchmarkBase {
    function test_benchmark_authorize() public {
        vm.prank(operator);
        escrow.authorize(paymentInfo, BENCHMARK_AMOUNT, address(erc3009Collector), signature);
    }
}

contract ChargeGasBenchmark is GasBenchmarkBase {
    function test_benchmark_charge() public {
        vm.prank(operator);
        escrow.charge(
            paymentInfo, BENCHMARK_AMOUNT, address(erc3009Collector), signature, BENCHMARK_FEE_BPS, feeReceiver
        );
    }
}

contract CaptureGasBenchmark is GasBenchmarkBase {
    function setUp() public override {
        super.setUp();
        _authorizeBenchmarkPayment();
    }

    function test_benchmark_capture() public {
        vm.prank(operator);
        escrow.capture(paymentInfo, BENCHMARK_AMOUNT, BENCHMARK_FEE_BPS, feeReceiver);
    }
}

contract VoidGasBenchmark is GasBenchmarkBase {
    function setUp() public override {
        super.setUp();
        _authorizeBenchmarkPayment();
    }

    function test_benchmark_void() public {
        vm.prank(operator);
        escrow.void(paymentInfo);
    }
}

contract ReclaimGasBenchmark is GasBenchmarkBase {
    function setUp() public override {
        super.setUp();
        _authorizeBenchmarkPayment();
        vm.warp(paymentInfo.authorizationExpiry);
    }

    function test_benchmark_reclaim() public {
        vm.prank(payer);
        escrow.reclaim(paymentInfo);
    }
}

contract RefundGasBenchmark is GasBenchmarkBase {
    function setUp() public override {
        super.setUp();
        _authorizeBenchmarkPayment();
        vm.prank(operator);
        escrow.capture(paymentInfo, BENCHMARK_AMOUNT, BENCHMARK_FEE_BPS, feeReceiver);
        _fundRefunds(BENCHMARK_AMOUNT);
    }

    function test_benchmark_refund() public {
        vm.prank(operator);
        escrow.refund(paymentInfo, BENCHMARK_AMOUNT, address(refundCollector), "");
    }
}
