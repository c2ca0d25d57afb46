//! Uniswap Permit2 at its canonical address on a test chain.
//!
//! The code comes from `../shared/canonical/Permit2.json` (relative to the workspace root: the
//! shared fixtures are read in place, never copied into the project). Its `bytecode` is deployed
//! once if it is creation code and the resulting runtime code is used; if it is runtime code (as
//! the file holds today) it is used as is. Either way the code carries immutables from the
//! address it was made at: Permit2 caches its chain id and EIP-712 domain separator, so a copy at
//! the canonical address would verify signatures against another address's domain. The cached
//! separator is therefore replaced by the one a deployment at the canonical address on this
//! chain computes, found by value in the code, and checked afterwards through
//! `DOMAIN_SEPARATOR()`.

use std::path::PathBuf;

use alloy::network::TransactionBuilder;
use alloy::primitives::{B256, Bytes};
use alloy::providers::ext::AnvilApi;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol;
use alloy::sol_types::eip712_domain;
use x402_escrow_bindings::contracts::WORKSPACE_ROOT;
use x402_escrow_bindings::deploy::PERMIT2;

use crate::{Error, Result};

sol! {
    /// The one Permit2 view this module reads.
    #[sol(rpc)]
    interface IPermit2Domain {
        /// Permit2's EIP-712 domain separator on this chain.
        function DOMAIN_SEPARATOR() external view returns (bytes32);
    }
}

/// `../shared/canonical/Permit2.json`, from the workspace root.
pub fn permit2_json_path() -> PathBuf {
    PathBuf::from(WORKSPACE_ROOT).join("../shared/canonical/Permit2.json")
}

/// Permit2's EIP-712 domain separator at its canonical address on `chain_id` (name "Permit2",
/// no version).
pub fn permit2_domain_separator(chain_id: u64) -> B256 {
    eip712_domain! {
        name: "Permit2",
        chain_id: chain_id,
        verifying_contract: PERMIT2,
    }
    .separator()
}

/// Places Permit2 at [`PERMIT2`] with `anvil_setCode` (see the module docs) and checks its
/// domain separator. `provider` must reach an anvil.
pub async fn install_permit2(provider: &DynProvider) -> Result<()> {
    let code = read_permit2_code()?;
    let runtime = runtime_code(provider, code).await?;
    set_code(provider, runtime.clone()).await?;

    let chain_id = provider.get_chain_id().await.map_err(|source| Error::Rpc {
        what: "reading the chain id",
        source: Box::new(source),
    })?;
    let expected = permit2_domain_separator(chain_id);
    let cached = domain_separator(provider).await?;
    if cached != expected {
        set_code(provider, replace_word(&runtime, cached, expected)?).await?;
        let now = domain_separator(provider).await?;
        if now != expected {
            return Err(Error::Permit2(format!(
                "domain separator {now} after patching, expected {expected}"
            )));
        }
    }
    Ok(())
}

/// The `bytecode` field of the shared Permit2 file.
fn read_permit2_code() -> Result<Bytes> {
    let path = permit2_json_path();
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Permit2(format!("{}: {e}", path.display())))?;
    let hex = json
        .get("bytecode")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::Permit2(format!("{}: no string `bytecode`", path.display())))?;
    hex.parse()
        .map_err(|e| Error::Permit2(format!("{}: `bytecode`: {e}", path.display())))
}

/// The runtime code: what `code` deploys if it is creation code, else `code` itself (runtime
/// code run as a constructor reverts, having no calldata to dispatch on).
async fn runtime_code(provider: &DynProvider, code: Bytes) -> Result<Bytes> {
    let create = TransactionRequest::default().with_deploy_code(code.clone());
    match provider.call(create).await {
        Ok(deployed) if !deployed.is_empty() => Ok(deployed),
        Ok(_) => Ok(code),
        // A JSON-RPC error response is the node refusing the execution (the revert); anything
        // else (the transport) is a real failure.
        Err(e) if e.as_error_resp().is_some() => Ok(code),
        Err(source) => Err(Error::Rpc {
            what: "simulating Permit2's deployment",
            source: Box::new(source),
        }),
    }
}

async fn set_code(provider: &DynProvider, code: Bytes) -> Result<()> {
    provider
        .anvil_set_code(PERMIT2, code)
        .await
        .map_err(|source| Error::Rpc {
            what: "placing Permit2 at its canonical address",
            source: Box::new(source),
        })
}

async fn domain_separator(provider: &DynProvider) -> Result<B256> {
    IPermit2Domain::new(PERMIT2, provider.clone())
        .DOMAIN_SEPARATOR()
        .call()
        .await
        .map_err(|source| Error::Contract {
            what: "reading Permit2's DOMAIN_SEPARATOR",
            source: Box::new(source),
        })
}

/// `code` with its single 32-byte occurrence of `from` replaced by `to`.
fn replace_word(code: &Bytes, from: B256, to: B256) -> Result<Bytes> {
    let mut found = code
        .windows(32)
        .enumerate()
        .filter(|(_, window)| *window == from.as_slice())
        .map(|(i, _)| i);
    let (Some(at), None) = (found.next(), found.next()) else {
        return Err(Error::Permit2(format!(
            "the cached domain separator {from} is not in the code exactly once"
        )));
    };
    let mut patched = code.to_vec();
    patched[at..at + 32].copy_from_slice(to.as_slice());
    Ok(patched.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_word_needs_exactly_one_occurrence() {
        let a = B256::repeat_byte(0xaa);
        let b = B256::repeat_byte(0xbb);
        let code: Bytes = [&[1u8, 2][..], a.as_slice(), &[3]].concat().into();
        let patched = replace_word(&code, a, b).unwrap();
        assert_eq!(&patched[2..34], b.as_slice());
        assert_eq!((patched[0], patched[1], patched[34]), (1, 2, 3));

        assert!(matches!(replace_word(&code, b, a), Err(Error::Permit2(_))));
        let twice: Bytes = [a.as_slice(), a.as_slice()].concat().into();
        assert!(matches!(replace_word(&twice, a, b), Err(Error::Permit2(_))));
    }

    #[test]
    fn domain_separator_has_no_version_field() {
        // keccak256(abi.encode(keccak256("EIP712Domain(string name,uint256 chainId,address
        // verifyingContract)"), keccak256("Permit2"), 31337, PERMIT2)), computed with `cast`.
        assert_eq!(
            permit2_domain_separator(31337),
            alloy::primitives::b256!(
                "4d553c58ae79a6c4ba64f0e690a5d1cd2deff8c6b91cf38300e0f2b76f9ee346"
            )
        );
    }
}
