// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {EscrowFuzzBase} from "./EscrowFuzzBase.t.sol";
import {flipPaymentInfoBit, paymentInfoFieldWidth} from "../base/PaymentInfoBits.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

/// @notice Fuzzes the payment hash (the spec formula, every field bound, chain and escrow bound,
///         the payer-agnostic ERC-3009 nonce) and that a PaymentInfo word with dirty high bits in
///         raw calldata is rejected by every entry point instead of being hashed as another payment.
contract PaymentHashFuzzTest is EscrowFuzzBase {
    /// @dev Bit width of PaymentInfo fields 0..10 (salt, field 11, is a full word).
    function _fieldWidth(uint256 field) internal pure returns (uint256) {
        return paymentInfoFieldWidth(field);
    }

    /// @dev The spec's formula, computed independently of the escrow's assembly.
    function _specHash(AuthCaptureEscrow.PaymentInfo memory info, address escrowAddress)
        internal
        view
        returns (bytes32)
    {
        bytes32 typehash = keccak256(
            "PaymentInfo(address operator,address payer,address receiver,address token,uint120 maxAmount,uint48 preApprovalExpiry,uint48 authorizationExpiry,uint48 refundExpiry,uint16 minFeeBps,uint16 maxFeeBps,address feeReceiver,uint256 salt)"
        );
        return keccak256(abi.encode(block.chainid, escrowAddress, keccak256(abi.encode(typehash, info))));
    }

    /*//////////////////////////////////////////////////////////////
                                 HASHING
    //////////////////////////////////////////////////////////////*/

    function testFuzz_getHash_matchesSpecFormula(AuthCaptureEscrow.PaymentInfo memory info, uint64 chainId) public {
        vm.chainId(bound(chainId, 1, type(uint64).max));
        assertEq(escrow.getHash(info), _specHash(info, address(escrow)));
        assertEq(
            escrow.PAYMENT_INFO_TYPEHASH(),
            keccak256(
                "PaymentInfo(address operator,address payer,address receiver,address token,uint120 maxAmount,uint48 preApprovalExpiry,uint48 authorizationExpiry,uint48 refundExpiry,uint16 minFeeBps,uint16 maxFeeBps,address feeReceiver,uint256 salt)"
            )
        );
    }

    function testFuzz_getHash_everyFieldIsBound(
        AuthCaptureEscrow.PaymentInfo memory info,
        uint256 field,
        uint256 bitSeed
    ) public view {
        field = bound(field, 0, 11);
        // Flip one bit inside the field's width: a different, still clean, payment.
        AuthCaptureEscrow.PaymentInfo memory changed = flipPaymentInfoBit(info, field, bitSeed);
        assertNotEq(escrow.getHash(changed), escrow.getHash(info));
        assertEq(escrow.getHash(changed), _specHash(changed, address(escrow)));
    }

    function testFuzz_getHash_boundToChainAndEscrow(AuthCaptureEscrow.PaymentInfo memory info, uint64 chainId) public {
        AuthCaptureEscrow otherEscrow = new AuthCaptureEscrow();
        bytes32 here = escrow.getHash(info);
        assertNotEq(otherEscrow.getHash(info), here, "another escrow");
        assertEq(otherEscrow.getHash(info), _specHash(info, address(otherEscrow)));

        vm.assume(chainId != block.chainid && chainId != 0);
        vm.chainId(chainId);
        assertNotEq(escrow.getHash(info), here, "another chain");
    }

    function testFuzz_erc3009NonceIsPayerAgnosticHash(uint256 payerKey, uint256 salt, uint120 maxAmount) public {
        payerKey = boundPrivateKey(payerKey);
        maxAmount = uint120(bound(maxAmount, 1, UINT120_MAX));
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(vm.addr(payerKey), maxAmount);
        info.salt = salt;
        usdc.mint(info.payer, maxAmount);
        bytes memory signature = _signERC3009(info, payerKey);

        vm.prank(operator);
        escrow.authorize(info, maxAmount, address(erc3009Collector), signature);

        bytes32 paymentInfoHash = escrow.getHash(info);
        address realPayer = info.payer;
        info.payer = address(0);
        bytes32 nonce = _specHash(info, address(escrow));
        assertTrue(usdc.authorizationState(realPayer, nonce), "nonce consumed is the payer-agnostic hash");
        assertNotEq(nonce, paymentInfoHash);
    }

    /*//////////////////////////////////////////////////////////////
                          DIRTY HIGH BITS IN CALLDATA
    //////////////////////////////////////////////////////////////*/

    /// @dev ORs bits above the field's width into PaymentInfo word `field`, found at byte `base`
    ///      of `data` (4 for a direct PaymentInfo argument, 4 + 0x40 for the first element of an array).
    function _dirty(bytes memory data, uint256 base, uint256 field, uint256 dirtSeed) internal pure {
        uint256 dirt = (uint256(keccak256(abi.encode(dirtSeed))) | 1) << _fieldWidth(field);
        assembly {
            let p := add(add(data, 0x20), add(base, mul(field, 0x20)))
            mstore(p, or(mload(p), dirt))
        }
    }

    function testFuzz_dirtyHighBits_getHashReverts(
        AuthCaptureEscrow.PaymentInfo memory info,
        uint256 field,
        uint256 dirtSeed
    ) public view {
        field = bound(field, 0, 10);
        bytes memory data = abi.encodeCall(AuthCaptureEscrow.getHash, (info));
        (bool cleanOk,) = address(escrow).staticcall(data);
        assertTrue(cleanOk, "clean calldata is accepted");

        _dirty(data, 4, field, dirtSeed);
        (bool ok, bytes memory returned) = address(escrow).staticcall(data);
        assertFalse(ok, "dirty calldata must revert");
        assertEq(returned.length, 0, "rejected like the ABI decoder does: empty revert");
    }

    /// @dev For each state-changing entry point: with one dirty PaymentInfo word the call reverts
    ///      and changes nothing; the same calldata, clean, then succeeds (so the dirt was the cause).
    function testFuzz_dirtyHighBits_operationsRevert(uint256 op, uint256 field, uint256 dirtSeed) public {
        op = bound(op, 0, 7);
        field = bound(field, 0, 10);

        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(payer, 1e6);
        info.salt = op;
        address caller = operator;
        uint256 base = 4;
        bytes memory data;

        if (op <= 1) {
            // A fresh payment: authorize / charge.
            usdc.mint(payer, info.maxAmount);
            bytes memory signature = _signERC3009(info, PAYER_PK);
            data = op == 0
                ? abi.encodeCall(AuthCaptureEscrow.authorize, (info, 1e6, address(erc3009Collector), signature))
                : abi.encodeCall(
                    AuthCaptureEscrow.charge, (info, 1e6, address(erc3009Collector), signature, 100, feeReceiver)
                );
        } else {
            _authorizeSigned(info, 1e6);
            vm.prank(operator);
            escrow.capture(info, 4e5, 100, feeReceiver);
            if (op == 2) {
                data = abi.encodeCall(AuthCaptureEscrow.capture, (info, 1e5, 100, feeReceiver));
            } else if (op == 3) {
                data = abi.encodeCall(AuthCaptureEscrow.void, (info));
            } else if (op == 4) {
                _fundRefunds(1e5);
                data = abi.encodeCall(AuthCaptureEscrow.refund, (info, 1e5, address(refundCollector), ""));
            } else if (op == 5) {
                vm.warp(info.authorizationExpiry);
                caller = payer;
                data = abi.encodeCall(AuthCaptureEscrow.reclaim, (info));
            } else if (op == 6) {
                AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](1);
                infos[0] = info;
                data = abi.encodeCall(AuthCaptureEscrow.voidBatch, (infos));
                base = 4 + 0x40;
            } else {
                AuthCaptureEscrow.CaptureRequest[] memory requests = new AuthCaptureEscrow.CaptureRequest[](1);
                requests[0] = AuthCaptureEscrow.CaptureRequest(info, 1e5, 100, feeReceiver);
                data = abi.encodeCall(AuthCaptureEscrow.captureBatch, (requests));
                base = 4 + 0x40;
            }
        }

        bytes32 h = escrow.getHash(info);
        (bool collected, uint120 capturable, uint120 refundable) = escrow.paymentState(h);
        uint256 storeBalance = usdc.balanceOf(_store());
        uint256 payerBalance = usdc.balanceOf(payer);

        bytes memory dirtyData = bytes.concat(data);
        _dirty(dirtyData, base, field, dirtSeed);
        vm.prank(caller);
        (bool ok, bytes memory returned) = address(escrow).call(dirtyData);
        assertFalse(ok, "dirty calldata must revert");
        assertEq(returned.length, 0, "empty revert, as the ABI decoder");
        _assertState(h, collected, capturable, refundable);
        assertEq(usdc.balanceOf(_store()), storeBalance);
        assertEq(usdc.balanceOf(payer), payerBalance);

        vm.prank(caller);
        (ok,) = address(escrow).call(data);
        assertTrue(ok, "the same call with clean calldata succeeds");
    }
}
