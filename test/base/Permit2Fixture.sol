// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";

import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {payerAgnosticHash} from "./PaymentFixtures.sol";

/// @notice What the suites read from and expect of Permit2 beyond the collector's interface,
///         written from Permit2's public interface (errors of SignatureTransfer and its
///         SignatureVerification library, the unordered-nonce bitmap, EIP-712 domain).
interface IPermit2Testing {
    /// @notice The signature's deadline has passed.
    error SignatureExpired(uint256 signatureDeadline);
    /// @notice The requested amount exceeds the permitted one.
    error InvalidAmount(uint256 maxAmount);
    /// @notice The unordered nonce was used (or invalidated) already.
    error InvalidNonce();
    /// @notice The ECDSA signature recovers to someone other than the owner.
    error InvalidSigner();
    /// @notice The ECDSA signature recovers to no one.
    error InvalidSignature();
    /// @notice An EOA's signature is neither 64 nor 65 bytes.
    error InvalidSignatureLength();
    /// @notice The owner is a contract and rejected the signature (ERC-1271).
    error InvalidContractSignature();

    /// @notice Permit2's EIP-712 domain separator on this chain.
    function DOMAIN_SEPARATOR() external view returns (bytes32);

    /// @notice Bit `n & 0xff` of word `n >> 8` is set once `owner`'s unordered nonce `n` is spent.
    function nonceBitmap(address owner, uint256 wordPos) external view returns (uint256);

    /// @notice Lets the caller burn unordered nonces: the bits of `mask` in word `wordPos`.
    function invalidateUnorderedNonces(uint256 wordPos, uint256 mask) external;
}

/// @notice Uniswap Permit2 at its canonical address, from `../shared/canonical/Permit2.json`, and
///         the payer's `PermitTransferFrom` signature as the x402 auth-capture scheme prescribes it.
abstract contract Permit2Fixture is Test {
    /// @dev Permit2's address on every chain.
    address internal constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;

    string internal constant PERMIT2_JSON = "../shared/canonical/Permit2.json";

    /// @dev From Permit2's EIP712 and PermitHash, written out here rather than read from the contract.
    bytes32 internal constant PERMIT2_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)");
    bytes32 internal constant TOKEN_PERMISSIONS_TYPEHASH = keccak256("TokenPermissions(address token,uint256 amount)");
    bytes32 internal constant PERMIT_TRANSFER_FROM_TYPEHASH = keccak256(
        "PermitTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline)TokenPermissions(address token,uint256 amount)"
    );

    /// @dev The terms of one `PermitTransferFrom` signature.
    struct PermitTerms {
        address token;
        uint256 amount;
        address spender;
        uint256 nonce;
        uint256 deadline;
    }

    /// @dev Places Permit2 at PERMIT2 with the domain separator a deployment there would cache.
    ///      The shared file holds Permit2's code; if it is creation code, it is deployed once and its
    ///      runtime code copied, otherwise (today: the file holds runtime code) it is used as is.
    ///      Either way the code carries immutables from another address (the cached chain id and
    ///      domain separator), so a signature for the canonical domain would fail: the cached
    ///      separator is replaced by the canonical one, found by value, and checked.
    function _installPermit2() internal {
        bytes memory code = vm.parseJsonBytes(vm.readFile(PERMIT2_JSON), ".bytecode");
        address created;
        assembly {
            created := create(0, add(code, 0x20), mload(code))
        }
        if (created != address(0) && created.code.length != 0) code = created.code;
        vm.etch(PERMIT2, code);

        bytes32 expected = permit2DomainSeparator();
        bytes32 cached = IPermit2Testing(PERMIT2).DOMAIN_SEPARATOR();
        if (cached != expected) {
            _replaceWord(code, cached, expected);
            vm.etch(PERMIT2, code);
        }
        assertEq(IPermit2Testing(PERMIT2).DOMAIN_SEPARATOR(), expected, "Permit2 domain at the canonical address");
        vm.label(PERMIT2, "Permit2");
    }

    /// @dev Replaces the single 32-byte occurrence of `from` in `code` with `to`.
    function _replaceWord(bytes memory code, bytes32 from, bytes32 to) private pure {
        uint256 found = type(uint256).max;
        for (uint256 i; i + 32 <= code.length; ++i) {
            bytes32 word;
            assembly {
                word := mload(add(add(code, 0x20), i))
            }
            if (word == from) {
                require(found == type(uint256).max, "Permit2 code: domain separator found twice");
                found = i;
            }
        }
        require(found != type(uint256).max, "Permit2 code: cached domain separator not found");
        assembly {
            mstore(add(add(code, 0x20), found), to)
        }
    }

    /// @dev Permit2's EIP-712 domain: name "Permit2", no version, this chain, the canonical address.
    function permit2DomainSeparator() internal view returns (bytes32) {
        return keccak256(abi.encode(PERMIT2_DOMAIN_TYPEHASH, keccak256("Permit2"), block.chainid, PERMIT2));
    }

    /// @dev The EIP-712 digest of `terms` under the canonical Permit2 domain.
    function _permit2Digest(PermitTerms memory terms) internal view returns (bytes32) {
        bytes32 permitted = keccak256(abi.encode(TOKEN_PERMISSIONS_TYPEHASH, terms.token, terms.amount));
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TRANSFER_FROM_TYPEHASH, permitted, terms.spender, terms.nonce, terms.deadline));
        return keccak256(abi.encodePacked("\x19\x01", permit2DomainSeparator(), structHash));
    }

    /// @dev `pk`'s 65-byte signature of `terms`.
    function _signPermit2(PermitTerms memory terms, uint256 pk) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, _permit2Digest(terms));
        return abi.encodePacked(r, s, v);
    }

    /// @dev The terms x402 prescribes for `info` paid through `collector` of `escrow`: the payment's
    ///      token and maxAmount, spender the collector, nonce the payer-agnostic hash, deadline the
    ///      pre-approval expiry.
    function _permit2Terms(AuthCaptureEscrow.PaymentInfo memory info, address collector, address escrow)
        internal
        view
        returns (PermitTerms memory)
    {
        return PermitTerms({
            token: info.token,
            amount: info.maxAmount,
            spender: collector,
            nonce: uint256(payerAgnosticHash(escrow, info)),
            deadline: info.preApprovalExpiry
        });
    }

    /// @dev Whether Permit2 has spent `owner`'s unordered nonce `nonce`.
    function _permit2NonceUsed(address owner, uint256 nonce) internal view returns (bool) {
        return (IPermit2Testing(PERMIT2).nonceBitmap(owner, nonce >> 8) >> (nonce & 0xff)) & 1 == 1;
    }
}
