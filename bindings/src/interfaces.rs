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
//!
//! Both are generated from the JSON ABIs next to this file (`interfaces/IERC20.json`,
//! `interfaces/IERC3009.json`; each function and event is one of `TestUSDC`'s, with the same
//! parameter types and overload order, which a test below checks). What each item does:
//!
//! | item | meaning |
//! |---|---|
//! | `IERC20::Transfer` | `value` tokens moved from `from` to `to` (`from` = zero on mint, `to` = zero on burn) |
//! | `IERC20::Approval` | `owner` allowed `spender` to spend `value` of its tokens |
//! | `name`, `symbol`, `decimals` | the token's metadata (USDC: `"USD Coin"`, `"USDC"`, 6) |
//! | `totalSupply` | all tokens in existence |
//! | `balanceOf(account)` | the tokens `account` holds |
//! | `allowance(owner, spender)` | what `spender` may still spend of `owner`'s tokens |
//! | `approve(spender, value)` | allows `spender` to spend `value` of the caller's tokens (replacing any allowance) |
//! | `transfer(to, value)` | moves `value` of the caller's tokens to `to` |
//! | `transferFrom(from, to, value)` | moves `value` of `from`'s tokens to `to`, spending the caller's allowance |
//! | `IERC3009::AuthorizationUsed` | the authorization (`authorizer`, `nonce`) was used |
//! | `IERC3009::AuthorizationCanceled` | the authorization (`authorizer`, `nonce`) was cancelled before use |
//! | `authorizationState(authorizer, nonce)` | whether `authorizer`'s `nonce` was used or cancelled |
//! | `transferWithAuthorization` | moves `value` from `from` to `to` on `from`'s signature (anyone may submit it) |
//! | `receiveWithAuthorization` | moves `value` from `from` to the caller, who must be `to`, on `from`'s signature |
//! | `cancelAuthorization` | cancels `authorizer`'s unused `nonce` on its signature |

// The `v, r, s` overloads take nine arguments.
#![allow(clippy::too_many_arguments)]

alloy::sol!(
    /// ERC-20: balances, allowances and transfers, with the optional metadata getters.
    #[sol(rpc, all_derives)]
    IERC20,
    "src/interfaces/IERC20.json"
);

alloy::sol!(
    /// ERC-3009: transfers authorized by the payer's EIP-712 signature, each with a unique nonce.
    #[sol(rpc, all_derives)]
    IERC3009,
    "src/interfaces/IERC3009.json"
);

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// `(kind, name, parameter types)` of every ABI entry.
    fn entries(abi: &str) -> Vec<(String, String, Vec<String>)> {
        let abi: Value = serde_json::from_str(abi).unwrap();
        let abi = abi.get("abi").unwrap_or(&abi).as_array().unwrap().clone();
        abi.iter()
            .map(|entry| {
                let text = |key: &str| entry[key].as_str().unwrap_or_default().to_owned();
                let inputs = entry["inputs"].as_array().unwrap();
                let inputs = inputs.iter().map(|i| i["type"].to_string());
                (text("type"), text("name"), inputs.collect())
            })
            .collect()
    }

    /// Every function and event of the interfaces is one of `TestUSDC`'s, with the same
    /// parameter types, and overloads keep `TestUSDC`'s order (so their `_0` / `_1` suffixes agree).
    #[test]
    fn interfaces_are_part_of_the_test_token() {
        let token = entries(include_str!("../artifacts/TestUSDC.json"));
        for abi in [
            include_str!("interfaces/IERC20.json"),
            include_str!("interfaces/IERC3009.json"),
        ] {
            let entries = entries(abi);
            for entry in &entries {
                assert!(token.contains(entry), "{entry:?} is not in TestUSDC's ABI");
                let overloads = |list: &[(String, String, Vec<String>)]| -> Vec<_> {
                    list.iter().filter(|e| e.1 == entry.1).cloned().collect()
                };
                assert_eq!(overloads(&entries), overloads(&token), "{}", entry.1);
            }
        }
    }
}
