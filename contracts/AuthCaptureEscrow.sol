// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibClone} from "solady/utils/LibClone.sol";
import {SafeTransferLib} from "solady/utils/SafeTransferLib.sol";

import {TokenStore} from "./TokenStore.sol";
import {TokenCollector} from "./collectors/TokenCollector.sol";
import {PaymentInfoHash} from "./libraries/PaymentInfoHash.sol";

/// @title AuthCaptureEscrow
/// @notice Card-style authorize / capture / void / refund for ERC-20 payments.
///
///         A payer signs once for a `PaymentInfo`. The operator named in it can then
///         - `authorize` a hold: tokens move from the payer into the operator's TokenStore;
///         - `capture` all or part of the hold to the receiver (minus a fee), possibly several times;
///         - `void` what is left of the hold back to the payer at any time;
///         - `refund` captured tokens to the payer until `refundExpiry`;
///         - or `charge`: authorize and capture in one step.
///         Once `authorizationExpiry` passes, the payer can `reclaim` any hold the operator left.
///
///         Interface-compatible with the Commerce Payments Protocol `AuthCaptureEscrow`; the
///         implementation is independent and tuned for gas (see `.gas-snapshot`).
///
/// @dev Lifecycle of one payment, keyed by `getHash(paymentInfo)`:
///
///          (none) --authorize--> {collected, capturable = a, refundable = 0}
///          (none) --charge-----> {collected, capturable = 0, refundable = a}
///          capture(x):  capturable -= x, refundable += x   (before authorizationExpiry)
///          void:        capturable -> 0, returned to payer (operator, any time)
///          reclaim:     capturable -> 0, returned to payer (payer, at/after authorizationExpiry)
///          refund(x):   refundable -= x, returned to payer (before refundExpiry)
///
///      `hasCollectedPayment` never goes back to false, so a PaymentInfo is usable exactly once.
///      Every state-changing entry point is non-reentrant (transient storage) and follows
///      checks -> effects -> interactions.
contract AuthCaptureEscrow {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice Everything that defines one payment. Field order is part of its hash.
    struct PaymentInfo {
        /// @dev The only address allowed to authorize, capture, void, refund or charge.
        address operator;
        /// @dev The address paying, and the one refunds and voids return tokens to.
        address payer;
        /// @dev The merchant: receives captured tokens minus the fee.
        address receiver;
        /// @dev The ERC-20 token paid in.
        address token;
        /// @dev The most that may be authorized or charged.
        uint120 maxAmount;
        /// @dev Authorize and charge are refused at or after this time.
        uint48 preApprovalExpiry;
        /// @dev Captures are refused at or after this time; from then on the payer may reclaim.
        uint48 authorizationExpiry;
        /// @dev Refunds are refused at or after this time.
        uint48 refundExpiry;
        /// @dev The lowest fee, in basis points, a capture or charge may take.
        uint16 minFeeBps;
        /// @dev The highest fee, in basis points, a capture or charge may take.
        uint16 maxFeeBps;
        /// @dev Where fees go; zero lets the operator choose at capture time.
        address feeReceiver;
        /// @dev Entropy that makes otherwise identical payments distinct.
        uint256 salt;
    }

    /// @notice What the escrow remembers of a payment (one storage slot).
    struct PaymentState {
        /// @dev True once the payment has been authorized or charged; never reset.
        bool hasCollectedPayment;
        /// @dev Tokens held in the TokenStore that may still be captured.
        uint120 capturableAmount;
        /// @dev Tokens captured and not yet refunded.
        uint120 refundableAmount;
    }

    /// @notice One capture in a `captureBatch`.
    struct CaptureRequest {
        /// @dev The payment to capture from.
        PaymentInfo paymentInfo;
        /// @dev How much to capture.
        uint256 amount;
        /// @dev The fee, in basis points, within the payment's range.
        uint16 feeBps;
        /// @dev Where the fee goes.
        address feeReceiver;
    }

    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice EIP-712-style typehash of PaymentInfo, the first word of its hash preimage.
    bytes32 public constant PAYMENT_INFO_TYPEHASH = keccak256(
        "PaymentInfo(address operator,address payer,address receiver,address token,uint120 maxAmount,uint48 preApprovalExpiry,uint48 authorizationExpiry,uint48 refundExpiry,uint16 minFeeBps,uint16 maxFeeBps,address feeReceiver,uint256 salt)"
    );

    /// @dev 100% in basis points.
    uint16 internal constant _MAX_FEE_BPS = 10_000;

    /// @dev Transient slot of the reentrancy lock: uint32(bytes4(keccak256("x402-escrow.reentrancy"))).
    uint256 private constant _REENTRANCY_SLOT = 0x1e6a5c31;

    /// @notice The TokenStore every operator's store is a minimal-proxy clone of.
    address public immutable tokenStoreImplementation;

    /// @dev keccak256 of the clone's creation code, fixed by the implementation address.
    bytes32 private immutable _tokenStoreInitCodeHash;

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    /// @notice The state of each payment, by `getHash(paymentInfo)`.
    mapping(bytes32 paymentInfoHash => PaymentState state) public paymentState;

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A payment was charged: collected and captured in one step.
    /// @param paymentInfoHash The payment's hash.
    /// @param paymentInfo The payment.
    /// @param amount The amount charged.
    /// @param tokenCollector The collector that pulled the tokens.
    /// @param feeBps The fee taken, in basis points.
    /// @param feeReceiver Where the fee went.
    event PaymentCharged(
        bytes32 indexed paymentInfoHash,
        PaymentInfo paymentInfo,
        uint256 amount,
        address tokenCollector,
        uint16 feeBps,
        address feeReceiver
    );

    /// @notice A payment was authorized: its tokens are held in the operator's TokenStore.
    /// @param paymentInfoHash The payment's hash.
    /// @param paymentInfo The payment.
    /// @param amount The amount held.
    /// @param tokenCollector The collector that pulled the tokens.
    event PaymentAuthorized(
        bytes32 indexed paymentInfoHash, PaymentInfo paymentInfo, uint256 amount, address tokenCollector
    );

    /// @notice Part or all of a held payment went to the receiver and fee receiver.
    /// @param paymentInfoHash The payment's hash.
    /// @param amount The amount captured (fee included).
    /// @param feeBps The fee taken, in basis points.
    /// @param feeReceiver Where the fee went.
    event PaymentCaptured(bytes32 indexed paymentInfoHash, uint256 amount, uint16 feeBps, address feeReceiver);

    /// @notice The operator released a hold back to the payer.
    /// @param paymentInfoHash The payment's hash.
    /// @param amount The amount returned.
    event PaymentVoided(bytes32 indexed paymentInfoHash, uint256 amount);

    /// @notice The payer took back a hold after the authorization expired.
    /// @param paymentInfoHash The payment's hash.
    /// @param amount The amount returned.
    event PaymentReclaimed(bytes32 indexed paymentInfoHash, uint256 amount);

    /// @notice Captured tokens were returned to the payer.
    /// @param paymentInfoHash The payment's hash.
    /// @param amount The amount refunded.
    /// @param tokenCollector The refund collector that supplied the tokens.
    event PaymentRefunded(bytes32 indexed paymentInfoHash, uint256 amount, address tokenCollector);

    /// @notice An operator's TokenStore clone was deployed.
    /// @param operator The operator.
    /// @param tokenStore The store's address.
    event TokenStoreCreated(address indexed operator, address tokenStore);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice The caller is not the party this operation belongs to.
    error InvalidSender(address sender, address expected);

    /// @notice The amount is zero.
    error ZeroAmount();

    /// @notice The amount does not fit in uint120.
    error AmountOverflow(uint256 amount, uint256 limit);

    /// @notice The amount is above `PaymentInfo.maxAmount`.
    error ExceedsMaxAmount(uint256 amount, uint256 maxAmount);

    /// @notice Authorize or charge at or after `preApprovalExpiry`.
    error AfterPreApprovalExpiry(uint48 timestamp, uint48 expiry);

    /// @notice The expiries are not ordered preApproval <= authorization <= refund.
    error InvalidExpiries(uint48 preApproval, uint48 authorization, uint48 refund);

    /// @notice `maxFeeBps` is above 10,000.
    error FeeBpsOverflow(uint16 feeBps);

    /// @notice `minFeeBps` is above `maxFeeBps`.
    error InvalidFeeBpsRange(uint16 minFeeBps, uint16 maxFeeBps);

    /// @notice The fee is outside the payment's [minFeeBps, maxFeeBps].
    error FeeBpsOutOfRange(uint16 feeBps, uint16 minFeeBps, uint16 maxFeeBps);

    /// @notice A non-zero fee with no one to receive it.
    error ZeroFeeReceiver();

    /// @notice The fee receiver differs from the one the payment fixed.
    error InvalidFeeReceiver(address attempted, address expected);

    /// @notice The collector's type does not fit the operation (payment vs refund).
    error InvalidCollectorForOperation();

    /// @notice The TokenStore did not grow by exactly the amount collected.
    error TokenCollectionFailed();

    /// @notice The payment was already authorized or charged.
    error PaymentAlreadyCollected(bytes32 paymentInfoHash);

    /// @notice Capture at or after `authorizationExpiry`.
    error AfterAuthorizationExpiry(uint48 timestamp, uint48 expiry);

    /// @notice Capture of more than is held.
    error InsufficientAuthorization(bytes32 paymentInfoHash, uint256 authorizedAmount, uint256 requestedAmount);

    /// @notice Void or reclaim with nothing held.
    error ZeroAuthorization(bytes32 paymentInfoHash);

    /// @notice Reclaim before `authorizationExpiry`.
    error BeforeAuthorizationExpiry(uint48 timestamp, uint48 expiry);

    /// @notice Refund at or after `refundExpiry`.
    error AfterRefundExpiry(uint48 timestamp, uint48 expiry);

    /// @notice Refund of more than was captured and not yet refunded.
    error RefundExceedsCapture(uint256 refund, uint256 captured);

    /// @notice A state-changing function was re-entered.
    error Reentrancy();

    /*//////////////////////////////////////////////////////////////
                                MODIFIERS
    //////////////////////////////////////////////////////////////*/

    /// @dev Transient-storage lock (EIP-1153): 100 gas to read, 100 to set, nothing left behind.
    modifier nonReentrant() {
        /// @solidity memory-safe-assembly
        assembly {
            if tload(_REENTRANCY_SLOT) {
                mstore(0x00, 0xab143c06) // Reentrancy()
                revert(0x1c, 0x04)
            }
            tstore(_REENTRANCY_SLOT, 1)
        }
        _;
        /// @solidity memory-safe-assembly
        assembly {
            tstore(_REENTRANCY_SLOT, 0)
        }
    }

    /// @dev Reverts with `InvalidSender` unless the caller is `expected`.
    modifier onlySender(address expected) {
        if (msg.sender != expected) revert InvalidSender(msg.sender, expected);
        _;
    }

    /// @dev Reverts unless 0 < amount <= type(uint120).max.
    modifier validAmount(uint256 amount) {
        _checkAmount(amount);
        _;
    }

    /// @notice Deploys the TokenStore implementation that operator stores are cloned from.
    constructor() {
        address implementation = address(new TokenStore(address(this)));
        tokenStoreImplementation = implementation;
        _tokenStoreInitCodeHash = LibClone.initCodeHash(implementation);
    }

    /*//////////////////////////////////////////////////////////////
                              OPERATIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Collects `amount` from the payer and captures it at once (no hold).
    /// @param paymentInfo The payment.
    /// @param amount The amount to charge, at most `maxAmount`.
    /// @param tokenCollector A Payment-type collector that pulls the tokens.
    /// @param collectorData Data for the collector (e.g. the payer's signature).
    /// @param feeBps The fee in basis points, within the payment's range.
    /// @param feeReceiver Where the fee goes; must equal `paymentInfo.feeReceiver` when that is set.
    function charge(
        PaymentInfo calldata paymentInfo,
        uint256 amount,
        address tokenCollector,
        bytes calldata collectorData,
        uint16 feeBps,
        address feeReceiver
    ) external nonReentrant onlySender(paymentInfo.operator) validAmount(amount) {
        _validatePayment(paymentInfo, amount);
        _validateFee(paymentInfo, feeBps, feeReceiver);
        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(this));
        if (paymentState[paymentInfoHash].hasCollectedPayment) revert PaymentAlreadyCollected(paymentInfoHash);

        paymentState[paymentInfoHash] =
            PaymentState({hasCollectedPayment: true, capturableAmount: 0, refundableAmount: uint120(amount)});
        emit PaymentCharged(paymentInfoHash, paymentInfo, amount, tokenCollector, feeBps, feeReceiver);

        _collectTokens(paymentInfo, amount, tokenCollector, collectorData, TokenCollector.CollectorType.Payment);
        _distributeTokens(paymentInfo, amount, feeBps, feeReceiver);
    }

    /// @notice Places a hold: collects `amount` from the payer into the operator's TokenStore.
    /// @param paymentInfo The payment.
    /// @param amount The amount to hold, at most `maxAmount`.
    /// @param tokenCollector A Payment-type collector that pulls the tokens.
    /// @param collectorData Data for the collector (e.g. the payer's signature).
    function authorize(
        PaymentInfo calldata paymentInfo,
        uint256 amount,
        address tokenCollector,
        bytes calldata collectorData
    ) external nonReentrant onlySender(paymentInfo.operator) validAmount(amount) {
        _validatePayment(paymentInfo, amount);
        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(this));
        if (paymentState[paymentInfoHash].hasCollectedPayment) revert PaymentAlreadyCollected(paymentInfoHash);

        paymentState[paymentInfoHash] =
            PaymentState({hasCollectedPayment: true, capturableAmount: uint120(amount), refundableAmount: 0});
        emit PaymentAuthorized(paymentInfoHash, paymentInfo, amount, tokenCollector);

        _collectTokens(paymentInfo, amount, tokenCollector, collectorData, TokenCollector.CollectorType.Payment);
    }

    /// @notice Sends `amount` of the hold to the receiver, minus a fee to the fee receiver.
    ///         May be called repeatedly until the hold is used up (partial captures).
    /// @param paymentInfo The payment.
    /// @param amount The amount to capture, fee included.
    /// @param feeBps The fee in basis points, within the payment's range.
    /// @param feeReceiver Where the fee goes; must equal `paymentInfo.feeReceiver` when that is set.
    function capture(PaymentInfo calldata paymentInfo, uint256 amount, uint16 feeBps, address feeReceiver)
        external
        nonReentrant
        onlySender(paymentInfo.operator)
        validAmount(amount)
    {
        _capture(paymentInfo, amount, feeBps, feeReceiver);
    }

    /// @notice Releases the whole remaining hold back to the payer. The operator may void at any time.
    /// @param paymentInfo The payment.
    function void(PaymentInfo calldata paymentInfo) external nonReentrant onlySender(paymentInfo.operator) {
        _void(paymentInfo);
    }

    /// @notice Lets the payer take back the remaining hold once the authorization has expired.
    /// @param paymentInfo The payment.
    function reclaim(PaymentInfo calldata paymentInfo) external nonReentrant onlySender(paymentInfo.payer) {
        uint48 expiry = paymentInfo.authorizationExpiry;
        if (block.timestamp < expiry) revert BeforeAuthorizationExpiry(uint48(block.timestamp), expiry);

        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(this));
        uint256 held = paymentState[paymentInfoHash].capturableAmount;
        if (held == 0) revert ZeroAuthorization(paymentInfoHash);

        paymentState[paymentInfoHash].capturableAmount = 0;
        emit PaymentReclaimed(paymentInfoHash, held);

        _sendTokens(paymentInfo.operator, paymentInfo.token, paymentInfo.payer, held);
    }

    /// @notice Returns `amount` of captured tokens to the payer. A Refund-type collector supplies the
    ///         tokens (e.g. `OperatorRefundCollector` pulls them from the operator).
    /// @param paymentInfo The payment.
    /// @param amount The amount to refund, at most what was captured and not yet refunded.
    /// @param tokenCollector A Refund-type collector that brings the tokens into the TokenStore.
    /// @param collectorData Data for the collector.
    function refund(
        PaymentInfo calldata paymentInfo,
        uint256 amount,
        address tokenCollector,
        bytes calldata collectorData
    ) external nonReentrant onlySender(paymentInfo.operator) validAmount(amount) {
        uint48 expiry = paymentInfo.refundExpiry;
        if (block.timestamp >= expiry) revert AfterRefundExpiry(uint48(block.timestamp), expiry);

        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(this));
        uint120 captured = paymentState[paymentInfoHash].refundableAmount;
        if (captured < amount) revert RefundExceedsCapture(amount, captured);

        paymentState[paymentInfoHash].refundableAmount = captured - uint120(amount);
        emit PaymentRefunded(paymentInfoHash, amount, tokenCollector);

        _collectTokens(paymentInfo, amount, tokenCollector, collectorData, TokenCollector.CollectorType.Refund);
        _sendTokens(paymentInfo.operator, paymentInfo.token, paymentInfo.payer, amount);
    }

    /*//////////////////////////////////////////////////////////////
                         BATCH OPERATIONS (additions)
    //////////////////////////////////////////////////////////////*/

    /// @notice Captures several payments in one transaction, each exactly as `capture` would.
    ///         All or nothing: the first failing capture reverts the batch with its own error.
    /// @dev The caller must be the operator of every payment in the batch.
    /// @param requests The captures to perform, in order.
    function captureBatch(CaptureRequest[] calldata requests) external nonReentrant {
        for (uint256 i; i < requests.length; ++i) {
            CaptureRequest calldata request = requests[i];
            address operator = request.paymentInfo.operator;
            if (msg.sender != operator) revert InvalidSender(msg.sender, operator);
            _checkAmount(request.amount);
            _capture(request.paymentInfo, request.amount, request.feeBps, request.feeReceiver);
        }
    }

    /// @notice Voids several payments in one transaction, each exactly as `void` would.
    ///         All or nothing: the first failing void reverts the batch with its own error.
    /// @dev The caller must be the operator of every payment in the batch.
    /// @param paymentInfos The payments to void, in order.
    function voidBatch(PaymentInfo[] calldata paymentInfos) external nonReentrant {
        for (uint256 i; i < paymentInfos.length; ++i) {
            PaymentInfo calldata paymentInfo = paymentInfos[i];
            address operator = paymentInfo.operator;
            if (msg.sender != operator) revert InvalidSender(msg.sender, operator);
            _void(paymentInfo);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The key of a payment in `paymentState`, unique per chain and escrow:
    ///         keccak256(abi.encode(chainid, this, keccak256(abi.encode(PAYMENT_INFO_TYPEHASH, paymentInfo)))).
    /// @param paymentInfo The payment.
    /// @return The payment's hash.
    function getHash(PaymentInfo calldata paymentInfo) external view returns (bytes32) {
        return PaymentInfoHash.hash(paymentInfo, address(this));
    }

    /// @notice The address of `operator`'s TokenStore, whether or not it is deployed yet.
    /// @param operator The operator.
    /// @return The CREATE2 address of the operator's clone (salt = the operator's address).
    function getTokenStore(address operator) public view returns (address) {
        return LibClone.predictDeterministicAddress(_tokenStoreInitCodeHash, bytes32(bytes20(operator)), address(this));
    }

    /// @notice The states of several payments at once (an addition for operators reconciling).
    /// @param paymentInfoHashes The payments' hashes.
    /// @return states Their states, in the same order.
    function getPaymentStates(bytes32[] calldata paymentInfoHashes)
        external
        view
        returns (PaymentState[] memory states)
    {
        states = new PaymentState[](paymentInfoHashes.length);
        for (uint256 i; i < paymentInfoHashes.length; ++i) {
            states[i] = paymentState[paymentInfoHashes[i]];
        }
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    /// @dev The body of `capture`, after the sender and amount checks.
    function _capture(PaymentInfo calldata paymentInfo, uint256 amount, uint16 feeBps, address feeReceiver)
        internal
    {
        _validateFee(paymentInfo, feeBps, feeReceiver);
        uint48 expiry = paymentInfo.authorizationExpiry;
        if (block.timestamp >= expiry) revert AfterAuthorizationExpiry(uint48(block.timestamp), expiry);

        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(this));
        PaymentState memory state = paymentState[paymentInfoHash];
        if (state.capturableAmount < amount) {
            revert InsufficientAuthorization(paymentInfoHash, state.capturableAmount, amount);
        }

        // Both fit: amount <= capturable, and capturable + refundable never exceeds maxAmount.
        unchecked {
            state.capturableAmount -= uint120(amount);
            state.refundableAmount += uint120(amount);
        }
        paymentState[paymentInfoHash] = state;
        emit PaymentCaptured(paymentInfoHash, amount, feeBps, feeReceiver);

        _distributeTokens(paymentInfo, amount, feeBps, feeReceiver);
    }

    /// @dev The body of `void`, after the sender check.
    function _void(PaymentInfo calldata paymentInfo) internal {
        bytes32 paymentInfoHash = PaymentInfoHash.hash(paymentInfo, address(this));
        uint256 held = paymentState[paymentInfoHash].capturableAmount;
        if (held == 0) revert ZeroAuthorization(paymentInfoHash);

        paymentState[paymentInfoHash].capturableAmount = 0;
        emit PaymentVoided(paymentInfoHash, held);

        _sendTokens(paymentInfo.operator, paymentInfo.token, paymentInfo.payer, held);
    }

    /// @dev Has the collector bring exactly `amount` into the operator's TokenStore.
    function _collectTokens(
        PaymentInfo calldata paymentInfo,
        uint256 amount,
        address tokenCollector,
        bytes calldata collectorData,
        TokenCollector.CollectorType collectorType
    ) internal {
        if (TokenCollector(tokenCollector).collectorType() != collectorType) revert InvalidCollectorForOperation();

        address token = paymentInfo.token;
        address tokenStore = getTokenStore(paymentInfo.operator);
        uint256 balanceBefore = SafeTransferLib.balanceOf(token, tokenStore);
        TokenCollector(tokenCollector).collectTokens(paymentInfo, tokenStore, amount, collectorData);
        // Exactly `amount`: less would be an under-delivering collector or a fee-on-transfer token.
        if (SafeTransferLib.balanceOf(token, tokenStore) != balanceBefore + amount) revert TokenCollectionFailed();
    }

    /// @dev Pays a capture or charge out of the operator's TokenStore: the fee first, then the rest.
    ///      The operator is msg.sender here (checked by the caller).
    function _distributeTokens(PaymentInfo calldata paymentInfo, uint256 amount, uint16 feeBps, address feeReceiver)
        internal
    {
        uint256 feeAmount;
        unchecked {
            // amount < 2**120 and feeBps < 2**16: no overflow.
            feeAmount = amount * feeBps / _MAX_FEE_BPS;
        }
        address tokenStore = _deployedTokenStore(msg.sender);
        TokenStore(tokenStore).sendTokensWithFee(
            paymentInfo.token, feeReceiver, feeAmount, paymentInfo.receiver, amount - feeAmount
        );
    }

    /// @dev Sends `amount` of `token` from `operator`'s TokenStore to `recipient`.
    function _sendTokens(address operator, address token, address recipient, uint256 amount) internal {
        TokenStore(_deployedTokenStore(operator)).sendTokens(token, recipient, amount);
    }

    /// @dev The operator's TokenStore, deployed first if this is the first time funds leave it.
    ///      Checking the code size first costs nothing extra: it warms the address for the call.
    function _deployedTokenStore(address operator) internal returns (address tokenStore) {
        tokenStore = getTokenStore(operator);
        if (tokenStore.code.length == 0) {
            LibClone.cloneDeterministic(tokenStoreImplementation, bytes32(bytes20(operator)));
            emit TokenStoreCreated(operator, tokenStore);
        }
    }

    /// @dev Payment-level checks shared by authorize and charge, in the reference order.
    function _validatePayment(PaymentInfo calldata paymentInfo, uint256 amount) internal view {
        uint120 maxAmount = paymentInfo.maxAmount;
        if (amount > maxAmount) revert ExceedsMaxAmount(amount, maxAmount);

        uint48 preApprovalExpiry = paymentInfo.preApprovalExpiry;
        uint48 authorizationExpiry = paymentInfo.authorizationExpiry;
        uint48 refundExpiry = paymentInfo.refundExpiry;
        if (block.timestamp >= preApprovalExpiry) {
            revert AfterPreApprovalExpiry(uint48(block.timestamp), preApprovalExpiry);
        }
        if (preApprovalExpiry > authorizationExpiry || authorizationExpiry > refundExpiry) {
            revert InvalidExpiries(preApprovalExpiry, authorizationExpiry, refundExpiry);
        }

        uint16 minFeeBps = paymentInfo.minFeeBps;
        uint16 maxFeeBps = paymentInfo.maxFeeBps;
        if (maxFeeBps > _MAX_FEE_BPS) revert FeeBpsOverflow(maxFeeBps);
        if (minFeeBps > maxFeeBps) revert InvalidFeeBpsRange(minFeeBps, maxFeeBps);
    }

    /// @dev Fee checks shared by capture and charge, in the reference order.
    function _validateFee(PaymentInfo calldata paymentInfo, uint16 feeBps, address feeReceiver) internal pure {
        uint16 minFeeBps = paymentInfo.minFeeBps;
        uint16 maxFeeBps = paymentInfo.maxFeeBps;
        if (feeBps < minFeeBps || feeBps > maxFeeBps) revert FeeBpsOutOfRange(feeBps, minFeeBps, maxFeeBps);
        if (feeReceiver == address(0) && feeBps != 0) revert ZeroFeeReceiver();
        address fixedFeeReceiver = paymentInfo.feeReceiver;
        if (fixedFeeReceiver != address(0) && fixedFeeReceiver != feeReceiver) {
            revert InvalidFeeReceiver(feeReceiver, fixedFeeReceiver);
        }
    }

    /// @dev Reverts unless 0 < amount <= type(uint120).max.
    function _checkAmount(uint256 amount) internal pure {
        if (amount == 0) revert ZeroAmount();
        if (amount > type(uint120).max) revert AmountOverflow(amount, type(uint120).max);
    }
}
