// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";

import {RevertingTarget, SenderRecorder} from "./helpers/PrepareTargets.sol";
import {Multicall3} from "../../contracts/dev/Multicall3.sol";
import {IMulticall3} from "../../contracts/interfaces/IMulticall3.sol";

/// @notice The development Multicall3 the ERC-3009 collector routes ERC-6492 prepare calls through.
contract Multicall3Test is Test {
    Multicall3 internal mc;
    SenderRecorder internal recorder;
    RevertingTarget internal reverting;

    function setUp() public {
        mc = new Multicall3();
        recorder = new SenderRecorder();
        reverting = new RevertingTarget();
    }

    function _calls() internal view returns (IMulticall3.Call[] memory calls) {
        calls = new IMulticall3.Call[](2);
        calls[0] = IMulticall3.Call({target: address(reverting), callData: hex"01"});
        calls[1] = IMulticall3.Call({target: address(recorder), callData: hex"02"});
    }

    function test_tryAggregate_withoutRequireSuccess_reportsFailuresAndContinues() public {
        IMulticall3.Result[] memory results = mc.tryAggregate(false, _calls());
        assertEq(results.length, 2);
        assertFalse(results[0].success);
        assertEq(results[0].returnData, abi.encodeWithSelector(RevertingTarget.PrepareFailed.selector));
        assertTrue(results[1].success);
        assertEq(recorder.lastSender(), address(mc));
        assertEq(recorder.lastData(), hex"02");
    }

    function test_tryAggregate_reverts_CallFailed_when_requireSuccess() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                Multicall3.CallFailed.selector, 0, abi.encodeWithSelector(RevertingTarget.PrepareFailed.selector)
            )
        );
        mc.tryAggregate(true, _calls());
    }
}
