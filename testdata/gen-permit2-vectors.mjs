// Permit2 vectors from the official client (@x402/evm 2.27.0 AuthCaptureEvmScheme), with a
// fixed clock and fixed randomness, signed with anvil's first development key.
import { readFileSync } from "node:fs";
import { privateKeyToAccount } from "viem/accounts";
import { AuthCaptureEvmScheme } from "@x402/evm/auth-capture/client";

const base = JSON.parse(readFileSync(process.argv[2], "utf8"));
const account = privateKeyToAccount(base.payerPrivateKey);
const out = [];
for (const c of base.authCapture) {
  const requirements = JSON.parse(JSON.stringify(c.requirements));
  requirements.extra.assetTransferMethod = "permit2";
  const realNow = Date.now;
  const realRandom = crypto.getRandomValues.bind(crypto);
  Date.now = () => c.nowSeconds * 1000;
  crypto.getRandomValues = (bytes) => { bytes.fill(c.randomByte); return bytes; };
  try {
    const scheme = new AuthCaptureEvmScheme(account);
    const result = await scheme.createPaymentPayload(2, requirements);
    out.push({
      name: c.name.replace(/^/, "permit2, "),
      nowSeconds: c.nowSeconds,
      randomByte: c.randomByte,
      requirements,
      payload: result.payload,
    });
  } finally {
    Date.now = realNow;
    crypto.getRandomValues = realRandom;
  }
}
process.stdout.write(JSON.stringify({
  generator: "@x402/evm 2.27.0 (official npm client), AuthCaptureEvmScheme with extra.assetTransferMethod = \"permit2\" added to each authCapture case of x402-official-client.json; deterministic time and randomness; `payload` is the client's own output",
  payerPrivateKey: base.payerPrivateKey,
  payer: base.payer,
  authCapturePermit2: out,
}, null, 2) + "\n");
