// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";

import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {ERC3009PaymentCollector} from "../../contracts/collectors/ERC3009PaymentCollector.sol";
import {OperatorRefundCollector} from "../../contracts/collectors/OperatorRefundCollector.sol";
import {PreApprovalPaymentCollector} from "../../contracts/collectors/PreApprovalPaymentCollector.sol";
import {TestUSDC} from "../../contracts/dev/TestUSDC.sol";
import {receiveAuthorizationDigest} from "../base/PaymentFixtures.sol";

/// @title EscrowHandler
/// @notice Drives the escrow for the invariant suite: random authorize (ERC-3009 or pre-approval),
///         charge, capture, captureBatch, void, voidBatch, reclaim, refund and warp across three
///         operators, three payers (with private keys, so it signs ERC-3009 itself), three
///         receivers and two fee receivers, and keeps a ghost copy of everything the escrow should
///         have done.
/// @dev Every entry point bounds its inputs and picks an existing payment for which the operation
///      is currently valid, or does nothing, so no call reverts (the suite runs fail_on_revert).
///      Each escrow call is made with log recording on; every Transfer out of a TokenStore is
///      checked against the parties entitled to it and against the amount the operation moves.
contract EscrowHandler is Test {
    /// @notice Ghost record of one payment. Amounts are packed two per slot (each is at most
    ///         maxAmount < 2**120) to keep the per-call audit cheap.
    struct Payment {
        AuthCaptureEscrow.PaymentInfo info;
        bytes32 paymentInfoHash;
        /// @dev Amount authorized or charged (what left the payer's wallet when collected).
        uint128 collected;
        /// @dev Total captured (the whole amount for a charge).
        uint128 captured;
        uint128 refunded;
        uint128 voided;
        uint128 reclaimed;
        /// @dev What the escrow should report as capturableAmount.
        uint128 capturable;
        /// @dev What the escrow should report as refundableAmount.
        uint128 refundable;
        uint8 operatorIndex;
        uint8 payerIndex;
    }

    /// @notice Per-payment checks and per-party sums over all payments, computed in one pass.
    struct Audit {
        /// @dev Payments whose escrow state differs from (true, ghost capturable, ghost refundable).
        uint256 stateMismatches;
        /// @dev Payments that collected more than maxAmount.
        uint256 collectedOverMax;
        /// @dev Payments that captured more than they collected.
        uint256 capturedOverCollected;
        /// @dev Payments where collected != capturable + captured + voided + reclaimed.
        uint256 collectedUnaccounted;
        /// @dev Payments that refunded more than they captured.
        uint256 refundedOverCaptured;
        /// @dev Payments where refundable != captured - refunded.
        uint256 refundableUnaccounted;
        /// @dev Sum of the escrow's capturableAmount per operator.
        uint256[3] heldByOperator;
        /// @dev Sum of collected - voided - reclaimed - refunded per payer.
        uint256[3] netCostByPayer;
        /// @dev Sum of collected per payer.
        uint256[3] collectedByPayer;
    }

    uint256 internal constant ACTORS = 3;
    bytes32 internal constant TRANSFER_TOPIC = keccak256("Transfer(address,address,uint256)");

    AuthCaptureEscrow public immutable escrow;
    TestUSDC public immutable usdc;
    ERC3009PaymentCollector public immutable erc3009Collector;
    PreApprovalPaymentCollector public immutable preApprovalCollector;
    OperatorRefundCollector public immutable refundCollector;

    address[ACTORS] public operators;
    address[ACTORS] public stores;
    address[ACTORS] public payers;
    uint256[ACTORS] internal payerKeys;
    address[ACTORS] public receivers;
    address[2] public feeReceivers;

    Payment[] internal _payments;
    uint256 internal _nextSalt;

    /// @notice Tokens minted to each address by the handler.
    mapping(address account => uint256 amount) public ghostMinted;
    /// @notice Exact balance each receiver / fee receiver should hold.
    mapping(address account => uint256 amount) public ghostEntitled;
    /// @notice Tokens each operator paid into refunds.
    mapping(address account => uint256 amount) public ghostRefundFunded;
    /// @notice Transfers out of a TokenStore to someone the operation does not entitle.
    uint256 public ghostIllegalStoreOutflows;
    /// @notice Operations whose TokenStore in- or outflow differed from the amount they move.
    uint256 public ghostStoreFlowMismatches;
    /// @notice Number of successful calls per operation, for the call summary.
    mapping(bytes32 operation => uint256 count) public calls;

    constructor(
        AuthCaptureEscrow escrow_,
        TestUSDC usdc_,
        ERC3009PaymentCollector erc3009Collector_,
        PreApprovalPaymentCollector preApprovalCollector_,
        OperatorRefundCollector refundCollector_
    ) {
        escrow = escrow_;
        usdc = usdc_;
        erc3009Collector = erc3009Collector_;
        preApprovalCollector = preApprovalCollector_;
        refundCollector = refundCollector_;
        for (uint256 i; i < ACTORS; ++i) {
            operators[i] = makeAddr(string.concat("operator", vm.toString(i)));
            stores[i] = escrow_.getTokenStore(operators[i]);
            payerKeys[i] = uint256(keccak256(abi.encode("invariant payer", i)));
            payers[i] = vm.addr(payerKeys[i]);
            receivers[i] = makeAddr(string.concat("receiver", vm.toString(i)));
        }
        feeReceivers[0] = makeAddr("feeReceiver0");
        feeReceivers[1] = makeAddr("feeReceiver1");
    }

    /*//////////////////////////////////////////////////////////////
                                OPERATIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Creates a new payment and authorizes part or all of it.
    function authorize(uint256 seed, uint256 amountSeed, bool viaPreApproval) external {
        (Payment memory p, uint256 amount) = _newPayment(seed, amountSeed);
        (address collector, bytes memory collectorData) = _prepareCollection(p, amount, viaPreApproval);

        vm.recordLogs();
        vm.prank(p.info.operator);
        escrow.authorize(p.info, amount, collector, collectorData);
        _checkStoreFlows(p.operatorIndex, amount, 0, p.info.payer, p.info.payer, p.info.payer);

        p.collected = uint128(amount);
        p.capturable = uint128(amount);
        _payments.push(p);
        ++calls["authorize"];
    }

    /// @notice Creates a new payment and charges it (collect and capture at once).
    function charge(uint256 seed, uint256 amountSeed, uint256 feeSeed, bool viaPreApproval) external {
        (Payment memory p, uint256 amount) = _newPayment(seed, amountSeed);
        (uint16 feeBps, address feeTo) = _pickFee(p.info, feeSeed);
        (address collector, bytes memory collectorData) = _prepareCollection(p, amount, viaPreApproval);

        vm.recordLogs();
        vm.prank(p.info.operator);
        escrow.charge(p.info, amount, collector, collectorData, feeBps, feeTo);
        _checkStoreFlows(p.operatorIndex, amount, amount, p.info.receiver, feeTo, p.info.receiver);

        _creditDistribution(p.info, amount, feeBps, feeTo);
        p.collected = uint128(amount);
        p.captured = uint128(amount);
        p.refundable = uint128(amount);
        _payments.push(p);
        ++calls["charge"];
    }

    /// @notice Captures part of a payment that still has a hold and whose authorization is live.
    function capture(uint256 indexSeed, uint256 amountSeed, uint256 feeSeed) external {
        (bool found, uint256 i) = _find(indexSeed, _CAPTURABLE);
        if (!found) return;
        Payment storage p = _payments[i];
        uint256 amount = bound(amountSeed, 1, p.capturable);
        (uint16 feeBps, address feeTo) = _pickFee(p.info, feeSeed);

        vm.recordLogs();
        vm.prank(p.info.operator);
        escrow.capture(p.info, amount, feeBps, feeTo);
        _checkStoreFlows(p.operatorIndex, 0, amount, p.info.receiver, feeTo, p.info.receiver);

        _creditDistribution(p.info, amount, feeBps, feeTo);
        p.capturable -= uint128(amount);
        p.captured += uint128(amount);
        p.refundable += uint128(amount);
        ++calls["capture"];
    }

    /// @notice Captures from up to three payments of one operator in a single captureBatch.
    function captureBatch(uint256 operatorSeed, uint256 indexSeed, uint256 amountSeed, uint256 feeSeed) external {
        uint256 o = operatorSeed % ACTORS;
        uint256[] memory picked = _pickForOperator(o, indexSeed, _CAPTURABLE, 3);
        if (picked.length == 0) return;

        AuthCaptureEscrow.CaptureRequest[] memory requests = new AuthCaptureEscrow.CaptureRequest[](picked.length);
        uint256 total;
        for (uint256 k; k < picked.length; ++k) {
            Payment storage p = _payments[picked[k]];
            uint256 amount = bound(uint256(keccak256(abi.encode(amountSeed, k))), 1, p.capturable);
            (uint16 feeBps, address feeTo) = _pickFee(p.info, uint256(keccak256(abi.encode(feeSeed, k))));
            requests[k] = AuthCaptureEscrow.CaptureRequest(p.info, amount, feeBps, feeTo);
            total += amount;
        }

        vm.recordLogs();
        vm.prank(operators[o]);
        escrow.captureBatch(requests);
        // Each request may name its own receiver and fee receiver: check against the union.
        address[] memory allowed = new address[](2 * picked.length);
        for (uint256 k; k < picked.length; ++k) {
            allowed[2 * k] = requests[k].paymentInfo.receiver;
            allowed[2 * k + 1] = requests[k].feeReceiver;
        }
        _checkLogs(o, 0, total, allowed);

        for (uint256 k; k < picked.length; ++k) {
            Payment storage p = _payments[picked[k]];
            AuthCaptureEscrow.CaptureRequest memory r = requests[k];
            _creditDistribution(p.info, r.amount, r.feeBps, r.feeReceiver);
            p.capturable -= uint128(r.amount);
            p.captured += uint128(r.amount);
            p.refundable += uint128(r.amount);
        }
        ++calls["captureBatch"];
    }

    /// @notice The operator voids a payment's remaining hold.
    function void(uint256 indexSeed) external {
        (bool found, uint256 i) = _find(indexSeed, _HELD);
        if (!found) return;
        Payment storage p = _payments[i];
        p.voided += _releaseHold(p, false);
        ++calls["void"];
    }

    /// @notice The operator voids up to three holds at once.
    function voidBatch(uint256 operatorSeed, uint256 indexSeed) external {
        uint256 o = operatorSeed % ACTORS;
        uint256[] memory picked = _pickForOperator(o, indexSeed, _HELD, 3);
        if (picked.length == 0) return;

        AuthCaptureEscrow.PaymentInfo[] memory infos = new AuthCaptureEscrow.PaymentInfo[](picked.length);
        address[] memory allowed = new address[](picked.length);
        uint256 total;
        for (uint256 k; k < picked.length; ++k) {
            Payment storage p = _payments[picked[k]];
            infos[k] = p.info;
            allowed[k] = p.info.payer;
            total += p.capturable;
        }

        vm.recordLogs();
        vm.prank(operators[o]);
        escrow.voidBatch(infos);
        _checkLogs(o, 0, total, allowed);

        for (uint256 k; k < picked.length; ++k) {
            Payment storage p = _payments[picked[k]];
            p.voided += p.capturable;
            p.capturable = 0;
        }
        ++calls["voidBatch"];
    }

    /// @notice The payer reclaims a hold whose authorization has expired. If the chosen hold has
    ///         not expired yet, the payer waits for it: time jumps exactly to `authorizationExpiry`
    ///         (the first second a reclaim is allowed).
    function reclaim(uint256 indexSeed) external {
        (bool found, uint256 i) = _find(indexSeed, _HELD);
        if (!found) return;
        Payment storage p = _payments[i];
        if (block.timestamp < p.info.authorizationExpiry) vm.warp(p.info.authorizationExpiry);
        p.reclaimed += _releaseHold(p, true);
        ++calls["reclaim"];
    }

    /// @notice The operator refunds part of what was captured, funding it from its own balance.
    function refund(uint256 indexSeed, uint256 amountSeed) external {
        (bool found, uint256 i) = _find(indexSeed, _REFUNDABLE);
        if (!found) return;
        Payment storage p = _payments[i];
        uint256 amount = bound(amountSeed, 1, p.refundable);
        address op = p.info.operator;
        _mint(op, amount);
        vm.prank(op);
        usdc.approve(address(refundCollector), amount);

        vm.recordLogs();
        vm.prank(op);
        escrow.refund(p.info, amount, address(refundCollector), "");
        _checkStoreFlows(p.operatorIndex, amount, amount, p.info.payer, p.info.payer, p.info.payer);

        ghostRefundFunded[op] += amount;
        p.refunded += uint128(amount);
        p.refundable -= uint128(amount);
        ++calls["refund"];
    }

    /// @notice Lets time pass, so expiries come and go.
    function warp(uint256 secondsSeed) external {
        vm.warp(block.timestamp + bound(secondsSeed, 1, 2 days));
        ++calls["warp"];
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice Number of payments created.
    function paymentCount() external view returns (uint256) {
        return _payments.length;
    }

    /// @notice The ghost record of payment `i`.
    function payment(uint256 i) external view returns (Payment memory) {
        return _payments[i];
    }

    /// @notice One pass over all payments: the per-payment properties as violation counts, and
    ///         the per-operator / per-payer sums the invariants compare with token balances.
    /// @dev Done here, reading storage directly, because forge re-checks the invariant after every
    ///      call and one external call per payment made the suite several times slower.
    function audit() external view returns (Audit memory a) {
        uint256 n = _payments.length;
        for (uint256 i; i < n; ++i) {
            Payment storage p = _payments[i];
            (bool collected, uint120 capturable, uint120 refundable) = escrow.paymentState(p.paymentInfoHash);
            if (!collected || capturable != p.capturable || refundable != p.refundable) ++a.stateMismatches;
            if (p.collected > p.info.maxAmount) ++a.collectedOverMax;
            if (p.captured > p.collected) ++a.capturedOverCollected;
            if (uint256(p.collected) != uint256(p.capturable) + p.captured + p.voided + p.reclaimed) {
                ++a.collectedUnaccounted;
            }
            if (p.refunded > p.captured) ++a.refundedOverCaptured;
            else if (p.refundable != p.captured - p.refunded) ++a.refundableUnaccounted;
            a.heldByOperator[p.operatorIndex] += capturable;
            a.collectedByPayer[p.payerIndex] += p.collected;
            // Cannot underflow unless collectedUnaccounted / refundedOverCaptured already fired.
            uint256 returned = uint256(p.voided) + p.reclaimed + p.refunded;
            if (returned <= p.collected) a.netCostByPayer[p.payerIndex] += p.collected - returned;
        }
    }

    /// @notice Every address that may hold tokens in this suite.
    function knownHolders() external view returns (address[] memory holders) {
        holders = new address[](4 * ACTORS + 2 + 3);
        uint256 n;
        for (uint256 i; i < ACTORS; ++i) {
            holders[n++] = operators[i];
            holders[n++] = stores[i];
            holders[n++] = payers[i];
            holders[n++] = receivers[i];
        }
        holders[n++] = feeReceivers[0];
        holders[n++] = feeReceivers[1];
        holders[n++] = address(erc3009Collector);
        holders[n++] = address(preApprovalCollector);
        holders[n++] = address(refundCollector);
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    uint8 internal constant _CAPTURABLE = 0; // hold > 0 and before authorizationExpiry
    uint8 internal constant _HELD = 1; // hold > 0
    uint8 internal constant _REFUNDABLE = 2; // refundable > 0 and before refundExpiry

    function _eligible(Payment storage p, uint8 kind) internal view returns (bool) {
        if (kind == _CAPTURABLE) return p.capturable != 0 && block.timestamp < p.info.authorizationExpiry;
        if (kind == _HELD) return p.capturable != 0;
        return p.refundable != 0 && block.timestamp < p.info.refundExpiry;
    }

    /// @dev The first eligible payment at or after `seed % n`, wrapping around.
    function _find(uint256 seed, uint8 kind) internal view returns (bool, uint256) {
        uint256 n = _payments.length;
        if (n == 0) return (false, 0);
        uint256 start = seed % n;
        for (uint256 k; k < n; ++k) {
            uint256 i = (start + k) % n;
            if (_eligible(_payments[i], kind)) return (true, i);
        }
        return (false, 0);
    }

    /// @dev Up to `max` distinct eligible payments of operator `o`, starting at `seed % n`.
    function _pickForOperator(uint256 o, uint256 seed, uint8 kind, uint256 max)
        internal
        view
        returns (uint256[] memory picked)
    {
        uint256 n = _payments.length;
        picked = new uint256[](max);
        uint256 count;
        if (n != 0) {
            uint256 start = seed % n;
            for (uint256 k; k < n && count < max; ++k) {
                uint256 i = (start + k) % n;
                Payment storage p = _payments[i];
                if (p.operatorIndex == o && _eligible(p, kind)) picked[count++] = i;
            }
        }
        assembly {
            mstore(picked, count)
        }
    }

    /// @dev A fresh, valid payment (unique salt) with everything derived from `seed`.
    function _newPayment(uint256 seed, uint256 amountSeed) internal returns (Payment memory p, uint256 amount) {
        uint256 r = uint256(keccak256(abi.encode(seed)));
        // Independent words for the discrete choices, the amounts and the times.
        uint256 pick = uint256(keccak256(abi.encode(r, "pick")));
        uint256 fees = uint256(keccak256(abi.encode(r, "fees")));
        uint256 times = uint256(keccak256(abi.encode(r, "times")));
        p.operatorIndex = uint8(pick % ACTORS);
        p.payerIndex = uint8((pick >> 8) % ACTORS);
        uint120 maxAmount = (pick >> 16) % 4 == 0
            ? uint120(bound(r, 1, type(uint120).max))  // sometimes enormous
            : uint120(bound(r, 1, 1e12));
        uint16 maxFeeBps = (pick >> 24) % 4 == 0 ? 0 : uint16(bound(fees, 0, 10_000));
        uint16 minFeeBps = uint16(bound(fees >> 128, 0, maxFeeBps));
        uint48 pre = uint48(block.timestamp + bound(times, 1, 1 days));
        uint48 auth = pre + uint48(bound(times >> 64, 0, 2 days));
        uint48 ref = auth + uint48(bound(times >> 128, 0, 5 days));
        p.info = AuthCaptureEscrow.PaymentInfo({
            operator: operators[p.operatorIndex],
            payer: payers[p.payerIndex],
            receiver: receivers[(pick >> 32) % ACTORS],
            token: address(usdc),
            maxAmount: maxAmount,
            preApprovalExpiry: pre,
            authorizationExpiry: auth,
            refundExpiry: ref,
            minFeeBps: minFeeBps,
            maxFeeBps: maxFeeBps,
            // A third of payments leave the fee receiver to the operator.
            feeReceiver: (pick >> 40) % 3 == 0 ? address(0) : feeReceivers[(pick >> 48) % 2],
            salt: ++_nextSalt
        });
        p.paymentInfoHash = escrow.getHash(p.info);
        amount = bound(amountSeed, 1, maxAmount);
    }

    /// @dev Funds the payer and prepares the chosen collector; returns it and its data.
    function _prepareCollection(Payment memory p, uint256 amount, bool viaPreApproval)
        internal
        returns (address collector, bytes memory collectorData)
    {
        address payer_ = p.info.payer;
        if (viaPreApproval) {
            _mint(payer_, amount);
            vm.startPrank(payer_);
            usdc.approve(address(preApprovalCollector), amount);
            preApprovalCollector.preApprove(p.info);
            vm.stopPrank();
            return (address(preApprovalCollector), "");
        }
        // ERC-3009 pulls maxAmount and hands back the rest, so the payer must hold maxAmount.
        _mint(payer_, p.info.maxAmount);
        return (address(erc3009Collector), _signReceiveAuthorization(p.info, payerKeys[p.payerIndex]));
    }

    /// @dev Returns `p`'s whole hold to its payer, checking that exactly the hold leaves the store
    ///      and only towards the payer: the payer reclaims it when `byPayer`, else the operator
    ///      voids it. Returns the amount released; the caller books it as voided or reclaimed.
    function _releaseHold(Payment storage p, bool byPayer) internal returns (uint128 held) {
        held = p.capturable;

        vm.recordLogs();
        if (byPayer) {
            vm.prank(p.info.payer);
            escrow.reclaim(p.info);
        } else {
            vm.prank(p.info.operator);
            escrow.void(p.info);
        }
        _checkStoreFlows(p.operatorIndex, 0, held, p.info.payer, p.info.payer, p.info.payer);
        p.capturable = 0;
    }

    /// @dev The payer's ERC-3009 ReceiveWithAuthorization signature for the collector.
    function _signReceiveAuthorization(AuthCaptureEscrow.PaymentInfo memory info, uint256 key)
        internal
        view
        returns (bytes memory)
    {
        bytes32 digest = receiveAuthorizationDigest(usdc, address(escrow), address(erc3009Collector), info);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev A fee inside the payment's range and a fee receiver the payment accepts.
    function _pickFee(AuthCaptureEscrow.PaymentInfo memory info, uint256 seed)
        internal
        view
        returns (uint16 feeBps, address feeTo)
    {
        feeBps = uint16(bound(seed, info.minFeeBps, info.maxFeeBps));
        if (info.feeReceiver != address(0)) return (feeBps, info.feeReceiver);
        // Operator's choice; with a zero fee it may even name no one.
        if (feeBps == 0 && (seed >> 128) % 2 == 0) return (0, address(0));
        return (feeBps, feeReceivers[(seed >> 129) % 2]);
    }

    /// @dev Credits the receiver and fee receiver with what a capture of `amount` pays them.
    function _creditDistribution(
        AuthCaptureEscrow.PaymentInfo memory info,
        uint256 amount,
        uint16 feeBps,
        address feeTo
    ) internal {
        uint256 fee = amount * feeBps / 10_000;
        ghostEntitled[feeTo] += fee;
        ghostEntitled[info.receiver] += amount - fee;
    }

    function _mint(address to, uint256 amount) internal {
        usdc.mint(to, amount);
        ghostMinted[to] += amount;
    }

    /// @dev Checks the recorded Transfers touching operator `o`'s store: inflow must equal
    ///      `expectedIn`, outflow `expectedOut`, and every outflow must go to one of `a`, `b`, `c`.
    function _checkStoreFlows(uint256 o, uint256 expectedIn, uint256 expectedOut, address a, address b, address c)
        internal
    {
        address[] memory allowed = new address[](3);
        allowed[0] = a;
        allowed[1] = b;
        allowed[2] = c;
        _checkLogs(o, expectedIn, expectedOut, allowed);
    }

    /// @dev The log check behind `_checkStoreFlows`, for any list of permitted recipients. Any
    ///      Transfer into or out of another operator's store is counted as illegal too.
    function _checkLogs(uint256 o, uint256 expectedIn, uint256 expectedOut, address[] memory allowed) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 inflow;
        uint256 outflow;
        for (uint256 k; k < logs.length; ++k) {
            Vm.Log memory log = logs[k];
            if (log.emitter != address(usdc) || log.topics.length != 3 || log.topics[0] != TRANSFER_TOPIC) continue;
            address from = address(uint160(uint256(log.topics[1])));
            address to = address(uint160(uint256(log.topics[2])));
            uint256 amount = abi.decode(log.data, (uint256));
            for (uint256 s; s < ACTORS; ++s) {
                if (from == stores[s]) {
                    if (s != o || !_contains(allowed, to)) ++ghostIllegalStoreOutflows;
                    outflow += amount;
                }
                if (to == stores[s]) {
                    if (s != o) ++ghostIllegalStoreOutflows;
                    inflow += amount;
                }
            }
        }
        if (inflow != expectedIn || outflow != expectedOut) ++ghostStoreFlowMismatches;
    }

    function _contains(address[] memory list, address x) internal pure returns (bool) {
        for (uint256 k; k < list.length; ++k) {
            if (list[k] == x) return true;
        }
        return false;
    }
}
