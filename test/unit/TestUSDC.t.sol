// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {ERC20} from "solady/tokens/ERC20.sol";
import {Ownable} from "solady/auth/Ownable.sol";

import {MockERC1271Wallet} from "./helpers/MockERC1271Wallet.sol";
import {usdcDomainSeparator} from "./helpers/UsdcDomain.sol";
import {TestUSDC} from "../../contracts/dev/TestUSDC.sol";

contract TestUSDCTest is Test {
    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant CANCEL_TYPEHASH = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    uint256 internal constant ALICE_PK = 0xA11CE;
    uint256 internal constant BOB_PK = 0xB0B;

    TestUSDC internal usdc;
    address internal alice;
    address internal bob;
    address internal relayer = makeAddr("relayer");

    uint256 internal validAfter;
    uint256 internal validBefore;
    bytes32 internal constant NONCE = keccak256("nonce-1");

    function setUp() public {
        vm.warp(1_767_225_600);
        usdc = new TestUSDC("USD Coin", "USDC", "2", address(this));
        alice = vm.addr(ALICE_PK);
        bob = vm.addr(BOB_PK);
        usdc.mint(alice, 1000e6);
        validAfter = block.timestamp - 1;
        validBefore = block.timestamp + 1 hours;
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    function _domainSeparator() internal view returns (bytes32) {
        return usdcDomainSeparator(address(usdc));
    }

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    /// @dev `pk`'s 65-byte signature (r, s, v) of `structHash` under the token's EIP-712 domain.
    function _sign(uint256 pk, bytes32 structHash) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, _digest(structHash));
        return abi.encodePacked(r, s, v);
    }

    /// @dev `pk`'s signature of an ERC-3009 authorization of type `typehash` in the current window.
    function _authSig(uint256 pk, bytes32 typehash, address from, address to, uint256 value, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        return _sign(pk, keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce)));
    }

    function _transferSig(uint256 pk, address from, address to, uint256 value, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        return _authSig(pk, TRANSFER_TYPEHASH, from, to, value, nonce);
    }

    function _receiveSig(uint256 pk, address from, address to, uint256 value, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        return _authSig(pk, RECEIVE_TYPEHASH, from, to, value, nonce);
    }

    function _cancelSig(uint256 pk, address authorizer, bytes32 nonce) internal view returns (bytes memory) {
        return _sign(pk, keccak256(abi.encode(CANCEL_TYPEHASH, authorizer, nonce)));
    }

    function _split(bytes memory sig) internal pure returns (uint8 v, bytes32 r, bytes32 s) {
        assembly {
            r := mload(add(sig, 0x20))
            s := mload(add(sig, 0x40))
            v := byte(0, mload(add(sig, 0x60)))
        }
    }

    function _transferVrs(bytes memory sig, address from, address to, uint256 value, bytes32 nonce) internal {
        (uint8 v, bytes32 r, bytes32 s) = _split(sig);
        usdc.transferWithAuthorization(from, to, value, validAfter, validBefore, nonce, v, r, s);
    }

    /// @dev Expects the next call to revert with `AuthorizationAlreadyUsed` of alice's NONCE.
    function _expectAlreadyUsed() internal {
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationAlreadyUsed.selector, alice, NONCE));
    }

    /// @dev Expects the next call to revert with `InvalidAuthorizationSignature` for `authorizer`.
    function _expectInvalidSignature(address authorizer) internal {
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, authorizer));
    }

    /// @dev Expects the next call, made at `validBefore`, to revert with `AuthorizationExpired`.
    function _expectExpired() internal {
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationExpired.selector, validBefore, validBefore));
    }

    /// @dev Expects the next call, made now, to revert with `AuthorizationNotYetValid` for `validAfter`.
    function _expectNotYetValid() internal {
        vm.expectRevert(
            abi.encodeWithSelector(TestUSDC.AuthorizationNotYetValid.selector, block.timestamp, validAfter)
        );
    }

    /// @dev `caller` redeems alice's ReceiveWithAuthorization of `value` to bob (nonce NONCE, the
    ///      current validity window) with the signature `sig` in bytes form.
    function _receive(address caller, bytes memory sig, uint256 value) internal {
        vm.prank(caller);
        usdc.receiveWithAuthorization(alice, bob, value, validAfter, validBefore, NONCE, sig);
    }

    /// @dev As `_receive`, with the signature split into v, r, s.
    function _receiveVrs(address caller, bytes memory sig, uint256 value) internal {
        (uint8 v, bytes32 r, bytes32 s) = _split(sig);
        vm.prank(caller);
        usdc.receiveWithAuthorization(alice, bob, value, validAfter, validBefore, NONCE, v, r, s);
    }

    /*//////////////////////////////////////////////////////////////
                           METADATA / DOMAIN
    //////////////////////////////////////////////////////////////*/

    function test_metadata_usdcLike() public view {
        assertEq(usdc.decimals(), 6);
        assertEq(usdc.name(), "USD Coin");
        assertEq(usdc.symbol(), "USDC");
        assertEq(usdc.owner(), address(this));
    }

    function test_DOMAIN_SEPARATOR_usesNameUSDCoinAndVersion2() public view {
        assertEq(usdc.DOMAIN_SEPARATOR(), _domainSeparator());
    }

    function test_DOMAIN_SEPARATOR_followsChainId() public {
        bytes32 before = usdc.DOMAIN_SEPARATOR();
        vm.chainId(84532);
        assertTrue(usdc.DOMAIN_SEPARATOR() != before);
        assertEq(usdc.DOMAIN_SEPARATOR(), _domainSeparator());
    }

    function test_DOMAIN_SEPARATOR_followsConstructorNameAndVersion() public {
        TestUSDC other = new TestUSDC("Other", "OTH", "7", address(this));
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Other"),
                keccak256("7"),
                block.chainid,
                address(other)
            )
        );
        assertEq(other.DOMAIN_SEPARATOR(), expected);
    }

    function test_typehashes_matchERC3009() public view {
        assertEq(usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), TRANSFER_TYPEHASH);
        assertEq(usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), RECEIVE_TYPEHASH);
        assertEq(usdc.CANCEL_AUTHORIZATION_TYPEHASH(), CANCEL_TYPEHASH);
    }

    /*//////////////////////////////////////////////////////////////
                                  mint
    //////////////////////////////////////////////////////////////*/

    function test_mint_byOwner() public {
        uint256 supply = usdc.totalSupply();
        usdc.mint(bob, 5e6);
        assertEq(usdc.balanceOf(bob), 5e6);
        assertEq(usdc.totalSupply(), supply + 5e6);
    }

    function test_mint_reverts_Unauthorized_when_callerNotOwner() public {
        vm.prank(alice);
        vm.expectRevert(Ownable.Unauthorized.selector);
        usdc.mint(alice, 1);
    }

    function test_mint_followsOwnershipTransfer() public {
        usdc.transferOwnership(bob);
        vm.expectRevert(Ownable.Unauthorized.selector);
        usdc.mint(alice, 1);
        vm.prank(bob);
        usdc.mint(bob, 1);
        assertEq(usdc.balanceOf(bob), 1);
    }

    /*//////////////////////////////////////////////////////////////
                          transferWithAuthorization
    //////////////////////////////////////////////////////////////*/

    function test_authorizationState_falseUntilUsed() public {
        assertFalse(usdc.authorizationState(alice, NONCE));
        _transferVrs(_transferSig(ALICE_PK, alice, bob, 1e6, NONCE), alice, bob, 1e6, NONCE);
        assertTrue(usdc.authorizationState(alice, NONCE));
        assertFalse(usdc.authorizationState(bob, NONCE), "nonces are per authorizer");
    }

    function test_transferWithAuthorization_vrs_byRelayer() public {
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 10e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _split(sig);
        vm.expectEmit(true, true, true, true, address(usdc));
        emit TestUSDC.AuthorizationUsed(alice, NONCE);
        vm.expectEmit(true, true, true, true, address(usdc));
        emit ERC20.Transfer(alice, bob, 10e6);
        vm.prank(relayer);
        usdc.transferWithAuthorization(alice, bob, 10e6, validAfter, validBefore, NONCE, v, r, s);
        assertEq(usdc.balanceOf(bob), 10e6);
        assertEq(usdc.balanceOf(alice), 990e6);
        assertTrue(usdc.authorizationState(alice, NONCE));
    }

    function test_transferWithAuthorization_bytes_byRelayer() public {
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 10e6, NONCE);
        vm.expectEmit(true, true, true, true, address(usdc));
        emit TestUSDC.AuthorizationUsed(alice, NONCE);
        vm.prank(relayer);
        usdc.transferWithAuthorization(alice, bob, 10e6, validAfter, validBefore, NONCE, sig);
        assertEq(usdc.balanceOf(bob), 10e6);
    }

    function test_transferWithAuthorization_bytes_fromERC1271Wallet() public {
        MockERC1271Wallet wallet = new MockERC1271Wallet(bob);
        usdc.mint(address(wallet), 10e6);
        bytes memory sig = _transferSig(BOB_PK, address(wallet), alice, 10e6, NONCE);
        usdc.transferWithAuthorization(address(wallet), alice, 10e6, validAfter, validBefore, NONCE, sig);
        assertEq(usdc.balanceOf(address(wallet)), 0);
        assertTrue(usdc.authorizationState(address(wallet), NONCE));
    }

    function test_transferWithAuthorization_bytes_reverts_InvalidAuthorizationSignature_when_walletSignerWrong() public {
        MockERC1271Wallet wallet = new MockERC1271Wallet(bob);
        usdc.mint(address(wallet), 10e6);
        bytes memory sig = _transferSig(ALICE_PK, address(wallet), alice, 10e6, NONCE);
        _expectInvalidSignature(address(wallet));
        usdc.transferWithAuthorization(address(wallet), alice, 10e6, validAfter, validBefore, NONCE, sig);
    }

    function test_transferWithAuthorization_reverts_AuthorizationNotYetValid_when_atValidAfter() public {
        validAfter = block.timestamp;
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _expectNotYetValid();
        usdc.transferWithAuthorization(alice, bob, 1e6, validAfter, validBefore, NONCE, sig);
    }

    function test_transferWithAuthorization_succeeds_when_oneSecondAfterValidAfter() public {
        validAfter = block.timestamp;
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1e6, NONCE);
        vm.warp(validAfter + 1);
        usdc.transferWithAuthorization(alice, bob, 1e6, validAfter, validBefore, NONCE, sig);
        assertEq(usdc.balanceOf(bob), 1e6);
    }

    function test_transferWithAuthorization_reverts_AuthorizationExpired_when_atValidBefore() public {
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1e6, NONCE);
        vm.warp(validBefore);
        _expectExpired();
        _transferVrs(sig, alice, bob, 1e6, NONCE);
    }

    function test_transferWithAuthorization_succeeds_when_oneSecondBeforeValidBefore() public {
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1e6, NONCE);
        vm.warp(validBefore - 1);
        _transferVrs(sig, alice, bob, 1e6, NONCE);
        assertEq(usdc.balanceOf(bob), 1e6);
    }

    function test_transferWithAuthorization_reverts_AuthorizationAlreadyUsed_when_replayed() public {
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _transferVrs(sig, alice, bob, 1e6, NONCE);
        _expectAlreadyUsed();
        _transferVrs(sig, alice, bob, 1e6, NONCE);
        // The bytes form shares the nonce space.
        _expectAlreadyUsed();
        usdc.transferWithAuthorization(alice, bob, 1e6, validAfter, validBefore, NONCE, sig);
        assertEq(usdc.balanceOf(bob), 1e6);
    }

    function test_transferWithAuthorization_reverts_InvalidAuthorizationSignature_when_wrongSigner() public {
        bytes memory sig = _transferSig(BOB_PK, alice, bob, 1e6, NONCE);
        _expectInvalidSignature(alice);
        _transferVrs(sig, alice, bob, 1e6, NONCE);
    }

    /// @dev FiatToken v2.2 accepts only 65-byte EOA signatures; so does TestUSDC.
    function test_transferWithAuthorization_reverts_InvalidAuthorizationSignature_when_compact64ByteSignature() public {
        (uint8 v, bytes32 r, bytes32 s) = _split(_transferSig(ALICE_PK, alice, bob, 1e6, NONCE));
        bytes32 vs = bytes32(uint256(s) | (uint256(v - 27) << 255)); // EIP-2098 compact form, valid for ecrecover
        _expectInvalidSignature(alice);
        usdc.transferWithAuthorization(alice, bob, 1e6, validAfter, validBefore, NONCE, abi.encodePacked(r, vs));
    }

    /// @dev The malleable twin (n - s, flipped v) recovers to the same signer; EIP-2 rejects it.
    function test_transferWithAuthorization_reverts_InvalidAuthorizationSignature_when_highS() public {
        (uint8 v, bytes32 r, bytes32 s) = _split(_transferSig(ALICE_PK, alice, bob, 1e6, NONCE));
        uint256 n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
        bytes32 highS = bytes32(n - uint256(s));
        uint8 flippedV = v == 27 ? 28 : 27;
        bytes32 digest = _digest(keccak256(abi.encode(TRANSFER_TYPEHASH, alice, bob, uint256(1e6), validAfter, validBefore, NONCE)));
        assertEq(ecrecover(digest, flippedV, r, highS), alice, "twin must recover to the signer");
        _expectInvalidSignature(alice);
        usdc.transferWithAuthorization(alice, bob, 1e6, validAfter, validBefore, NONCE, abi.encodePacked(r, highS, flippedV));
    }

    function test_transferWithAuthorization_reverts_InvalidAuthorizationSignature_when_vNot27Or28() public {
        (uint8 v, bytes32 r, bytes32 s) = _split(_transferSig(ALICE_PK, alice, bob, 1e6, NONCE));
        _expectInvalidSignature(alice);
        usdc.transferWithAuthorization(alice, bob, 1e6, validAfter, validBefore, NONCE, abi.encodePacked(r, s, v - 27));
    }

    function test_transferWithAuthorization_reverts_InvalidAuthorizationSignature_when_valueTampered() public {
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _expectInvalidSignature(alice);
        usdc.transferWithAuthorization(alice, bob, 2e6, validAfter, validBefore, NONCE, sig);
    }

    function test_transferWithAuthorization_reverts_InvalidAuthorizationSignature_when_receiveSignatureUsed() public {
        bytes memory sig = _receiveSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _expectInvalidSignature(alice);
        usdc.transferWithAuthorization(alice, bob, 1e6, validAfter, validBefore, NONCE, sig);
    }

    function test_transferWithAuthorization_reverts_InsufficientBalance() public {
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1001e6, NONCE);
        vm.expectRevert(ERC20.InsufficientBalance.selector);
        _transferVrs(sig, alice, bob, 1001e6, NONCE);
    }

    function test_transferWithAuthorization_checksTimeBeforeNonceBeforeSignature() public {
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _transferVrs(sig, alice, bob, 1e6, NONCE);
        bytes memory badSig = _transferSig(BOB_PK, alice, bob, 1e6, NONCE);

        // used + bad signature -> AuthorizationAlreadyUsed
        _expectAlreadyUsed();
        usdc.transferWithAuthorization(alice, bob, 1e6, validAfter, validBefore, NONCE, badSig);

        // expired + used + bad signature -> AuthorizationExpired
        vm.warp(validBefore);
        _expectExpired();
        usdc.transferWithAuthorization(alice, bob, 1e6, validAfter, validBefore, NONCE, badSig);
    }

    /*//////////////////////////////////////////////////////////////
                          receiveWithAuthorization
    //////////////////////////////////////////////////////////////*/

    function test_receiveWithAuthorization_vrs_byPayee() public {
        bytes memory sig = _receiveSig(ALICE_PK, alice, bob, 10e6, NONCE);
        vm.expectEmit(true, true, true, true, address(usdc));
        emit TestUSDC.AuthorizationUsed(alice, NONCE);
        vm.expectEmit(true, true, true, true, address(usdc));
        emit ERC20.Transfer(alice, bob, 10e6);
        _receiveVrs(bob, sig, 10e6);
        assertEq(usdc.balanceOf(bob), 10e6);
        assertTrue(usdc.authorizationState(alice, NONCE));
    }

    function test_receiveWithAuthorization_bytes_byPayee() public {
        _receive(bob, _receiveSig(ALICE_PK, alice, bob, 10e6, NONCE), 10e6);
        assertEq(usdc.balanceOf(bob), 10e6);
        assertTrue(usdc.authorizationState(alice, NONCE));
    }

    function test_receiveWithAuthorization_vrs_reverts_CallerMustBePayee_when_relayed() public {
        bytes memory sig = _receiveSig(ALICE_PK, alice, bob, 10e6, NONCE);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.CallerMustBePayee.selector, relayer, bob));
        _receiveVrs(relayer, sig, 10e6);
    }

    function test_receiveWithAuthorization_bytes_reverts_CallerMustBePayee_when_relayed() public {
        bytes memory sig = _receiveSig(ALICE_PK, alice, bob, 10e6, NONCE);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.CallerMustBePayee.selector, relayer, bob));
        _receive(relayer, sig, 10e6);
    }

    function test_receiveWithAuthorization_reverts_CallerMustBePayee_beforeOtherChecks() public {
        bytes memory badSig = _receiveSig(BOB_PK, alice, bob, 10e6, NONCE);
        vm.warp(validBefore);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.CallerMustBePayee.selector, alice, bob));
        _receive(alice, badSig, 10e6);
    }

    function test_receiveWithAuthorization_reverts_InvalidAuthorizationSignature_when_transferSignatureUsed() public {
        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _expectInvalidSignature(alice);
        _receive(bob, sig, 1e6);
    }

    function test_receiveWithAuthorization_reverts_InvalidAuthorizationSignature_when_wrongSigner() public {
        bytes memory sig = _receiveSig(BOB_PK, alice, bob, 1e6, NONCE);
        _expectInvalidSignature(alice);
        _receiveVrs(bob, sig, 1e6);
    }

    function test_receiveWithAuthorization_reverts_AuthorizationNotYetValid_when_atValidAfter() public {
        validAfter = block.timestamp;
        bytes memory sig = _receiveSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _expectNotYetValid();
        _receive(bob, sig, 1e6);
    }

    function test_receiveWithAuthorization_reverts_AuthorizationExpired_when_atValidBefore() public {
        bytes memory sig = _receiveSig(ALICE_PK, alice, bob, 1e6, NONCE);
        vm.warp(validBefore);
        _expectExpired();
        _receive(bob, sig, 1e6);
    }

    function test_receiveWithAuthorization_succeeds_at_boundariesInsideWindow() public {
        validAfter = block.timestamp;
        validBefore = block.timestamp + 2;
        bytes memory sig = _receiveSig(ALICE_PK, alice, bob, 1e6, NONCE);
        vm.warp(validAfter + 1); // == validBefore - 1
        _receive(bob, sig, 1e6);
        assertEq(usdc.balanceOf(bob), 1e6);
    }

    function test_receiveWithAuthorization_reverts_AuthorizationAlreadyUsed_when_replayed() public {
        bytes memory sig = _receiveSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _receive(bob, sig, 1e6);
        _expectAlreadyUsed();
        _receiveVrs(bob, sig, 1e6);
    }

    /*//////////////////////////////////////////////////////////////
                            cancelAuthorization
    //////////////////////////////////////////////////////////////*/

    function test_cancelAuthorization_vrs_blocksLaterUse() public {
        (uint8 v, bytes32 r, bytes32 s) = _split(_cancelSig(ALICE_PK, alice, NONCE));
        vm.expectEmit(true, true, true, true, address(usdc));
        emit TestUSDC.AuthorizationCanceled(alice, NONCE);
        vm.prank(relayer);
        usdc.cancelAuthorization(alice, NONCE, v, r, s);
        assertTrue(usdc.authorizationState(alice, NONCE));

        bytes memory sig = _transferSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _expectAlreadyUsed();
        _transferVrs(sig, alice, bob, 1e6, NONCE);
    }

    function test_cancelAuthorization_bytes_blocksLaterReceive() public {
        vm.expectEmit(true, true, true, true, address(usdc));
        emit TestUSDC.AuthorizationCanceled(alice, NONCE);
        usdc.cancelAuthorization(alice, NONCE, _cancelSig(ALICE_PK, alice, NONCE));
        assertTrue(usdc.authorizationState(alice, NONCE));

        bytes memory sig = _receiveSig(ALICE_PK, alice, bob, 1e6, NONCE);
        _expectAlreadyUsed();
        _receive(bob, sig, 1e6);
    }

    function test_cancelAuthorization_bytes_byERC1271Wallet() public {
        MockERC1271Wallet wallet = new MockERC1271Wallet(bob);
        usdc.cancelAuthorization(address(wallet), NONCE, _cancelSig(BOB_PK, address(wallet), NONCE));
        assertTrue(usdc.authorizationState(address(wallet), NONCE));
    }

    function test_cancelAuthorization_reverts_AuthorizationAlreadyUsed_when_cancelledTwice() public {
        bytes memory sig = _cancelSig(ALICE_PK, alice, NONCE);
        usdc.cancelAuthorization(alice, NONCE, sig);
        _expectAlreadyUsed();
        usdc.cancelAuthorization(alice, NONCE, sig);
    }

    function test_cancelAuthorization_reverts_AuthorizationAlreadyUsed_when_alreadyUsed() public {
        _transferVrs(_transferSig(ALICE_PK, alice, bob, 1e6, NONCE), alice, bob, 1e6, NONCE);
        (uint8 v, bytes32 r, bytes32 s) = _split(_cancelSig(ALICE_PK, alice, NONCE));
        _expectAlreadyUsed();
        usdc.cancelAuthorization(alice, NONCE, v, r, s);
    }

    function test_cancelAuthorization_reverts_InvalidAuthorizationSignature_when_wrongSigner() public {
        (uint8 v, bytes32 r, bytes32 s) = _split(_cancelSig(BOB_PK, alice, NONCE));
        _expectInvalidSignature(alice);
        usdc.cancelAuthorization(alice, NONCE, v, r, s);
        assertFalse(usdc.authorizationState(alice, NONCE));
    }

    function test_cancelAuthorization_reverts_InvalidAuthorizationSignature_when_signedForOtherNonce() public {
        bytes memory sig = _cancelSig(ALICE_PK, alice, keccak256("other"));
        _expectInvalidSignature(alice);
        usdc.cancelAuthorization(alice, NONCE, sig);
    }

    /*//////////////////////////////////////////////////////////////
                                 permit
    //////////////////////////////////////////////////////////////*/

    function _permitSig(uint256 pk, address owner, address spender, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        return vm.sign(pk, _digest(keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, nonce, deadline))));
    }

    function test_permit_setsAllowanceAndIncrementsNonce() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(ALICE_PK, alice, bob, 123e6, 0, deadline);
        vm.expectEmit(true, true, true, true, address(usdc));
        emit ERC20.Approval(alice, bob, 123e6);
        vm.prank(relayer);
        usdc.permit(alice, bob, 123e6, deadline, v, r, s);
        assertEq(usdc.allowance(alice, bob), 123e6);
        assertEq(usdc.nonces(alice), 1);

        vm.prank(bob);
        usdc.transferFrom(alice, bob, 123e6);
        assertEq(usdc.balanceOf(bob), 123e6);
    }

    function test_permit_succeeds_when_atDeadline() public {
        uint256 deadline = block.timestamp;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(ALICE_PK, alice, bob, 1, 0, deadline);
        usdc.permit(alice, bob, 1, deadline, v, r, s);
        assertEq(usdc.allowance(alice, bob), 1);
    }

    function test_permit_reverts_PermitExpired_when_afterDeadline() public {
        uint256 deadline = block.timestamp;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(ALICE_PK, alice, bob, 1, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(ERC20.PermitExpired.selector);
        usdc.permit(alice, bob, 1, deadline, v, r, s);
    }

    function test_permit_reverts_InvalidPermit_when_wrongSigner() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(BOB_PK, alice, bob, 1, 0, deadline);
        vm.expectRevert(ERC20.InvalidPermit.selector);
        usdc.permit(alice, bob, 1, deadline, v, r, s);
    }

    function test_permit_reverts_InvalidPermit_when_replayed() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(ALICE_PK, alice, bob, 1, 0, deadline);
        usdc.permit(alice, bob, 1, deadline, v, r, s);
        vm.expectRevert(ERC20.InvalidPermit.selector);
        usdc.permit(alice, bob, 1, deadline, v, r, s);
    }

    function test_permit_reverts_InvalidPermit_when_signedForAnotherDomainVersion() public {
        uint256 deadline = block.timestamp + 1;
        bytes32 wrongDomain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("USD Coin"),
                keccak256("1"),
                block.chainid,
                address(usdc)
            )
        );
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01", wrongDomain, keccak256(abi.encode(PERMIT_TYPEHASH, alice, bob, uint256(1), uint256(0), deadline))
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_PK, digest);
        vm.expectRevert(ERC20.InvalidPermit.selector);
        usdc.permit(alice, bob, 1, deadline, v, r, s);
    }
}
