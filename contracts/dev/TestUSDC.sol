// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "solady/tokens/ERC20.sol";
import {Ownable} from "solady/auth/Ownable.sol";
import {SignatureCheckerLib} from "solady/utils/SignatureCheckerLib.sol";

/// @title TestUSDC
/// @notice A USDC-like token for development chains and tests: 6 decimals, owner mint, EIP-2612
///         `permit`, and ERC-3009 (`transferWithAuthorization`, `receiveWithAuthorization`,
///         `cancelAuthorization`) in both the `v, r, s` and the `bytes signature` forms, with the
///         same EIP-712 types and checks as Circle's FiatToken v2.2.
/// @dev The EIP-712 domain is {name, version, chainId, verifyingContract}; x402 requirements carry
///      `name` and `version` in `extra`, so they are constructor arguments.
contract TestUSDC is ERC20, Ownable {
    /// @notice keccak256("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH =
        0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267;

    /// @notice keccak256("ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH =
        0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8;

    /// @notice keccak256("CancelAuthorization(address authorizer,bytes32 nonce)")
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429;

    /// @dev secp256k1n / 2: the largest s EIP-2 allows.
    uint256 private constant _SECP256K1_HALF_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    string private _name;
    string private _symbol;
    bytes32 private immutable _nameHash;
    bytes32 private immutable _versionHashValue;

    mapping(address authorizer => mapping(bytes32 nonce => bool used)) private _authorizationStates;

    /// @notice An ERC-3009 authorization was used.
    /// @param authorizer The signer.
    /// @param nonce The authorization's nonce.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);

    /// @notice An ERC-3009 authorization was cancelled before use.
    /// @param authorizer The signer.
    /// @param nonce The cancelled nonce.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    /// @notice The authorization's `validAfter` has not passed.
    error AuthorizationNotYetValid(uint256 timestamp, uint256 validAfter);

    /// @notice The authorization's `validBefore` has passed.
    error AuthorizationExpired(uint256 timestamp, uint256 validBefore);

    /// @notice The nonce was already used or cancelled.
    error AuthorizationAlreadyUsed(address authorizer, bytes32 nonce);

    /// @notice The signature is not the authorizer's.
    error InvalidAuthorizationSignature(address authorizer);

    /// @notice `receiveWithAuthorization` called by someone other than the payee.
    error CallerMustBePayee(address caller, address payee);

    /// @param name_ The token name, also the EIP-712 domain name (e.g. "USD Coin").
    /// @param symbol_ The token symbol.
    /// @param version_ The EIP-712 domain version (USDC uses "2").
    /// @param owner_ The account allowed to mint.
    constructor(string memory name_, string memory symbol_, string memory version_, address owner_) {
        _name = name_;
        _symbol = symbol_;
        _nameHash = keccak256(bytes(name_));
        _versionHashValue = keccak256(bytes(version_));
        _initializeOwner(owner_);
    }

    /// @notice The token name.
    /// @return The name.
    function name() public view override returns (string memory) {
        return _name;
    }

    /// @notice The token symbol.
    /// @return The symbol.
    function symbol() public view override returns (string memory) {
        return _symbol;
    }

    /// @notice 6, like USDC.
    /// @return The number of decimals.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Creates `amount` tokens for `to`. Owner only.
    /// @param to The recipient.
    /// @param amount The amount to mint.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice Whether `authorizer` has used or cancelled `nonce`.
    /// @param authorizer The signer.
    /// @param nonce The nonce.
    /// @return True once used or cancelled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationStates[authorizer][nonce];
    }

    /// @notice Executes a transfer signed by `from` (v, r, s form).
    /// @param from The payer and signer.
    /// @param to The payee.
    /// @param value The amount.
    /// @param validAfter Valid strictly after this time.
    /// @param validBefore Valid strictly before this time.
    /// @param nonce The signer's unique nonce.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _transferWithAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, abi.encodePacked(r, s, v)
        );
    }

    /// @notice Executes a transfer signed by `from` (bytes form: ECDSA or ERC-1271).
    /// @param from The payer and signer.
    /// @param to The payee.
    /// @param value The amount.
    /// @param validAfter Valid strictly after this time.
    /// @param validBefore Valid strictly before this time.
    /// @param nonce The signer's unique nonce.
    /// @param signature The signature.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        _transferWithAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature
        );
    }

    /// @notice Receives a transfer signed by `from`; the caller must be the payee (v, r, s form).
    /// @param from The payer and signer.
    /// @param to The payee, who must be msg.sender.
    /// @param value The amount.
    /// @param validAfter Valid strictly after this time.
    /// @param validBefore Valid strictly before this time.
    /// @param nonce The signer's unique nonce.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        if (to != msg.sender) revert CallerMustBePayee(msg.sender, to);
        _transferWithAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, abi.encodePacked(r, s, v)
        );
    }

    /// @notice Receives a transfer signed by `from`; the caller must be the payee (bytes form).
    /// @param from The payer and signer.
    /// @param to The payee, who must be msg.sender.
    /// @param value The amount.
    /// @param validAfter Valid strictly after this time.
    /// @param validBefore Valid strictly before this time.
    /// @param nonce The signer's unique nonce.
    /// @param signature The signature.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external {
        if (to != msg.sender) revert CallerMustBePayee(msg.sender, to);
        _transferWithAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature
        );
    }

    /// @notice Cancels an unused authorization (v, r, s form).
    /// @param authorizer The signer whose nonce is cancelled.
    /// @param nonce The nonce.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        _cancelAuthorization(authorizer, nonce, abi.encodePacked(r, s, v));
    }

    /// @notice Cancels an unused authorization (bytes form).
    /// @param authorizer The signer whose nonce is cancelled.
    /// @param nonce The nonce.
    /// @param signature The signature.
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) external {
        _cancelAuthorization(authorizer, nonce, signature);
    }

    function _transferWithAuthorization(
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) private {
        if (block.timestamp <= validAfter) revert AuthorizationNotYetValid(block.timestamp, validAfter);
        if (block.timestamp >= validBefore) revert AuthorizationExpired(block.timestamp, validBefore);
        _requireUnused(from, nonce);
        bytes32 digest = _digest(keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce)));
        if (!_isValidSignature(from, digest, signature)) revert InvalidAuthorizationSignature(from);
        _authorizationStates[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _transfer(from, to, value);
    }

    function _cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature) private {
        _requireUnused(authorizer, nonce);
        bytes32 digest = _digest(keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
        if (!_isValidSignature(authorizer, digest, signature)) revert InvalidAuthorizationSignature(authorizer);
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    /// @dev As strict as FiatToken v2.2's SignatureChecker: a contract signer is asked through
    ///      ERC-1271; an EOA signature must be exactly 65 bytes (r, s, v) with v in {27, 28} and a
    ///      low s (EIP-2), so nothing this token accepts would be refused by real USDC.
    function _isValidSignature(address signer, bytes32 digest, bytes memory signature) private view returns (bool) {
        if (signer.code.length != 0) {
            return SignatureCheckerLib.isValidERC1271SignatureNow(signer, digest, signature);
        }
        if (signature.length != 65) return false;
        bytes32 r;
        bytes32 s;
        uint8 v;
        /// @solidity memory-safe-assembly
        assembly {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        if (uint256(s) > _SECP256K1_HALF_ORDER || (v != 27 && v != 28)) return false;
        address recovered = ecrecover(digest, v, r, s);
        return recovered != address(0) && recovered == signer;
    }

    function _requireUnused(address authorizer, bytes32 nonce) private view {
        if (_authorizationStates[authorizer][nonce]) revert AuthorizationAlreadyUsed(authorizer, nonce);
    }

    function _digest(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR(), structHash));
    }

    /// @dev The EIP-712 domain name hash (used by `permit` and `DOMAIN_SEPARATOR`).
    function _constantNameHash() internal view override returns (bytes32) {
        return _nameHash;
    }

    /// @dev The EIP-712 domain version hash.
    function _versionHash() internal view override returns (bytes32) {
        return _versionHashValue;
    }

    /// @dev USDC gives Permit2 no special allowance.
    function _givePermit2InfiniteAllowance() internal pure override returns (bool) {
        return false;
    }
}
