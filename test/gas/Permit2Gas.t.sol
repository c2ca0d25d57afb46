// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {GasBenchmarkBase} from "./GasBenchmark.t.sol";
import {Permit2Fixture} from "../base/Permit2Fixture.sol";
import {Permit2PaymentCollector} from "../../contracts/collectors/Permit2PaymentCollector.sol";

/// @notice authorize and charge through the Permit2 collector, in the shape of the main
///         benchmarks (same payment, same warm-up through ERC-3009), for comparison with the
///         ERC-3009 path. The payer has approved Permit2 once; every payment's nonce lands in a
///         fresh word of Permit2's nonce bitmap (the nonce is a hash), so each pays that SSTORE.
abstract contract Permit2GasBase is GasBenchmarkBase, Permit2Fixture {
    Permit2PaymentCollector internal permit2Collector;
    bytes internal permit2Signature;

    function setUp() public virtual override {
        super.setUp();
        _installPermit2();
        permit2Collector = new Permit2PaymentCollector(address(escrow), PERMIT2, address(multicall3));
        vm.prank(payer);
        usdc.approve(PERMIT2, type(uint256).max);
        permit2Signature =
            _signPermit2(_permit2Terms(paymentInfo, address(permit2Collector), address(escrow)), PAYER_PK);
    }
}

contract Permit2AuthorizeGas is Permit2GasBase {
    function test_permit2gas_authorize() public {
        vm.prank(operator);
        escrow.authorize(paymentInfo, BENCHMARK_AMOUNT, address(permit2Collector), permit2Signature);
    }
}

contract Permit2ChargeGas is Permit2GasBase {
    function test_permit2gas_charge() public {
        vm.prank(operator);
        escrow.charge(
            paymentInfo, BENCHMARK_AMOUNT, address(permit2Collector), permit2Signature, BENCHMARK_FEE_BPS, feeReceiver
        );
    }
}
