//! Turning revert data into a readable reason: the escrow's (both interface versions') and the
//! test token's custom errors by name and arguments, `Error(string)` and `Panic(uint256)`.

use alloy::dyn_abi::{DynSolType, DynSolValue};
use alloy::hex;
use alloy::rpc::json_rpc::RpcError;
use alloy::transports::TransportError;
use x402_escrow_bindings::AuthCaptureEscrow::AuthCaptureEscrowErrors;
use x402_escrow_bindings::IAuthCaptureEscrowV1_1::IAuthCaptureEscrowV1_1Errors;
use x402_escrow_bindings::TestUSDC::TestUSDCErrors;

/// `Error(string)`.
const ERROR_STRING: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
/// `Panic(uint256)`.
const PANIC: [u8; 4] = [0x4e, 0x48, 0x7b, 0x71];

/// The Solidity signature (`Name(type,…)`) of a known error selector.
fn signature(selector: [u8; 4]) -> Option<&'static str> {
    if selector == ERROR_STRING {
        return Some("Error(string)");
    }
    if selector == PANIC {
        return Some("Panic(uint256)");
    }
    AuthCaptureEscrowErrors::signature_by_selector(selector)
        .or_else(|| IAuthCaptureEscrowV1_1Errors::signature_by_selector(selector))
        .or_else(|| TestUSDCErrors::signature_by_selector(selector))
}

fn fmt_value(v: &DynSolValue) -> String {
    match v {
        DynSolValue::Address(a) => format!("{a:#x}"),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::FixedBytes(w, size) => format!("0x{}", hex::encode(&w[..*size])),
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => format!(
            "[{}]",
            items.iter().map(fmt_value).collect::<Vec<_>>().join(", ")
        ),
        DynSolValue::Tuple(items) => format!(
            "({})",
            items.iter().map(fmt_value).collect::<Vec<_>>().join(", ")
        ),
        other => format!("{other:?}"),
    }
}

/// A readable reason for revert data: `InsufficientAuthorization(0x…, 5, 6)`,
/// `Error("…")`, or `unknown revert 0x…`.
pub fn decode_revert(data: &[u8]) -> String {
    if data.is_empty() {
        return "reverted without data".to_owned();
    }
    let Some((selector, args)) = data.split_first_chunk::<4>() else {
        return format!("unknown revert 0x{}", hex::encode(data));
    };
    let Some(sig) = signature(*selector) else {
        return format!("unknown revert 0x{}", hex::encode(data));
    };
    let Some((name, params)) = sig.split_once('(') else {
        return sig.to_owned();
    };
    let decoded = DynSolType::parse(&format!("({params}"))
        .ok()
        .and_then(|ty| ty.abi_decode_sequence(args).ok());
    match decoded {
        Some(DynSolValue::Tuple(values)) => format!(
            "{name}({})",
            values.iter().map(fmt_value).collect::<Vec<_>>().join(", ")
        ),
        _ => format!("{name}(undecodable 0x{})", hex::encode(args)),
    }
}

/// The revert data a node returned with `err`, if it is a revert that carries some.
pub fn revert_data_of(err: &TransportError) -> Option<alloy::primitives::Bytes> {
    match err {
        RpcError::ErrorResp(payload) => payload.as_revert_data(),
        _ => None,
    }
}

/// When a JSON-RPC error is an execution revert, its reason (decoded when it carries data);
/// `None` for anything else (no answer from the node, or an error that is not a revert).
pub fn revert_reason_of(err: &TransportError) -> Option<String> {
    let RpcError::ErrorResp(payload) = err else {
        return None;
    };
    if let Some(data) = payload.as_revert_data() {
        return Some(decode_revert(&data));
    }
    let msg = payload.message.to_lowercase();
    msg.contains("revert")
        .then(|| format!("reverted: {}", payload.message))
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{B256, U256};
    use alloy::sol_types::SolError;
    use x402_escrow_bindings::AuthCaptureEscrow;

    use super::*;

    #[test]
    fn decodes_escrow_errors_by_name_and_args() {
        let e = AuthCaptureEscrow::InsufficientAuthorization {
            paymentInfoHash: B256::repeat_byte(0xab),
            authorizedAmount: U256::from(5),
            requestedAmount: U256::from(6),
        };
        let s = decode_revert(&e.abi_encode());
        assert_eq!(
            s,
            format!("InsufficientAuthorization(0x{}, 5, 6)", "ab".repeat(32))
        );
        assert_eq!(
            decode_revert(&AuthCaptureEscrow::ZeroAmount {}.abi_encode()),
            "ZeroAmount()"
        );
        assert!(decode_revert(&[1, 2, 3, 4, 5]).starts_with("unknown revert"));
    }
}
