// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Deploys x402-escrow with CREATE2 through the deterministic deployment proxy
// (0x4e59b44847b379578588920ca78fbf26c0b4956c), so every address depends only on the salt and the
// contract's init code: the same on every chain, and the same as the Rust
// `x402_escrow_bindings::deploy::deploy_all` / `predict_addresses` produce.
//
// Always compile with the deploy profile (via-IR, optimizer 100,000 runs): other settings give
// other bytecode, hence other addresses.
//
// Local anvil (chain 31337: also deploys TestUSDC and, since a fresh anvil has none, Multicall3):
//
//   tools/toolchain anvil &
//   FOUNDRY_PROFILE=deploy tools/toolchain forge script script/Deploy.s.sol \
//     --rpc-url http://127.0.0.1:8545 --broadcast \
//     --private-key 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
//
// A real chain (RPC URL and key from the environment; never put a key on the command line of a
// shared machine, prefer a keystore account: `cast wallet import deployer --interactive`):
//
//   FOUNDRY_PROFILE=deploy tools/toolchain forge script script/Deploy.s.sol \
//     --rpc-url "$RPC_URL" --account deployer --broadcast            # or --private-key "$DEPLOYER_KEY"
//
//   Run without --broadcast first: a dry run simulates, prints the addresses and writes nothing.
//   With --broadcast, forge runs the script (and so writes the record) before it sends the
//   transactions: trust the record only once forge reports ONCHAIN EXECUTION COMPLETE & SUCCESSFUL
//   (or re-run the script, which is idempotent, with --resume / again).
//
// Environment:
//   DEPLOY_SALT        bytes32 CREATE2 salt. Default keccak256("x402-escrow.deploy.v1") =
//                      0x6daa495a5cd9e2835c49c1c51966843e7ac6baa2c885399ae0b84318a7612f90.
//   DEPLOY_TEST_TOKEN  true: deploy TestUSDC ("USD Coin", "USDC", version "2", owner = deployer) and,
//                      if the chain has no Multicall3, our own. Implied on chain 31337.
//                      Without it, a chain lacking 0xcA11bde05977b3631167028862bE2a173976CA11 is an error.
//   DEPLOYMENT_FILE    where to write the record (default deployments/<chainId>.json; must stay
//                      under ./deployments, the only writable path in foundry.toml).
//   DEPLOY_OVERWRITE   true: replace a record of a different escrow (always allowed on 31337).
//                      The committed deployments/8453.json and 84532.json describe the canonical
//                      v1.0 deployment and are protected by default: deploy ours to those chains
//                      with DEPLOYMENT_FILE=deployments/<name>.json, or overwrite deliberately.
//
// Permit2PaymentCollector: deployed only where Uniswap Permit2 has code at its canonical address
// 0x000000000022D473030F116dDEE9F6B43aC78BA3 (every major chain; not a fresh anvil, where the
// script says so and records no such collector). The record then carries `permit2PaymentCollector`.
//
// Idempotent: a contract whose predicted address already has code is skipped, so a re-run
// completes a partial deployment and re-writes the record. Re-running on a chain whose record
// describes the same escrow keeps the record's other keys (e.g. a `token` added by hand).

import {Script, console} from "forge-std/Script.sol";
import {VmSafe} from "forge-std/Vm.sol";

import {AuthCaptureEscrow} from "../contracts/AuthCaptureEscrow.sol";
import {ERC3009PaymentCollector} from "../contracts/collectors/ERC3009PaymentCollector.sol";
import {OperatorRefundCollector} from "../contracts/collectors/OperatorRefundCollector.sol";
import {Permit2PaymentCollector} from "../contracts/collectors/Permit2PaymentCollector.sol";
import {PreApprovalPaymentCollector} from "../contracts/collectors/PreApprovalPaymentCollector.sol";
import {Multicall3} from "../contracts/dev/Multicall3.sol";
import {OperatorBatchExecutor} from "../contracts/batch/OperatorBatchExecutor.sol";
import {TestUSDC} from "../contracts/dev/TestUSDC.sol";

