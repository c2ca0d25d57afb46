// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowTestBase} from "../base/EscrowTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

contract SmokeTest is EscrowTestBase {
    function test_fullLifecycle() public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 100e6);
        bytes32 h = _authorize(info, 60e6);
        assertEq(usdc.balanceOf(payer), 40e6);
        assertEq(usdc.balanceOf(escrow.getTokenStore(operator)), 60e6);
        vm.prank(operator);
        escrow.capture(info, 50e6, 100, feeReceiver);
        assertEq(usdc.balanceOf(receiver), 49.5e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.5e6);
        _fundRefunds(20e6);
        vm.prank(operator);
        escrow.refund(info, 20e6, address(refundCollector), "");
        vm.prank(operator);
        escrow.void(info);
        (bool c, uint120 cap, uint120 ref) = _state(h);
        assertTrue(c);
        assertEq(cap, 0);
        assertEq(ref, 30e6);
        assertEq(usdc.balanceOf(payer), 40e6 + 20e6 + 10e6);
        assertEq(escrow.PAYMENT_INFO_TYPEHASH(), 0xae68ac7ce30c86ece8196b61a7c486d8f0061f575037fbd34e7fe4e2820c6591);
    }
}
