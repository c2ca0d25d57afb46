// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {StdInvariant} from "forge-std/StdInvariant.sol";

import {EscrowTestBase} from "../base/EscrowTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {EscrowHandler} from "./EscrowHandler.sol";

/// @notice Stateful invariants of the escrow under random sequences of every operation, driven by
///         `EscrowHandler` across three operators, three payers, three receivers and two fee receivers.
///
///         With, for every payment P: collected(P) the amount authorized or charged, captured(P),
///         refunded(P), voided(P), reclaimed(P) the totals moved by those operations, the suite asserts
///         after every call:
///         (a) balanceOf(store(op)) == sum of capturableAmount over op's payments, for each operator;
///         (b) captured(P) <= collected(P) <= maxAmount, and
///             collected(P) == capturable(P) + captured(P) + voided(P) + reclaimed(P);
///         (c) refunded(P) <= captured(P) and refundable(P) == captured(P) - refunded(P);
///         (d) for each payer: minted - balance == sum over its payments of
///             collected - voided - reclaimed - refunded, hence never more than it authorized or charged;
///         (e) every Transfer out of a TokenStore went, from the store of the payment's own operator,
///             to that payment's payer, receiver or chosen fee receiver, for exactly the amount the
///             operation moves; receivers and fee receivers hold exactly what captures paid them,
///             collectors hold nothing, and total supply equals the sum over these known holders, so
///             no token went anywhere else;
///         (f) paymentState(hash) == (true, ghost capturable, ghost refundable) for every payment.
/// @dev The six properties are checked by one invariant function on purpose: forge runs a separate
///      campaign (runs x depth calls) for each invariant function, and one campaign is enough when
///      every property is asserted after every call.
contract EscrowInvariantsTest is EscrowTestBase {
    EscrowHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new EscrowHandler(escrow, usdc, erc3009Collector, preApprovalCollector, refundCollector);
        usdc.transferOwnership(address(handler)); // the handler mints payer and refund funds

        bytes4[] memory selectors = new bytes4[](9);
        selectors[0] = EscrowHandler.authorize.selector;
        selectors[1] = EscrowHandler.charge.selector;
        selectors[2] = EscrowHandler.capture.selector;
        selectors[3] = EscrowHandler.captureBatch.selector;
        selectors[4] = EscrowHandler.void.selector;
        selectors[5] = EscrowHandler.voidBatch.selector;
        selectors[6] = EscrowHandler.reclaim.selector;
        selectors[7] = EscrowHandler.refund.selector;
        selectors[8] = EscrowHandler.warp.selector;
        targetContract(address(handler));
        targetSelector(StdInvariant.FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    function invariant_escrowAccounting() public view {
        EscrowHandler.Audit memory a = handler.audit();
        _assertPaymentStates(a);
        _assertStoresHoldExactlyCapturable(a);
        _assertPayersNeverLoseMoreThanAuthorized(a);
        _assertTokensOnlyReachEntitledParties();
    }

    /// @dev (b), (c), (f), per payment (counted by the handler's one-pass audit).
    function _assertPaymentStates(EscrowHandler.Audit memory a) internal pure {
        assertEq(a.stateMismatches, 0, "(f) paymentState == (true, ghost capturable, ghost refundable)");
        assertEq(a.collectedOverMax, 0, "(b) collected <= maxAmount");
        assertEq(a.capturedOverCollected, 0, "(b) captured <= authorized");
        assertEq(a.collectedUnaccounted, 0, "(b) collected == capturable + captured + voided + reclaimed");
        assertEq(a.refundedOverCaptured, 0, "(c) refunded <= captured");
        assertEq(a.refundableUnaccounted, 0, "(c) refundable == captured - refunded");
    }

    /// @dev (a): each operator's TokenStore holds exactly the open holds of its own payments.
    function _assertStoresHoldExactlyCapturable(EscrowHandler.Audit memory a) internal view {
        for (uint256 o; o < 3; ++o) {
            assertEq(escrow.getTokenStore(handler.operators(o)), handler.stores(o), "store address is stable");
            assertEq(usdc.balanceOf(handler.stores(o)), a.heldByOperator[o], "(a) store balance == sum of capturable");
        }
    }

    /// @dev (d): exact net outflow per payer, bounded by what it authorized or charged.
    function _assertPayersNeverLoseMoreThanAuthorized(EscrowHandler.Audit memory a) internal view {
        for (uint256 k; k < 3; ++k) {
            address payer_ = handler.payers(k);
            uint256 balance = usdc.balanceOf(payer_);
            assertLe(balance, handler.ghostMinted(payer_), "(d) payer never receives more than it put in");
            uint256 outflow = handler.ghostMinted(payer_) - balance;
            assertEq(outflow, a.netCostByPayer[k], "(d) payer net outflow == collected - voided - reclaimed - refunded");
            assertLe(outflow, a.collectedByPayer[k], "(d) payer never loses more than it authorized or charged");
        }
    }

    /// @dev (e): tokens leave a store only towards the parties of the payment, and only as owed.
    function _assertTokensOnlyReachEntitledParties() internal view {
        assertEq(
            handler.ghostIllegalStoreOutflows(),
            0,
            "(e) store paid someone not entitled, or another operator's store moved"
        );
        assertEq(handler.ghostStoreFlowMismatches(), 0, "(e) store in/outflow differs from the operation's amount");

        for (uint256 k; k < 3; ++k) {
            address r = handler.receivers(k);
            assertEq(usdc.balanceOf(r), handler.ghostEntitled(r), "(e) receiver holds exactly its net captures");
            address op = handler.operators(k);
            assertEq(
                usdc.balanceOf(op),
                handler.ghostMinted(op) - handler.ghostRefundFunded(op),
                "(e) operator spent exactly its refunds"
            );
        }
        for (uint256 k; k < 2; ++k) {
            address f = handler.feeReceivers(k);
            assertEq(usdc.balanceOf(f), handler.ghostEntitled(f), "(e) fee receiver holds exactly its fees");
        }
        assertEq(usdc.balanceOf(address(erc3009Collector)), 0, "(e) ERC-3009 collector keeps nothing");
        assertEq(usdc.balanceOf(address(preApprovalCollector)), 0, "(e) pre-approval collector keeps nothing");
        assertEq(usdc.balanceOf(address(refundCollector)), 0, "(e) refund collector keeps nothing");
        assertEq(usdc.balanceOf(address(0)), 0, "(e) nothing sent to the zero address");

        address[] memory holders = handler.knownHolders();
        uint256 sum;
        for (uint256 k; k < holders.length; ++k) {
            sum += usdc.balanceOf(holders[k]);
        }
        assertEq(sum, usdc.totalSupply(), "(e) every token is held by a known party");
    }
}