contract Deploy is Script {
    /// @notice keccak256("x402-escrow.deploy.v1"); `deploy::DEFAULT_SALT` in the Rust bindings.
    bytes32 public constant DEFAULT_SALT = 0x6daa495a5cd9e2835c49c1c51966843e7ac6baa2c885399ae0b84318a7612f90;

    /// @notice The public Multicall3 singleton.
    address public constant MULTICALL3 = 0xcA11bde05977b3631167028862bE2a173976CA11;

    /// @notice Uniswap Permit2, at the same address on every chain that has it.
    address public constant PERMIT2 = 0x000000000022D473030F116dDEE9F6B43aC78BA3;

    /// @notice anvil's chain id: always a development chain.
    uint256 public constant ANVIL_CHAIN_ID = 31337;

    /// @notice What was deployed (or found already deployed).
    struct Deployed {
        address authCaptureEscrow;
        address tokenStoreImplementation;
        address erc3009PaymentCollector;
        address preApprovalPaymentCollector;
        address operatorRefundCollector;
        /// @dev Zero where the chain has no Permit2.
        address permit2PaymentCollector;
        address multicall3;
        address batchExecutor;
        address token;
    }

    function run() external returns (Deployed memory d) {
        bytes32 salt = vm.envOr("DEPLOY_SALT", DEFAULT_SALT);
        bool dev = block.chainid == ANVIL_CHAIN_ID || vm.envOr("DEPLOY_TEST_TOKEN", false);
        require(CREATE2_FACTORY.code.length != 0, "Deploy: no CREATE2 deployer (0x4e59...956c) on this chain");
        require(
            dev || MULTICALL3.code.length != 0,
            "Deploy: no Multicall3 at 0xcA11...CA11 on this chain (set DEPLOY_TEST_TOKEN=true to deploy a dev one)"
        );

        vm.startBroadcast();
        (, address deployer,) = vm.readCallers();
        console.log("deployer", deployer);
        console.log("salt");
        console.logBytes32(salt);

        d.multicall3 = MULTICALL3;
        if (MULTICALL3.code.length == 0) {
            d.multicall3 = _create2("Multicall3", type(Multicall3).creationCode, salt);
        }
        d.authCaptureEscrow = _create2("AuthCaptureEscrow", type(AuthCaptureEscrow).creationCode, salt);
        d.erc3009PaymentCollector = _create2(
            "ERC3009PaymentCollector",
            abi.encodePacked(
                type(ERC3009PaymentCollector).creationCode, abi.encode(d.authCaptureEscrow, d.multicall3)
            ),
            salt
        );
        d.preApprovalPaymentCollector = _create2(
            "PreApprovalPaymentCollector",
            abi.encodePacked(type(PreApprovalPaymentCollector).creationCode, abi.encode(d.authCaptureEscrow)),
            salt
        );
        d.operatorRefundCollector = _create2(
            "OperatorRefundCollector",
            abi.encodePacked(type(OperatorRefundCollector).creationCode, abi.encode(d.authCaptureEscrow)),
            salt
        );
        if (PERMIT2.code.length != 0) {
            d.permit2PaymentCollector = _create2(
                "Permit2PaymentCollector",
                abi.encodePacked(
                    type(Permit2PaymentCollector).creationCode, abi.encode(d.authCaptureEscrow, PERMIT2, d.multicall3)
                ),
                salt
            );
        } else {
            console.log("Permit2 has no code at", PERMIT2, "on this chain: Permit2PaymentCollector not deployed");
        }
        // Stateless and ownerless: operators' signers delegate to it (EIP-7702) to batch escrow calls.
        d.batchExecutor = _create2("OperatorBatchExecutor", type(OperatorBatchExecutor).creationCode, salt);
        if (dev) {
            d.token = _create2(
                "TestUSDC",
                abi.encodePacked(type(TestUSDC).creationCode, abi.encode("USD Coin", "USDC", "2", deployer)),
                salt
            );
        }
        vm.stopBroadcast();

        d.tokenStoreImplementation = AuthCaptureEscrow(d.authCaptureEscrow).tokenStoreImplementation();
        require(
            d.tokenStoreImplementation == vm.computeCreateAddress(d.authCaptureEscrow, 1),
            "Deploy: unexpected TokenStore implementation address"
        );

        if (vm.isContext(VmSafe.ForgeContext.ScriptBroadcast) || vm.isContext(VmSafe.ForgeContext.ScriptResume)) {
            _write(d);
        } else {
            console.log("dry run: deployment record not written (add --broadcast)");
        }
    }

    /// @dev Creates `initCode` through the CREATE2 deployer unless its address already has code.
    function _create2(string memory name, bytes memory initCode, bytes32 salt) internal returns (address predicted) {
        predicted = vm.computeCreate2Address(salt, keccak256(initCode), CREATE2_FACTORY);
        if (predicted.code.length != 0) {
            console.log(string.concat(name, " already deployed at"), predicted);
            return predicted;
        }
        (bool ok, bytes memory returned) = CREATE2_FACTORY.call(abi.encodePacked(salt, initCode));
        require(ok && returned.length == 20, string.concat("Deploy: CREATE2 of ", name, " failed"));
        require(address(bytes20(returned)) == predicted, string.concat("Deploy: ", name, " landed elsewhere"));
        require(predicted.code.length != 0, string.concat("Deploy: ", name, " has no code"));
        console.log(string.concat(name, " deployed at"), predicted);
    }

    /// @dev Writes the record in the shape of the Rust `deploy::Deployment` (camelCase JSON).
    function _write(Deployed memory d) internal {
        string memory path = vm.envOr(
            "DEPLOYMENT_FILE", string.concat(vm.projectRoot(), "/deployments/", vm.toString(block.chainid), ".json")
        );
        string memory obj = "deployment";
        if (vm.isFile(path)) {
            string memory existing = vm.readFile(path);
            address recorded = vm.keyExistsJson(existing, ".authCaptureEscrow")
                ? vm.parseJsonAddress(existing, ".authCaptureEscrow")
                : address(0);
            if (recorded == d.authCaptureEscrow) {
                vm.serializeJson(obj, existing); // keep keys we do not write (e.g. a token on a public chain)
            } else {
                require(
                    block.chainid == ANVIL_CHAIN_ID || vm.envOr("DEPLOY_OVERWRITE", false),
                    string.concat(
                        "Deploy: ", path, " records another escrow; set DEPLOYMENT_FILE or DEPLOY_OVERWRITE=true"
                    )
                );
            }
        }

        vm.serializeUint(obj, "chainId", block.chainid);
        vm.serializeString(obj, "version", "1.0"); // the escrow's interface: fee in basis points
        vm.serializeAddress(obj, "authCaptureEscrow", d.authCaptureEscrow);
        vm.serializeBool(obj, "batchCalls", true); // captureBatch / voidBatch
        vm.serializeAddress(obj, "tokenStoreImplementation", d.tokenStoreImplementation);
        vm.serializeAddress(obj, "erc3009PaymentCollector", d.erc3009PaymentCollector);
        vm.serializeAddress(obj, "preApprovalPaymentCollector", d.preApprovalPaymentCollector);
        vm.serializeAddress(obj, "operatorRefundCollector", d.operatorRefundCollector);
        if (d.permit2PaymentCollector != address(0)) {
            vm.serializeAddress(obj, "permit2PaymentCollector", d.permit2PaymentCollector);
        }
        vm.serializeAddress(obj, "multicall3", d.multicall3);
        string memory json = vm.serializeAddress(obj, "batchExecutor", d.batchExecutor);
        if (d.token != address(0)) {
            string memory t = "token";
            vm.serializeAddress(t, "address", d.token);
            vm.serializeString(t, "name", "USD Coin");
            vm.serializeString(t, "version", "2");
            vm.serializeString(t, "symbol", "USDC");
            string memory tokenJson = vm.serializeUint(t, "decimals", 6);
            json = vm.serializeString(obj, "token", tokenJson);
        }
        vm.writeJson(json, path);
        console.log("deployment record written to", path);
    }
}
