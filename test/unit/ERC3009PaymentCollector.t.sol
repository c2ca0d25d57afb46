// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitTestBase} from "./helpers/UnitTestBase.sol";
import {MockERC1271Wallet, MockERC1271WalletFactory} from "./helpers/MockERC1271Wallet.sol";
import {RevertingTarget, SenderRecorder} from "./helpers/PrepareTargets.sol";
import {usdcDomainSeparator} from "./helpers/UsdcDomain.sol";
import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";
import {TokenCollector} from "../../contracts/collectors/TokenCollector.sol";
import {TestUSDC} from "../../contracts/dev/TestUSDC.sol";
import {IMulticall3} from "../../contracts/interfaces/IMulticall3.sol";

contract ERC3009PaymentCollectorTest is UnitTestBase {
    bytes32 internal constant SPEC_RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant ERC6492_SUFFIX = 0x6492649264926492649264926492649264926492649264926492649264926492;
    uint256 internal constant WALLET_OWNER_PK = 0xC0FFEE;
    bytes32 internal constant WALLET_SALT = bytes32(uint256(7));

    MockERC1271WalletFactory internal factory;
    address internal walletOwner;
    address internal wallet; // counterfactual until deployed

    function setUp() public override {
        super.setUp();
        factory = new MockERC1271WalletFactory();
        walletOwner = vm.addr(WALLET_OWNER_PK);
        wallet = factory.predictWallet(walletOwner, WALLET_SALT);
    }

    /*//////////////////////////////////////////////////////////////
                                HELPERS
    //////////////////////////////////////////////////////////////*/

    function _payerAgnosticSpecHash(AuthCaptureEscrow.PaymentInfo memory info) internal view returns (bytes32) {
        AuthCaptureEscrow.PaymentInfo memory copy = info;
        address p = copy.payer;
        copy.payer = address(0);
        bytes32 h = _specHash(copy);
        copy.payer = p;
        return h;
    }

    function _domainSeparator() internal view returns (bytes32) {
        return usdcDomainSeparator(address(usdc));
    }

    /// @dev Signs a ReceiveWithAuthorization built from scratch (not with the shared helper).
    function _signReceive(
        uint256 pk,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes memory) {
        bytes32 structHash =
            keccak256(abi.encode(SPEC_RECEIVE_TYPEHASH, from, to, value, validAfter, validBefore, nonce));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function _specSignature(AuthCaptureEscrow.PaymentInfo memory info, uint256 pk) internal view returns (bytes memory) {
        return _signReceive(
            pk,
            info.payer,
            address(erc3009Collector),
            info.maxAmount,
            0,
            info.preApprovalExpiry,
            _payerAgnosticSpecHash(info)
        );
    }

    function _authorizeExpectRevert(AuthCaptureEscrow.PaymentInfo memory info, bytes memory sig, bytes memory err)
        internal
    {
        vm.prank(operator);
        vm.expectRevert(err);
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
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

    /*//////////////////////////////////////////////////////////////
                               BASICS
    //////////////////////////////////////////////////////////////*/

    function test_collectorType_isPayment() public view {
        assertEq(uint8(erc3009Collector.collectorType()), uint8(TokenCollector.CollectorType.Payment));
    }

    function test_constructor_setsEscrowAndMulticall3() public view {
        assertEq(address(erc3009Collector.authCaptureEscrow()), address(escrow));
        assertEq(address(erc3009Collector.multicall3()), address(multicall3));
    }

    function test_collectTokens_reverts_OnlyAuthCaptureEscrow_when_calledByOperator() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        vm.prank(operator);
        vm.expectRevert(TokenCollector.OnlyAuthCaptureEscrow.selector);
        erc3009Collector.collectTokens(info, operator, 10e6, sig);
    }

    function test_collectTokens_reverts_OnlyAuthCaptureEscrow_when_calledByPayer() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        vm.prank(payer);
        vm.expectRevert(TokenCollector.OnlyAuthCaptureEscrow.selector);
        erc3009Collector.collectTokens(info, payer, 10e6, "");
    }

    /*//////////////////////////////////////////////////////////////
                     SIGNED FIELDS (nonce, value, deadline)
    //////////////////////////////////////////////////////////////*/

    function test_collect_acceptsSignatureBuiltFromSpec() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, info.maxAmount);
        bytes memory sig = _specSignature(info, PAYER_PK);
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
        _assertState(escrow.getHash(info), true, 10e6, 0);
    }

    function test_collect_usesPayerAgnosticHashAsNonce() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 nonce = _payerAgnosticSpecHash(info);
        assertTrue(nonce != escrow.getHash(info), "payer-agnostic hash differs from the payment hash");
        assertEq(nonce, _payerAgnosticHash(info));
        assertFalse(usdc.authorizationState(payer, nonce));

        bytes memory sig = _mintAndSign(info, PAYER_PK);
        vm.expectEmit(true, true, true, true, address(usdc));
        emit TestUSDC.AuthorizationUsed(payer, nonce);
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
        assertTrue(usdc.authorizationState(payer, nonce));
    }

    function test_payerAgnosticHash_isTheSameForAnyPayer() public view {
        AuthCaptureEscrow.PaymentInfo memory a = _defaultInfo();
        AuthCaptureEscrow.PaymentInfo memory b = _paymentInfo(stranger, MAX_AMOUNT);
        assertEq(_payerAgnosticSpecHash(a), _payerAgnosticSpecHash(b));
        assertTrue(escrow.getHash(a) != escrow.getHash(b));
    }

    function test_collect_reverts_InvalidAuthorizationSignature_when_nonceIsPayerSpecificHash() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        ReceiveTerms memory terms = _specReceiveTerms(info);
        terms.nonce = _specHash(info);
        _assertReceiveTermsRejected(info, terms);
    }

    function test_collect_reverts_InvalidAuthorizationSignature_when_valueIsAmountNotMaxAmount() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        ReceiveTerms memory terms = _specReceiveTerms(info);
        terms.value = 10e6;
        _assertReceiveTermsRejected(info, terms);
    }

    function test_collect_reverts_InvalidAuthorizationSignature_when_validBeforeIsNotPreApprovalExpiry() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        ReceiveTerms memory terms = _specReceiveTerms(info);
        terms.validBefore = info.authorizationExpiry;
        _assertReceiveTermsRejected(info, terms);
    }

    function test_collect_reverts_InvalidAuthorizationSignature_when_payeeIsNotCollector() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        ReceiveTerms memory terms = _specReceiveTerms(info);
        terms.to = address(escrow);
        _assertReceiveTermsRejected(info, terms);
    }

    /// @dev The terms of a ReceiveWithAuthorization the payer signs (validAfter is always 0).
    struct ReceiveTerms {
        address to;
        uint256 value;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// @dev The terms the spec prescribes for `info`: to the collector, `maxAmount`, valid before
    ///      `preApprovalExpiry`, nonce the payer-agnostic hash.
    function _specReceiveTerms(AuthCaptureEscrow.PaymentInfo memory info)
        internal
        view
        returns (ReceiveTerms memory)
    {
        return ReceiveTerms({
            to: address(erc3009Collector),
            value: info.maxAmount,
            validBefore: info.preApprovalExpiry,
            nonce: _payerAgnosticSpecHash(info)
        });
    }

    /// @dev The payer, funded with `info.maxAmount`, signs `terms`; authorizing `info` with that
    ///      signature must fail the token's signature check.
    function _assertReceiveTermsRejected(AuthCaptureEscrow.PaymentInfo memory info, ReceiveTerms memory terms)
        internal
    {
        usdc.mint(payer, info.maxAmount);
        bytes memory sig = _signReceive(PAYER_PK, payer, terms.to, terms.value, 0, terms.validBefore, terms.nonce);
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, payer));
    }

    /*//////////////////////////////////////////////////////////////
                           TOKEN MOVEMENTS
    //////////////////////////////////////////////////////////////*/

    function test_collect_returnsMaxAmountMinusAmountToPayer() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, info.maxAmount + 5e6); // 5 unrelated tokens stay put
        bytes memory sig = _signERC3009(info, PAYER_PK);
        vm.prank(operator);
        escrow.authorize(info, 35e6, address(erc3009Collector), sig);
        assertEq(usdc.balanceOf(payer), 5e6 + 65e6);
        assertEq(usdc.balanceOf(_store()), 35e6);
        assertEq(usdc.balanceOf(address(erc3009Collector)), 0);
    }

    function test_collect_noRefundTransfer_when_amountEqualsMaxAmount() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        vm.recordLogs();
        vm.prank(operator);
        escrow.authorize(info, MAX_AMOUNT, address(erc3009Collector), sig);
        // Transfer payer -> collector and collector -> store only.
        assertEq(_countLogs(vm.getRecordedLogs(), address(usdc), keccak256("Transfer(address,address,uint256)")), 2);
        assertEq(usdc.balanceOf(payer), 0);
    }

    function test_collect_charge_returnsExcessToPayer() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _charge(info, 1e6, 0, feeReceiver);
        assertEq(usdc.balanceOf(payer), 99e6);
        assertEq(usdc.balanceOf(receiver), 1e6);
        assertEq(usdc.balanceOf(address(erc3009Collector)), 0);
    }

    function test_collect_reverts_when_payerHoldsLessThanMaxAmount() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, 10e6); // enough for the amount, not for the signed maxAmount
        bytes memory sig = _signERC3009(info, PAYER_PK);
        _authorizeExpectRevert(info, sig, abi.encodeWithSignature("InsufficientBalance()"));
    }

    /*//////////////////////////////////////////////////////////////
                       WRONG OR REUSED SIGNATURES
    //////////////////////////////////////////////////////////////*/

    function test_collect_reverts_InvalidAuthorizationSignature_when_wrongSigner() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, 0xBAD);
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, payer));
    }

    function test_collect_reverts_InvalidAuthorizationSignature_when_signatureForAnotherPayment() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        AuthCaptureEscrow.PaymentInfo memory other = _defaultInfo();
        other.salt = 1;
        usdc.mint(payer, info.maxAmount);
        bytes memory sig = _signERC3009(other, PAYER_PK);
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, payer));
    }

    function test_collect_reverts_InvalidAuthorizationSignature_when_signatureEmpty() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, info.maxAmount);
        _authorizeExpectRevert(info, "", abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, payer));
    }

    function test_collect_reverts_PaymentAlreadyCollected_when_signatureReusedForSamePayment() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes32 h = _authorize(info, 10e6);
        bytes memory sig = _signERC3009(info, PAYER_PK);
        _authorizeExpectRevert(info, sig, abi.encodeWithSelector(AuthCaptureEscrow.PaymentAlreadyCollected.selector, h));
    }

    function test_collect_reverts_AuthorizationAlreadyUsed_when_signatureReplayedAtCollector() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        _authorize(info, 10e6);
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        bytes32 nonce = _payerAgnosticSpecHash(info);
        address store = _store();
        // Even the escrow itself cannot make the collector use a signature twice.
        vm.prank(address(escrow));
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationAlreadyUsed.selector, payer, nonce));
        erc3009Collector.collectTokens(info, store, 10e6, sig);
    }

    function test_collect_reverts_AuthorizationAlreadyUsed_when_payerCancelledNonce() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, info.maxAmount);
        bytes32 nonce = _payerAgnosticSpecHash(info);
        bytes32 cancelDigest = keccak256(
            abi.encodePacked(
                "\x19\x01",
                _domainSeparator(),
                keccak256(abi.encode(keccak256("CancelAuthorization(address authorizer,bytes32 nonce)"), payer, nonce))
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(PAYER_PK, cancelDigest);
        usdc.cancelAuthorization(payer, nonce, v, r, s);

        bytes memory sig = _signERC3009(info, PAYER_PK);
        _authorizeExpectRevert(
            info, sig, abi.encodeWithSelector(TestUSDC.AuthorizationAlreadyUsed.selector, payer, nonce)
        );
    }

    /*//////////////////////////////////////////////////////////////
                      ERC-1271 AND ERC-6492 SIGNATURES
    //////////////////////////////////////////////////////////////*/

    function test_collect_plainERC1271Signature_fromDeployedWallet() public {
        factory.deployWallet(walletOwner, WALLET_SALT);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(wallet, MAX_AMOUNT);
        usdc.mint(wallet, info.maxAmount);
        bytes memory sig = _signERC3009(info, WALLET_OWNER_PK);
        vm.prank(operator);
        escrow.authorize(info, 25e6, address(erc3009Collector), sig);
        _assertState(escrow.getHash(info), true, 25e6, 0);
        assertEq(usdc.balanceOf(wallet), 75e6);
    }

    function test_collect_plainSignature_doesNotCallMulticall3() public {
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        bytes memory sig = _mintAndSign(info, PAYER_PK);
        vm.expectCall(address(multicall3), abi.encodeWithSelector(IMulticall3.tryAggregate.selector), 0);
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
    }

    function test_collect_ERC6492_deploysCounterfactualWalletThroughMulticall3() public {
        assertEq(wallet.code.length, 0, "wallet not deployed yet");
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(wallet, MAX_AMOUNT);
        usdc.mint(wallet, info.maxAmount);
        bytes memory inner = _signERC3009(info, WALLET_OWNER_PK);
        bytes memory prepareData = _deployData();
        bytes memory sig = _wrap6492(address(factory), prepareData, inner);

        IMulticall3.Call[] memory calls = new IMulticall3.Call[](1);
        calls[0] = IMulticall3.Call({target: address(factory), callData: prepareData});
        vm.expectCall(address(multicall3), abi.encodeCall(IMulticall3.tryAggregate, (false, calls)), 1);
        vm.expectCall(address(factory), prepareData, 1);
        vm.prank(operator);
        escrow.authorize(info, 40e6, address(erc3009Collector), sig);

        assertGt(wallet.code.length, 0, "wallet deployed by the prepare call");
        assertEq(MockERC1271Wallet(wallet).owner(), walletOwner);
        _assertState(escrow.getHash(info), true, 40e6, 0);
        assertEq(usdc.balanceOf(wallet), 60e6, "excess back to the wallet");
        assertEq(usdc.balanceOf(_store()), 40e6);
    }

    function test_collect_ERC6492_chargeFromCounterfactualWallet() public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(wallet, MAX_AMOUNT);
        usdc.mint(wallet, info.maxAmount);
        bytes memory sig = _wrap6492(address(factory), _deployData(), _signERC3009(info, WALLET_OWNER_PK));
        vm.prank(operator);
        escrow.charge(info, 50e6, address(erc3009Collector), sig, 100, feeReceiver);
        assertEq(usdc.balanceOf(receiver), 49.5e6);
        assertGt(wallet.code.length, 0);
    }

    function test_collect_ERC6492_prepareCallIsMadeByMulticall3NotByCollector() public {
        SenderRecorder recorder = new SenderRecorder();
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo(); // EOA payer, wrapped signature
        usdc.mint(payer, info.maxAmount);
        bytes memory sig = _wrap6492(address(recorder), hex"c0ffee", _signERC3009(info, PAYER_PK));
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
        assertEq(recorder.calls(), 1);
        assertEq(recorder.lastSender(), address(multicall3));
        assertEq(recorder.lastData(), hex"c0ffee");
    }

    function test_collect_ERC6492_failingPrepare_doesNotBlock_when_walletAlreadyDeployed() public {
        factory.deployWallet(walletOwner, WALLET_SALT);
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(wallet, MAX_AMOUNT);
        usdc.mint(wallet, info.maxAmount);
        // Deploying again reverts (CREATE2 collision); the collector must ignore it.
        bytes memory sig = _wrap6492(address(factory), _deployData(), _signERC3009(info, WALLET_OWNER_PK));
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
        _assertState(escrow.getHash(info), true, 10e6, 0);
    }

    function test_collect_ERC6492_revertingPrepareTarget_doesNotBlockValidSignature() public {
        RevertingTarget bad = new RevertingTarget();
        AuthCaptureEscrow.PaymentInfo memory info = _defaultInfo();
        usdc.mint(payer, info.maxAmount);
        bytes memory sig = _wrap6492(address(bad), hex"12345678", _signERC3009(info, PAYER_PK));
        vm.prank(operator);
        escrow.authorize(info, 10e6, address(erc3009Collector), sig);
        _assertState(escrow.getHash(info), true, 10e6, 0);
    }

    function test_collect_ERC6492_reverts_InvalidAuthorizationSignature_when_prepareFailsAndWalletUndeployed() public {
        RevertingTarget bad = new RevertingTarget();
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(wallet, MAX_AMOUNT);
        usdc.mint(wallet, info.maxAmount);
        bytes memory sig = _wrap6492(address(bad), _deployData(), _signERC3009(info, WALLET_OWNER_PK));
        _authorizeExpectRevert(
            info, sig, abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, wallet)
        );
        assertEq(wallet.code.length, 0);
    }

    function test_collect_ERC6492_reverts_InvalidAuthorizationSignature_when_innerSignatureByWrongOwner() public {
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(wallet, MAX_AMOUNT);
        usdc.mint(wallet, info.maxAmount);
        bytes memory sig = _wrap6492(address(factory), _deployData(), _signERC3009(info, PAYER_PK));
        _authorizeExpectRevert(
            info, sig, abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, wallet)
        );
    }

    function test_collect_ERC6492_unwrapped_reverts_when_walletUndeployed() public {
        // Without the ERC-6492 wrapper nothing deploys the wallet, and its owner's ECDSA signature
        // does not recover to the wallet address.
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(wallet, MAX_AMOUNT);
        usdc.mint(wallet, info.maxAmount);
        bytes memory sig = _signERC3009(info, WALLET_OWNER_PK);
        _authorizeExpectRevert(
            info, sig, abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, wallet)
        );
    }

    function test_collect_ERC6492_suffixMustBeExact() public {
        // A wrapper whose last byte is off is not ERC-6492: it is passed to the token as is and fails.
        AuthCaptureEscrow.PaymentInfo memory info = _paymentInfo(wallet, MAX_AMOUNT);
        usdc.mint(wallet, info.maxAmount);
        bytes memory sig = abi.encodePacked(
            abi.encode(address(factory), _deployData(), _signERC3009(info, WALLET_OWNER_PK)),
            bytes32(uint256(ERC6492_SUFFIX) ^ 1)
        );
        vm.expectCall(address(multicall3), abi.encodeWithSelector(IMulticall3.tryAggregate.selector), 0);
        _authorizeExpectRevert(
            info, sig, abi.encodeWithSelector(TestUSDC.InvalidAuthorizationSignature.selector, wallet)
        );
    }
}
