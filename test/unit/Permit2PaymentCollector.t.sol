// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {MockERC1271Wallet, MockERC1271WalletFactory} from "./helpers/MockERC1271Wallet.sol";
import {RevertingTarget} from "./helpers/PrepareTargets.sol";
import {IPermit2Testing, Permit2Fixture} from "../base/Permit2Fixture.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {Permit2PaymentCollector} from "../../contracts/collectors/Permit2PaymentCollector.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";
import {IMulticall3} from "../../contracts/interfaces/IMulticall3.sol";

/// @notice The Permit2 collector against the real Permit2 (from ../shared/canonical, at its
///         canonical address): what the payer signs, every signed field checked, Permit2's own
///         errors passed through, ERC-1271 and ERC-6492 payers, and the payment lifecycle after it.
contract Permit2PaymentCollectorTest is UnitTestBase, Permit2Fixture {
    bytes32 internal constant ERC6492_SUFFIX = 0x6492649264926492649264926492649264926492649264926492649264926492;
    uint256 internal constant WALLET_OWNER_PK = 0xC0FFEE;
    bytes32 internal constant WALLET_SALT = bytes32(uint256(7));

    Permit2PaymentCollector internal permit2Collector;
    MockERC1271WalletFactory internal factory;
    address internal walletOwner;
    address internal wallet; // counterfactual until deployed

    function setUp() public override {
        super.setUp();
        _installPermit2();
        permit2Collector = new Permit2PaymentCollector(address(escrow), PERMIT2, address(multicall3));
        vm.label(address(permit2Collector), "Permit2PaymentCollector");
        // The payer's one-time approval of Permit2 (what the x402 client asks for first).
        vm.prank(payer);
        usdc.approve(PERMIT2, type(uint256).max);

        factory = new MockERC1271WalletFactory();
        walletOwner = vm.addr(WALLET_OWNER_PK);
        wallet = factory.predictWallet(walletOwner, WALLET_SALT);
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    /// @dev The terms the spec prescribes for `info` through our collector.
    function _terms(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (PermitTerms memory) {
        return _permit2Terms(info, address(permit2Collector), address(escrow));
    }

    /// @dev Mints `info.maxAmount` to the payer and returns `pk`'s Permit2 signature for `info`.
    function _mintAndSignPermit2(AuthCaptureEscrow.PaymentInfo memory info, uint256 pk)
        internal
        returns (bytes memory)
    {
        usdc.mint(info.payer, info.maxAmount);
        return _signPermit2(_terms(info), pk);
    }

    function _authorizePermit2(AuthCaptureEscrow.PaymentInfo memory info, uint256 amount, bytes memory sig)
        internal
        returns (bytes32)
    {
        vm.prank(operator);
        escrow.authorize(info, amount, address(permit2Collector), sig);
        return escrow.getHash(info);
    }

    function _authorizeExpectRevert(AuthCaptureEscrow.PaymentInfo memory info, bytes memory sig, bytes memory err)
        internal
    {
        _expectRevertFrom(operator, err);
        escrow.authorize(info, 10e6, address(permit2Collector), sig);
    }

    /// @dev The payer, funded, signs `terms`; authorizing `info` with it must fail Permit2's signer check.
    function _assertTermsRejected(AuthCaptureEscrow.PaymentInfo memory info, PermitTerms memory terms) internal {
        usdc.mint(payer, info.maxAmount);
        bytes memory sig = _signPermit2(terms, PAYER_PK);
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(IPermit2Testing.InvalidSigner.selector));
        _assertState(escrow.getHash(info), false, 0, 0);
        assertEq(usdc.balanceOf(payer), info.maxAmount, "payer untouched");
    }

    function _wrap6492(address target, bytes memory prepareData, bytes memory innerSig)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(abi.encode(target, prepareData, innerSig), ERC6492_SUFFIX);
    }

    function _deployData() internal view returns (bytes memory) {
        return abi.encodeCall(MockERC1271WalletFactory.deployWallet, (walletOwner, WALLET_SALT));
    }

    /// @dev A payment from the (counterfactual) wallet, funded, with Permit2 approved for it. The
    ///      approval is set by impersonating the address: it stands for the approval a real smart
    ///      wallet bundles with its deployment; the token's ledger does not care whether code exists.
    function _walletPayment() internal returns (AuthCaptureEscrow.PaymentInfo memory info) {
        info = _paymentInfo(wallet, MAX_AMOUNT);
        usdc.mint(wallet, info.maxAmount);
        vm.prank(wallet);
        usdc.approve(PERMIT2, type(uint256).max);
    }

    /*//////////////////////////////////////////////////////////////
                               BASICS
    //////////////////////////////////////////////////////////////*/

    function test_collectorType_isPayment() public view {
        assertEq(uint8(permit2Collector.collectorType()), uint8(TokenCollector.CollectorType.Payment));
    }

    function test_constructor_setsEscrowPermit2AndMulticall3() public view {
        assertEq(address(permit2Collector.authCaptureEscrow()), address(escrow));
        assertEq(address(permit2Collector.permit2()), PERMIT2);
        assertEq(address(permit2Collector.multicall3()), address(multicall3));
    }

    function test_permit2Fixture_hasCanonicalDomain() public view {
        assertEq(IPermit2Testing(PERMIT2).DOMAIN_SEPARATOR(), permit2DomainSeparator());
        assertGt(PERMIT2.code.length, 9000, "Permit2's code");
    }

    function test_collectTokens_reverts_OnlyAuthCaptureEscrow_when_calledByOperator() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        vm.prank(operator);
        vm.expectRevert(TokenCollector.OnlyAuthCaptureEscrow.selector);
        permit2Collector.collectTokens(info, operator, 10e6, sig);
        assertEq(usdc.balanceOf(payer), info.maxAmount);
    }

    /*//////////////////////////////////////////////////////////////
                        AUTHORIZE, CHARGE, LIFECYCLE
    //////////////////////////////////////////////////////////////*/

    function test_authorize_movesExactlyAmountFromPayerToStore() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, 5e6); // unrelated balance stays put
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);

        _expectEscrowEmit();
        emit AuthCaptureEscrow.PaymentAuthorized(_specHash(info), info, 35e6, address(permit2Collector));
        bytes32 h = _authorizePermit2(info, 35e6, sig);

        _assertState(h, true, 35e6, 0);
        assertEq(usdc.balanceOf(payer), 5e6 + 65e6, "payer keeps everything not authorized");
        assertEq(usdc.balanceOf(_store()), 35e6);
        assertEq(usdc.balanceOf(address(permit2Collector)), 0, "tokens never rest in the collector");
        assertEq(usdc.balanceOf(PERMIT2), 0);
    }

    function test_authorize_transfersOnceStraightFromPayerToStore() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        address store = _store();
        vm.expectEmit(true, true, true, true, address(usdc));
        emit Transfer(payer, store, 40e6);
        vm.recordLogs();
        _authorizePermit2(info, 40e6, sig);
        assertEq(
            _countLogs(vm.getRecordedLogs(), address(usdc), keccak256("Transfer(address,address,uint256)")),
            1,
            "one transfer, no detour through the collector"
        );
    }

    /// @dev The ERC-20 Transfer event, for expectEmit.
    event Transfer(address indexed from, address indexed to, uint256 amount);

    function test_authorize_spendsPayerAgnosticHashAsPermit2Nonce() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        uint256 nonce = uint256(_payerAgnosticHash(info));
        assertTrue(bytes32(nonce) != escrow.getHash(info));
        assertFalse(_permit2NonceUsed(payer, nonce));
        _authorizePermit2(info, 10e6, _mintAndSignPermit2(info, PAYER_PK));
        assertTrue(_permit2NonceUsed(payer, nonce));
    }

    function test_charge_distributesFeeAndRemainder() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        vm.prank(operator);
        escrow.charge(info, 60e6, address(permit2Collector), sig, 100, feeReceiver);

        _assertState(escrow.getHash(info), true, 0, 60e6);
        assertEq(usdc.balanceOf(receiver), 59.4e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.6e6);
        assertEq(usdc.balanceOf(payer), 40e6);
        assertEq(usdc.balanceOf(_store()), 0);
    }

    function test_lifecycle_authorizeCaptureRefundVoid() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _authorizePermit2(info, 80e6, _mintAndSignPermit2(info, PAYER_PK));
        vm.startPrank(operator);
        escrow.capture(info, 30e6, 100, feeReceiver);
        vm.stopPrank();
        _fundRefunds(10e6);
        vm.startPrank(operator);
        escrow.refund(info, 10e6, address(refundCollector), "");
        escrow.void(info);
        vm.stopPrank();

        _assertState(h, true, 0, 20e6);
        assertEq(usdc.balanceOf(receiver), 29.7e6);
        assertEq(usdc.balanceOf(feeReceiver), 0.3e6);
        assertEq(usdc.balanceOf(payer), 20e6 + 10e6 + 50e6);
        assertEq(usdc.balanceOf(_store()), 0);
    }

    function test_authorize_thenReclaimAfterExpiry() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _authorizePermit2(info, 25e6, _mintAndSignPermit2(info, PAYER_PK));
        vm.warp(info.authorizationExpiry);
        vm.prank(payer);
        escrow.reclaim(info);
        _assertState(h, true, 0, 0);
        assertEq(usdc.balanceOf(payer), MAX_AMOUNT);
    }

    function test_authorize_atLastSecondBeforePreApprovalExpiry() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        vm.warp(info.preApprovalExpiry - 1);
        _assertState(_authorizePermit2(info, 10e6, sig), true, 10e6, 0);
    }

    /*//////////////////////////////////////////////////////////////
                 SIGNED FIELDS: each one must be exactly the spec's
    //////////////////////////////////////////////////////////////*/

    function test_authorize_reverts_InvalidSigner_when_wrongSigner() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, 0xBAD);
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(IPermit2Testing.InvalidSigner.selector));
        assertEq(usdc.balanceOf(payer), info.maxAmount);
    }

    function test_authorize_reverts_InvalidSigner_when_signedAmountIsAmountNotMaxAmount() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        PermitTerms memory terms = _terms(info);
        terms.amount = 10e6;
        _assertTermsRejected(info, terms);
    }

    function test_authorize_reverts_InvalidSigner_when_signedTokenDiffers() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        PermitTerms memory terms = _terms(info);
        terms.token = address(0xdead);
        _assertTermsRejected(info, terms);
    }

    function test_authorize_reverts_InvalidSigner_when_spenderIsEscrowNotCollector() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        PermitTerms memory terms = _terms(info);
        terms.spender = address(escrow);
        _assertTermsRejected(info, terms);
    }

    function test_authorize_reverts_InvalidSigner_when_nonceIsPayerSpecificHash() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        PermitTerms memory terms = _terms(info);
        terms.nonce = uint256(_specHash(info));
        _assertTermsRejected(info, terms);
    }

    function test_authorize_reverts_InvalidSigner_when_deadlineIsAuthorizationExpiry() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        PermitTerms memory terms = _terms(info);
        terms.deadline = info.authorizationExpiry;
        _assertTermsRejected(info, terms);
    }

    function test_authorize_reverts_InvalidSigner_when_signatureForAnotherPayment() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.salt = 1;
        _assertTermsRejected(info, _terms(other));
    }

    function test_authorize_reverts_InvalidSignatureLength_when_signatureEmpty() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, info.maxAmount);
        _authorizeExpectRevert(info, "", abi.encodeWithSelector(IPermit2Testing.InvalidSignatureLength.selector));
    }

    function test_authorize_accepts64ByteCompactSignature() public {
        // Permit2 accepts EIP-2098 compact signatures from EOAs; the collector passes them through.
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, info.maxAmount);
        (bytes32 r, bytes32 vs) = vm.signCompact(PAYER_PK, _permit2Digest(_terms(info)));
        _assertState(_authorizePermit2(info, 10e6, abi.encodePacked(r, vs)), true, 10e6, 0);
    }

    /*//////////////////////////////////////////////////////////////
                     EXPIRY, AMOUNT AND NONCE, AT PERMIT2
    //////////////////////////////////////////////////////////////*/

    function test_authorize_reverts_AfterPreApprovalExpiry_when_deadlinePassed() public {
        // The escrow refuses first (at the deadline already, where Permit2 would still accept).
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        vm.warp(info.preApprovalExpiry);
        _authorizeExpectRevert(info, sig, _afterPreApprovalExpiry(block.timestamp, info));
    }

    function test_collect_reverts_SignatureExpired_when_calledPastDeadline() public {
        // Even the escrow itself cannot make Permit2 honour an expired signature.
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        address store = _store();
        vm.warp(uint256(info.preApprovalExpiry) + 1);
        vm.prank(address(escrow));
        vm.expectRevert(abi.encodeWithSelector(IPermit2Testing.SignatureExpired.selector, info.preApprovalExpiry));
        permit2Collector.collectTokens(info, store, 10e6, sig);
    }

    function test_collect_reverts_InvalidAmount_when_amountAboveSignedMaxAmount() public {
        // The escrow stops this with ExceedsMaxAmount; Permit2 stops it again at the collector.
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        usdc.mint(payer, 1);
        address store = _store();
        vm.prank(address(escrow));
        vm.expectRevert(abi.encodeWithSelector(IPermit2Testing.InvalidAmount.selector, uint256(info.maxAmount)));
        permit2Collector.collectTokens(info, store, uint256(info.maxAmount) + 1, sig);
    }

    function test_authorize_reverts_PaymentAlreadyCollected_when_signatureReusedForSamePayment() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        bytes32 h = _authorizePermit2(info, 10e6, sig);
        _authorizeExpectRevert(info, sig, _paymentAlreadyCollected(h));
    }

    function test_collect_reverts_InvalidNonce_when_signatureReplayedAtCollector() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        _authorizePermit2(info, 10e6, sig);
        address store = _store();
        uint256 storeBefore = usdc.balanceOf(store);
        vm.prank(address(escrow));
        vm.expectRevert(IPermit2Testing.InvalidNonce.selector);
        permit2Collector.collectTokens(info, store, 10e6, sig);
        assertEq(usdc.balanceOf(store), storeBefore);
    }

    function test_authorize_reverts_InvalidNonce_when_payerInvalidatedNonce() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        uint256 nonce = uint256(_payerAgnosticHash(info));
        vm.prank(payer);
        IPermit2Testing(PERMIT2).invalidateUnorderedNonces(nonce >> 8, 1 << (nonce & 0xff));
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(IPermit2Testing.InvalidNonce.selector));
        _assertState(escrow.getHash(info), false, 0, 0);
    }

    function test_authorize_reverts_TRANSFER_FROM_FAILED_when_payerDidNotApprovePermit2() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSignPermit2(info, PAYER_PK);
        vm.prank(payer);
        usdc.approve(PERMIT2, 0);
        // Permit2 moves tokens with solmate's SafeTransferLib: a failing transferFrom is this string.
        _authorizeExpectRevert(info, sig, abi.encodeWithSignature("Error(string)", "TRANSFER_FROM_FAILED"));
    }

    function test_authorize_reverts_TRANSFER_FROM_FAILED_when_payerHoldsLessThanAmount() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, 9e6);
        bytes memory sig = _signPermit2(_terms(info), PAYER_PK);
        _authorizeExpectRevert(info, sig, abi.encodeWithSignature("Error(string)", "TRANSFER_FROM_FAILED"));
    }

    function test_authorize_succeeds_when_payerHoldsAmountButNotMaxAmount() public {
        // Unlike ERC-3009 (which moves maxAmount first), Permit2 moves only what is collected.
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, 10e6);
        bytes memory sig = _signPermit2(_terms(info), PAYER_PK);
        _assertState(_authorizePermit2(info, 10e6, sig), true, 10e6, 0);
        assertEq(usdc.balanceOf(payer), 0);
    }

    /*//////////////////////////////////////////////////////////////
                      ERC-1271 AND ERC-6492 SIGNATURES
    //////////////////////////////////////////////////////////////*/

    function test_authorize_ERC1271_deployedWallet() public {
        factory.deployWallet(walletOwner, WALLET_SALT);
        AuthCaptureEscrow.PaymentInfo memory info = _walletPayment();
        bytes memory sig = _signPermit2(_terms(info), WALLET_OWNER_PK);
        _assertState(_authorizePermit2(info, 30e6, sig), true, 30e6, 0);
        assertEq(usdc.balanceOf(wallet), 70e6);
    }

    function test_authorize_reverts_InvalidContractSignature_when_walletOwnerDidNotSign() public {
        factory.deployWallet(walletOwner, WALLET_SALT);
        AuthCaptureEscrow.PaymentInfo memory info = _walletPayment();
        bytes memory sig = _signPermit2(_terms(info), PAYER_PK);
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(IPermit2Testing.InvalidContractSignature.selector));
    }

    function test_authorize_ERC6492_deploysCounterfactualWalletThenCollects() public {
        AuthCaptureEscrow.PaymentInfo memory info = _walletPayment();
        assertEq(wallet.code.length, 0);
        bytes memory prepareData = _deployData();
        bytes memory sig = _wrap6492(address(factory), prepareData, _signPermit2(_terms(info), WALLET_OWNER_PK));

        IMulticall3.Call[] memory calls = new IMulticall3.Call[](1);
        calls[0] = IMulticall3.Call({target: address(factory), callData: prepareData});
        vm.expectCall(address(multicall3), abi.encodeCall(IMulticall3.tryAggregate, (false, calls)), 1);
        bytes32 h = _authorizePermit2(info, 40e6, sig);

        assertGt(wallet.code.length, 0, "wallet deployed by the prepare call");
        assertEq(MockERC1271Wallet(wallet).owner(), walletOwner);
        _assertState(h, true, 40e6, 0);
        assertEq(usdc.balanceOf(wallet), 60e6);
        assertEq(usdc.balanceOf(_store()), 40e6);
    }

    function test_charge_ERC6492_fromCounterfactualWallet() public {
        AuthCaptureEscrow.PaymentInfo memory info = _walletPayment();
        bytes memory sig = _wrap6492(address(factory), _deployData(), _signPermit2(_terms(info), WALLET_OWNER_PK));
        vm.prank(operator);
        escrow.charge(info, 50e6, address(permit2Collector), sig, 100, feeReceiver);
        assertEq(usdc.balanceOf(receiver), 49.5e6);
        assertGt(wallet.code.length, 0);
    }

    function test_authorize_ERC6492_failingPrepare_doesNotBlock_when_walletAlreadyDeployed() public {
        factory.deployWallet(walletOwner, WALLET_SALT);
        AuthCaptureEscrow.PaymentInfo memory info = _walletPayment();
        bytes memory sig = _wrap6492(address(factory), _deployData(), _signPermit2(_terms(info), WALLET_OWNER_PK));
        _assertState(_authorizePermit2(info, 10e6, sig), true, 10e6, 0);
    }

    function test_authorize_ERC6492_reverts_InvalidSigner_when_prepareFailsAndWalletUndeployed() public {
        // No code at the payer after a failed prepare: Permit2 treats it as an EOA, and the owner's
        // ECDSA signature does not recover to the wallet address.
        RevertingTarget bad = new RevertingTarget();
        AuthCaptureEscrow.PaymentInfo memory info = _walletPayment();
        bytes memory sig = _wrap6492(address(bad), _deployData(), _signPermit2(_terms(info), WALLET_OWNER_PK));
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(IPermit2Testing.InvalidSigner.selector));
        assertEq(wallet.code.length, 0);
    }

    function test_authorize_ERC6492_suffixMustBeExact() public {
        // A near-miss suffix is not ERC-6492: the whole blob goes to Permit2, whose EOA path
        // refuses its length, and no prepare call is made.
        AuthCaptureEscrow.PaymentInfo memory info = _walletPayment();
        bytes memory sig = abi.encodePacked(
            abi.encode(address(factory), _deployData(), _signPermit2(_terms(info), WALLET_OWNER_PK)),
            bytes32(uint256(ERC6492_SUFFIX) ^ 1)
        );
        vm.expectCall(address(multicall3), abi.encodeWithSelector(IMulticall3.tryAggregate.selector), 0);
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(IPermit2Testing.InvalidSignatureLength.selector));
    }
}
