// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @dev The EIP-712 domain separator of a TestUSDC named "USD Coin", version "2", deployed at
///      `token` on this chain, written out from EIP-712 (not read from the token).
function usdcDomainSeparator(address token) view returns (bytes32) {
    return keccak256(
        abi.encode(
            keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
            keccak256("USD Coin"),
            keccak256("2"),
            block.chainid,
            token
        )
    );
}
