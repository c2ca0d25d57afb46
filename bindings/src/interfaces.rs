//! Token interfaces for production code: [`IERC20`] and [`IERC3009`], the parts of USDC (Circle's
//! FiatToken v2.2) that the escrow, the operator and the SDK use, so no code has to speak to a
//! real token through the ABI of the development token [`TestUSDC`](crate::TestUSDC).
//!
//! Both come with `#[sol(rpc)]`: `IERC20::new(token, provider)` gives an instance whose methods
//! build calls and transactions; `<fn>Call` structs encode calldata (e.g. for a batch), and the
//! event structs decode logs (`IERC20::Transfer`, `IERC3009::AuthorizationUsed`).
//!
//! ERC-3009's overloads are numbered as in `TestUSDC`'s ABI, so a call written against
//! `TestUSDC` keeps its name (a test pins every selector):
//!
//! | function | `_0` | `_1` |
//! |---|---|---|
//! | `transferWithAuthorization` | `bytes signature` | `v, r, s` |
//! | `receiveWithAuthorization` | `bytes signature` | `v, r, s` |
//! | `cancelAuthorization` | `v, r, s` | `bytes signature` |
//!
//! The `bytes signature` forms (USDC v2.2) also accept ERC-1271 signatures of contract wallets.

// The `v, r, s` overloads take nine arguments.
#![allow(clippy::too_many_arguments)]

alloy::sol! {
    /// ERC-20: balances, allowances and transfers, with the optional metadata getters.
    #[sol(rpc, all_derives)]
    interface IERC20 {
        /// `value` tokens moved from `from` to `to` (`from` = zero on mint, `to` = zero on burn).
        event Transfer(address indexed from, address indexed to, uint256 value);

        /// `owner` allowed `spender` to spend `value` of its tokens.
        event Approval(address indexed owner, address indexed spender, uint256 value);

        /// The token's name (USDC: `"USD Coin"`).
        function name() external view returns (string memory);

        /// The token's symbol (USDC: `"USDC"`).
        function symbol() external view returns (string memory);

        /// The number of decimals of an amount (USDC: 6).
        function decimals() external view returns (uint8);

        /// All tokens in existence.
        function totalSupply() external view returns (uint256);

        /// The tokens `account` holds.
        function balanceOf(address account) external view returns (uint256);

        /// What `spender` may still spend of `owner`'s tokens.
        function allowance(address owner, address spender) external view returns (uint256);

        /// Allows `spender` to spend `value` of the caller's tokens (replacing any allowance).
        function approve(address spender, uint256 value) external returns (bool);

        /// Moves `value` of the caller's tokens to `to`.
        function transfer(address to, uint256 value) external returns (bool);

        /// Moves `value` of `from`'s tokens to `to`, spending the caller's allowance.
        function transferFrom(address from, address to, uint256 value) external returns (bool);
    }

    /// ERC-3009: transfers authorized by the payer's EIP-712 signature, each with a unique nonce.
    #[sol(rpc, all_derives)]
    interface IERC3009 {
        /// The authorization (`authorizer`, `nonce`) was used.
        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);

        /// The authorization (`authorizer`, `nonce`) was cancelled before use.
        event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

        /// Whether `authorizer`'s `nonce` was used or cancelled.
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);

        /// Moves `value` from `from` to `to` on `from`'s signature (anyone may submit it);
        /// `signature` is 65-byte ECDSA or ERC-1271.
        function transferWithAuthorization(
            address from,
            address to,
            uint256 value,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 nonce,
            bytes memory signature
        ) external;

        /// Moves `value` from `from` to `to` on `from`'s signature (anyone may submit it);
        /// the signature split into `v, r, s`.
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
        ) external;

        /// Moves `value` from `from` to the caller, who must be `to`, on `from`'s signature;
        /// `signature` is 65-byte ECDSA or ERC-1271.
        function receiveWithAuthorization(
            address from,
            address to,
            uint256 value,
            uint256 validAfter,
            uint256 validBefore,
            bytes32 nonce,
            bytes memory signature
        ) external;

        /// Moves `value` from `from` to the caller, who must be `to`, on `from`'s signature;
        /// the signature split into `v, r, s`.
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
        ) external;

        /// Cancels `authorizer`'s unused `nonce` on its signature, split into `v, r, s`.
        function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)
            external;

        /// Cancels `authorizer`'s unused `nonce` on its signature (65-byte ECDSA or ERC-1271).
        function cancelAuthorization(address authorizer, bytes32 nonce, bytes memory signature)
            external;
    }
}
