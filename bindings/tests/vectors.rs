//! The official x402 client's vectors (`testdata/x402-official-client.json`, `@x402/evm` 2.27.0):
//! our hashing reproduces `derived` and the ERC-3009 nonce, our signer reproduces the client's
//! signatures byte for byte.

use std::path::Path;

use alloy::primitives::aliases::{U48, U120};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use eyre::{Context, OptionExt, Result};
use serde_json::Value;
use x402_escrow_bindings::eip3009::{Authorization, verify_payment_signature};
use x402_escrow_bindings::{
    PaymentInfo, ReceiveWithAuthorization, TransferWithAuthorization, payer_agnostic_hash,
    payment_info_hash, token_domain,
};

fn vectors() -> Result<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/x402-official-client.json");
    let text = std::fs::read_to_string(&path).wrap_err_with(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v[key]
        .as_str()
        .ok_or_eyre(format!("{key} is not a string in {v}"))
}

fn u64_at(v: &Value, key: &str) -> Result<u64> {
    v[key]
        .as_u64()
        .ok_or_eyre(format!("{key} is not an integer in {v}"))
}

fn addr(v: &Value, key: &str) -> Result<Address> {
    Ok(str_at(v, key)?.parse()?)
}

fn b256(v: &Value, key: &str) -> Result<B256> {
    Ok(str_at(v, key)?.parse()?)
}

/// Decimal string (`"1000000"`) to U256.
fn dec(v: &Value, key: &str) -> Result<U256> {
    Ok(U256::from_str_radix(str_at(v, key)?, 10)?)
}

fn payment_info(p: &Value) -> Result<PaymentInfo> {
    Ok(PaymentInfo {
        operator: addr(p, "operator")?,
        payer: addr(p, "payer")?,
        receiver: addr(p, "receiver")?,
        token: addr(p, "token")?,
        maxAmount: U120::from_str_radix(str_at(p, "maxAmount")?, 10)?,
        preApprovalExpiry: U48::from(u64_at(p, "preApprovalExpiry")?),
        authorizationExpiry: U48::from(u64_at(p, "authorizationExpiry")?),
        refundExpiry: U48::from(u64_at(p, "refundExpiry")?),
        minFeeBps: u16::try_from(u64_at(p, "minFeeBps")?)?,
        maxFeeBps: u16::try_from(u64_at(p, "maxFeeBps")?)?,
        feeReceiver: addr(p, "feeReceiver")?,
        salt: str_at(p, "salt")?.parse()?,
    })
}

/// The six ERC-3009 fields of `payload.authorization` (either struct has the same fields).
/// The ERC-3009 message (`ReceiveWithAuthorization` or `TransferWithAuthorization`) of a
/// payload's `authorization`.
fn authorization<A>(a: &Value) -> Result<A>
where
    A: From<(Address, Address, U256, U256, U256, B256)>,
{
    Ok((
        addr(a, "from")?,
        addr(a, "to")?,
        dec(a, "value")?,
        dec(a, "validAfter")?,
        dec(a, "validBefore")?,
        b256(a, "nonce")?,
    )
        .into())
}

/// The token's EIP-712 domain: name and version from the requirements' `extra`, the asset.
fn domain_of(requirements: &Value, chain_id: u64) -> Result<Eip712Domain> {
    let extra = &requirements["extra"];
    Ok(token_domain(
        str_at(extra, "name")?,
        str_at(extra, "version")?,
        chain_id,
        addr(requirements, "asset")?,
    ))
}

fn chain_id_of(network: &str) -> Result<u64> {
    Ok(network
        .strip_prefix("eip155:")
        .ok_or_eyre("not an eip155 network")?
        .parse()?)
}

#[test]
fn auth_capture_vectors() -> Result<()> {
    let v = vectors()?;
    let payer: PrivateKeySigner = str_at(&v, "payerPrivateKey")?.parse()?;
    assert_eq!(payer.address(), addr(&v, "payer")?);

    let cases = v["authCapture"]
        .as_array()
        .ok_or_eyre("no authCapture cases")?;
    assert!(!cases.is_empty());
    for case in cases {
        let name = str_at(case, "name")?;
        let derived = &case["derived"];
        let requirements = &case["requirements"];
        let payload = &case["payload"];
        let chain_id = u64_at(derived, "chainId")?;
        let escrow = addr(derived, "escrow")?;
        let info = payment_info(&derived["paymentInfo"])?;
        assert_eq!(
            chain_id,
            chain_id_of(str_at(requirements, "network")?)?,
            "{name}"
        );

        // Hashes.
        let hash = payment_info_hash(&info, chain_id, escrow);
        let agnostic = payer_agnostic_hash(&info, chain_id, escrow);
        assert_eq!(
            hash,
            b256(derived, "paymentInfoHash")?,
            "{name}: paymentInfoHash"
        );
        assert_eq!(
            agnostic,
            b256(derived, "payerAgnosticHash")?,
            "{name}: payerAgnosticHash"
        );
        assert_eq!(
            agnostic,
            b256(&payload["authorization"], "nonce")?,
            "{name}: ERC-3009 nonce"
        );

        // The authorization the collector will present equals what the client signed.
        let signed: ReceiveWithAuthorization = authorization(&payload["authorization"])?;
        let to = signed.to;
        assert_eq!(
            ReceiveWithAuthorization::for_payment(&info, to, chain_id, escrow),
            signed,
            "{name}"
        );

        // Re-signing reproduces the client's signature byte for byte, and it verifies.
        let domain = domain_of(requirements, chain_id)?;
        let expected: Bytes = str_at(payload, "signature")?.parse()?;
        assert_eq!(signed.sign(&payer, &domain)?, expected, "{name}: signature");
        assert_eq!(
            signed.recover_signer(&domain, &expected)?,
            payer.address(),
            "{name}"
        );
        verify_payment_signature(&info, to, chain_id, escrow, &domain, &expected)?;

        // The signature is bound to this escrow: another escrow's nonce does not verify.
        assert!(
            verify_payment_signature(
                &info,
                to,
                chain_id,
                Address::repeat_byte(1),
                &domain,
                &expected
            )
            .is_err(),
            "{name}"
        );
    }
    Ok(())
}

#[test]
fn exact_vectors() -> Result<()> {
    let v = vectors()?;
    let payer: PrivateKeySigner = str_at(&v, "payerPrivateKey")?.parse()?;
    let cases = v["exact"].as_array().ok_or_eyre("no exact cases")?;
    assert!(!cases.is_empty());
    for case in cases {
        let name = str_at(case, "name")?;
        let requirements = &case["requirements"];
        let payload = &case["payload"];
        let auth: TransferWithAuthorization = authorization(&payload["authorization"])?;
        let chain_id = chain_id_of(str_at(requirements, "network")?)?;
        let domain = domain_of(requirements, chain_id)?;
        let expected: Bytes = str_at(payload, "signature")?.parse()?;
        assert_eq!(auth.sign(&payer, &domain)?, expected, "{name}: signature");
        auth.verify_signature(&domain, &expected)?;
    }
    Ok(())
}
