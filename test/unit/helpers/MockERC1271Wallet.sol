// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @notice A minimal ERC-1271 smart wallet: a signature is valid when it is the owner's 65-byte
///         ECDSA signature over the given hash.
contract MockERC1271Wallet {
    bytes4 internal constant _MAGIC = 0x1626ba7e; // isValidSignature(bytes32,bytes)

    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(hash, v, r, s);
        return (signer != address(0) && signer == owner) ? _MAGIC : bytes4(0xffffffff);
    }

    /// @dev Lets tests move the wallet's tokens (e.g. approve a collector).
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        require(msg.sender == owner, "not owner");
        (bool ok, bytes memory ret) = target.call(data);
        require(ok, "call failed");
        return ret;
    }
}

/// @notice CREATE2 factory for MockERC1271Wallet, the "prepare" target of ERC-6492 signatures.
///         Deploying the same (owner, salt) twice reverts.
contract MockERC1271WalletFactory {
    event WalletDeployed(address indexed wallet, address indexed owner, bytes32 salt);

    function deployWallet(address owner, bytes32 salt) external returns (address wallet) {
        wallet = address(new MockERC1271Wallet{salt: salt}(owner));
        emit WalletDeployed(wallet, owner, salt);
    }

    function predictWallet(address owner, bytes32 salt) external view returns (address) {
        bytes32 initCodeHash = keccak256(abi.encodePacked(type(MockERC1271Wallet).creationCode, abi.encode(owner)));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initCodeHash)))));
    }
}
