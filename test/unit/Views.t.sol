// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Vm} from "forge-std/Vm.sol";

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenStore} from "../../contracts/TokenStore.sol";

contract ViewsTest is UnitTestBase {
    /*//////////////////////////////////////////////////////////////
                        PAYMENT_INFO_TYPEHASH / getHash
    //////////////////////////////////////////////////////////////*/

    function test_PAYMENT_INFO_TYPEHASH_matchesSpecTypeString() public view {
        assertEq(escrow.PAYMENT_INFO_TYPEHASH(), SPEC_PAYMENT_INFO_TYPEHASH);
        assertEq(escrow.PAYMENT_INFO_TYPEHASH(), 0xae68ac7ce30c86ece8196b61a7c486d8f0061f575037fbd34e7fe4e2820c6591);
    }

    function test_getHash_matchesSpecFormula_defaultPayment() public view {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        assertEq(escrow.getHash(info), _specHash(info));
    }

    function test_getHash_matchesSpecFormula_extremeValues() public view {
        AuthCaptureEscrow.PaymentInfo memory info = AuthCaptureEscrow.PaymentInfo({
            operator: address(type(uint160).max),
            payer: address(1),
            receiver: address(0),
            token: address(0xdead),
            maxAmount: type(uint120).max,
            preApprovalExpiry: type(uint48).max,
            authorizationExpiry: 1,
            refundExpiry: 0,
            minFeeBps: type(uint16).max,
            maxFeeBps: 1,
            feeReceiver: address(type(uint160).max),
            salt: type(uint256).max
        });
        assertEq(escrow.getHash(info), _specHash(info));
    }

    function test_getHash_matchesSpecFormula_fuzz(
        address op,
        address py,
        uint120 maxAmount,
        uint48 pre,
        uint48 auth,
        uint48 ref,
        uint16 minFee,
        uint16 maxFee,
        uint256 salt
    ) public view {
        AuthCaptureEscrow.PaymentInfo memory info = AuthCaptureEscrow.PaymentInfo({
            operator: op,
            payer: py,
            receiver: receiver,
            token: address(usdc),
            maxAmount: maxAmount,
            preApprovalExpiry: pre,
            authorizationExpiry: auth,
            refundExpiry: ref,
            minFeeBps: minFee,
            maxFeeBps: maxFee,
            feeReceiver: feeReceiver,
            salt: salt
        });
        assertEq(escrow.getHash(info), _specHash(info));
    }

    function test_getHash_changesWithEveryField() public view {
        AuthCaptureEscrow.PaymentInfo memory base = _defaultInfo();
        bytes32 h0 = escrow.getHash(base);
        for (uint256 field; field < 12; ++field) {
            AuthCaptureEscrow.PaymentInfo memory m = _defaultInfo();
            if (field == 0) m.operator = stranger;
            else if (field == 1) m.payer = stranger;
            else if (field == 2) m.receiver = stranger;
            else if (field == 3) m.token = stranger;
            else if (field == 4) m.maxAmount += 1;
            else if (field == 5) m.preApprovalExpiry += 1;
            else if (field == 6) m.authorizationExpiry += 1;
            else if (field == 7) m.refundExpiry += 1;
            else if (field == 8) m.minFeeBps += 1;
            else if (field == 9) m.maxFeeBps += 1;
            else if (field == 10) m.feeReceiver = stranger;
            else m.salt += 1;
            bytes32 h = escrow.getHash(m);
            assertTrue(h != h0, "field must be part of the hash");
            assertEq(h, _specHash(m));
        }
    }

    function test_getHash_dependsOnChainId() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 before = escrow.getHash(info);
        vm.chainId(8453);
        bytes32 afterChange = escrow.getHash(info);
        assertTrue(before != afterChange);
        assertEq(afterChange, _specHash(info));
    }

    function test_getHash_dependsOnEscrowAddress() public {
        AuthCaptureEscrow other = new AuthCaptureEscrow();
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        assertTrue(other.getHash(info) != escrow.getHash(info));
        assertEq(
            other.getHash(info),
            keccak256(abi.encode(block.chainid, address(other), keccak256(abi.encode(SPEC_PAYMENT_INFO_TYPEHASH, info))))
        );
    }

    function test_getHash_reverts_when_calldataFieldHasDirtyHighBits() public view {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory clean = abi.encodeCall(AuthCaptureEscrow.getHash, (info));
        (bool ok, bytes memory ret) = address(escrow).staticcall(clean);
        assertTrue(ok);
        assertEq(abi.decode(ret, (bytes32)), _specHash(info));

        // Word k of the struct starts at 4 + 32k; its first byte is the most significant one.
        uint256[7] memory dirtyWords = [uint256(0), 1, 4, 5, 8, 9, 10];
        for (uint256 i; i < dirtyWords.length; ++i) {
            bytes memory dirty = bytes.concat(clean);
            dirty[4 + 32 * dirtyWords[i]] = 0x01;
            (ok,) = address(escrow).staticcall(dirty);
            assertFalse(ok, "dirty high bits must not hash to a different payment");
        }
    }

    /*//////////////////////////////////////////////////////////////
                        paymentState / getPaymentStates
    //////////////////////////////////////////////////////////////*/

    function test_paymentState_defaultsToZero() public view {
        (bool c, uint120 cap, uint120 ref) = escrow.paymentState(keccak256("unknown"));
        assertFalse(c);
        assertEq(cap, 0);
        assertEq(ref, 0);
    }

    function test_paymentState_tracksLifecycle() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _authorize(info, 70e6);
        _assertState(h, true, 70e6, 0);
        vm.prank(operator);
        escrow.capture(info, 20e6, 0, feeReceiver);
        _assertState(h, true, 50e6, 20e6);
        _fundRefunds(5e6);
        vm.prank(operator);
        escrow.refund(info, 5e6, address(refundCollector), "");
        _assertState(h, true, 50e6, 15e6);
        vm.prank(operator);
        escrow.void(info);
        _assertState(h, true, 0, 15e6);
    }

    function test_getPaymentStates_returnsStatesInOrder() public {
        AuthCaptureEscrow.PaymentInfo memory a = _defaultInfo();
        AuthCaptureEscrow.PaymentInfo memory b = _defaultInfo();
        b.salt = 1;
        bytes32 ha = _authorize(a, 10e6);
        bytes32 hb = _charge(b, 20e6, 0, feeReceiver);

        bytes32[] memory hashes = new bytes32[](4);
        hashes[0] = hb;
        hashes[1] = keccak256("unknown");
        hashes[2] = ha;
        hashes[3] = hb;
        AuthCaptureEscrow.PaymentState[] memory states = escrow.getPaymentStates(hashes);

        assertEq(states.length, 4);
        assertTrue(states[0].hasCollectedPayment);
        assertEq(states[0].capturableAmount, 0);
        assertEq(states[0].refundableAmount, 20e6);
        assertFalse(states[1].hasCollectedPayment);
        assertEq(states[1].capturableAmount, 0);
        assertEq(states[1].refundableAmount, 0);
        assertTrue(states[2].hasCollectedPayment);
        assertEq(states[2].capturableAmount, 10e6);
        assertEq(states[2].refundableAmount, 0);
        assertEq(keccak256(abi.encode(states[3])), keccak256(abi.encode(states[0])));
    }

    function test_getPaymentStates_emptyInput() public view {
        assertEq(escrow.getPaymentStates(new bytes32[](0)).length, 0);
    }

    /*//////////////////////////////////////////////////////////////
                      tokenStoreImplementation / getTokenStore
    //////////////////////////////////////////////////////////////*/

    function test_tokenStoreImplementation_belongsToThisEscrow() public view {
        address impl = escrow.tokenStoreImplementation();
        assertGt(impl.code.length, 0);
        assertEq(TokenStore(impl).authCaptureEscrow(), address(escrow));
    }

    function test_getTokenStore_isCreate2AddressOfMinimalProxyClone() public view {
        address impl = escrow.tokenStoreImplementation();
        bytes memory initCode =
            abi.encodePacked(hex"602c3d8160093d39f33d3d3d3d363d3d37363d73", impl, hex"5af43d3d93803e602a57fd5bf3");
        address expected = vm.computeCreate2Address(bytes32(bytes20(operator)), keccak256(initCode), address(escrow));
        assertEq(escrow.getTokenStore(operator), expected);
    }

    function test_getTokenStore_differsPerOperatorAndIsStable() public {
        address s1 = escrow.getTokenStore(operator);
        address s2 = escrow.getTokenStore(operator2);
        assertTrue(s1 != s2);
        _authorizeAndCapture(_defaultInfo(), 10e6, 10e6, 0);
        assertEq(escrow.getTokenStore(operator), s1, "unchanged by deployment");
    }

    function test_getTokenStore_deployedCloneDelegatesToImplementation() public {
        _authorizeAndCapture(_defaultInfo(), 10e6, 10e6, 0);
        address store = _store();
        address impl = escrow.tokenStoreImplementation();
        assertEq(
            store.code,
            abi.encodePacked(hex"3d3d3d3d363d3d37363d73", impl, hex"5af43d3d93803e602a57fd5bf3"),
            "minimal proxy runtime code"
        );
        assertEq(TokenStore(store).authCaptureEscrow(), address(escrow));
    }

    function test_tokenStoreCreated_emittedExactlyOncePerOperator_overLifecycle() public {
        AuthCaptureEscrow.PaymentInfo memory a = _defaultInfo();
        AuthCaptureEscrow.PaymentInfo memory b = _defaultInfo();
        b.salt = 1;
        AuthCaptureEscrow.PaymentInfo memory c = _defaultInfo();
        c.salt = 2;
        AuthCaptureEscrow.PaymentInfo memory d = _defaultInfo();
        d.operator = operator2;

        vm.recordLogs();
        _authorize(a, 30e6);
        _authorize(b, 30e6);
        assertEq(_countLogs(vm.getRecordedLogs(), address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 0);

        vm.prank(operator);
        escrow.capture(a, 10e6, 0, feeReceiver); // first time funds leave operator's store
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 1);
        _assertTokenStoreCreatedLog(logs, operator);

        vm.startPrank(operator);
        escrow.capture(a, 10e6, 0, feeReceiver);
        escrow.void(b);
        vm.stopPrank();
        _fundRefunds(5e6);
        vm.prank(operator);
        escrow.refund(a, 5e6, address(refundCollector), "");
        _charge(c, 10e6, 0, feeReceiver);
        vm.warp(a.authorizationExpiry);
        vm.prank(payer);
        escrow.reclaim(a);
        assertEq(_countLogs(vm.getRecordedLogs(), address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 0);

        // Another operator gets its own store, created on its own first payout.
        vm.warp(block.timestamp - 1 days);
        _charge(d, 10e6, 0, feeReceiver);
        logs = vm.getRecordedLogs();
        assertEq(_countLogs(logs, address(escrow), AuthCaptureEscrow.TokenStoreCreated.selector), 1);
        _assertTokenStoreCreatedLog(logs, operator2);
    }

    function _assertTokenStoreCreatedLog(Vm.Log[] memory logs, address op) internal {
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(escrow) && logs[i].topics[0] == AuthCaptureEscrow.TokenStoreCreated.selector) {
                assertEq(logs[i].topics.length, 2);
                assertEq(logs[i].topics[1], bytes32(uint256(uint160(op))));
                assertEq(abi.decode(logs[i].data, (address)), escrow.getTokenStore(op));
                return;
            }
        }
        fail();
    }
}
