// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenStore} from "../../contracts/TokenStore.sol";

contract TokenStoreTest is UnitTestBase {
    TokenStore internal store;
    TokenStore internal implementation;

    function setUp() public override {
        super.setUp();
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _authorizeAndCapture(info, 80e6, 10e6, 0); // deploys the clone, 70 stays held
        store = TokenStore(_store());
        implementation = TokenStore(escrow.tokenStoreImplementation());
        usdc.mint(address(implementation), 1e6);
    }

    function test_authCaptureEscrow_isTheEscrow_onCloneAndImplementation() public view {
        assertEq(store.authCaptureEscrow(), address(escrow));
        assertEq(implementation.authCaptureEscrow(), address(escrow));
    }

    function test_sendTokens_reverts_OnlyAuthCaptureEscrow_when_calledByOperator() public {
        _assertSendTokensRefused(store, operator, operator);
    }

    function test_sendTokens_reverts_OnlyAuthCaptureEscrow_when_calledByStranger() public {
        _assertSendTokensRefused(store, stranger, stranger);
    }

    function test_sendTokens_reverts_OnlyAuthCaptureEscrow_on_implementation() public {
        _assertSendTokensRefused(implementation, stranger, stranger);
    }

    function test_sendTokensWithFee_reverts_OnlyAuthCaptureEscrow_when_calledByOperator() public {
        _expectRevertFrom(operator, abi.encodeWithSelector(TokenStore.OnlyAuthCaptureEscrow.selector));
        store.sendTokensWithFee(address(usdc), operator, 1, operator, 1);
    }

    function test_sendTokensWithFee_reverts_OnlyAuthCaptureEscrow_on_implementation() public {
        _expectRevertFrom(payer, abi.encodeWithSelector(TokenStore.OnlyAuthCaptureEscrow.selector));
        implementation.sendTokensWithFee(address(usdc), payer, 1, payer, 1);
    }

    function test_sendTokens_byEscrow_transfersAndReturnsTrue() public {
        vm.prank(address(escrow));
        assertTrue(store.sendTokens(address(usdc), stranger, 5e6));
        assertEq(usdc.balanceOf(stranger), 5e6);
        assertEq(usdc.balanceOf(address(store)), 65e6);
    }

    function test_sendTokensWithFee_byEscrow_paysBoth() public {
        vm.prank(address(escrow));
        assertTrue(store.sendTokensWithFee(address(usdc), feeReceiver, 1e6, stranger, 2e6));
        assertEq(usdc.balanceOf(feeReceiver), 1e6);
        assertEq(usdc.balanceOf(stranger), 2e6);
    }

    function test_sendTokensWithFee_byEscrow_skipsZeroAmounts() public {
        vm.recordLogs();
        vm.prank(address(escrow));
        assertTrue(store.sendTokensWithFee(address(usdc), feeReceiver, 0, stranger, 0));
        assertEq(vm.getRecordedLogs().length, 0, "no zero-value transfers");
        vm.prank(address(escrow));
        store.sendTokensWithFee(address(usdc), address(0), 0, stranger, 3e6);
        assertEq(usdc.balanceOf(stranger), 3e6);
    }

    /// @dev The token's own error comes through unchanged (SafeERC20 semantics).
    function test_sendTokens_reverts_withTokensInsufficientBalance_when_storeLacksBalance() public {
        vm.prank(address(escrow));
        vm.expectRevert(abi.encodeWithSignature("InsufficientBalance()"));
        store.sendTokens(address(usdc), stranger, 71e6);
    }

    function test_anotherEscrowCannotMoveThisEscrowsStore() public {
        _assertSendTokensRefused(store, address(new AuthCaptureEscrow()), stranger);
    }

    /// @dev `caller` (not the escrow) cannot make `target` send tokens to `to`.
    function _assertSendTokensRefused(TokenStore target, address caller, address to) internal {
        _expectRevertFrom(caller, abi.encodeWithSelector(TokenStore.OnlyAuthCaptureEscrow.selector));
        target.sendTokens(address(usdc), to, 1e6);
    }
}
