// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title MockERC20
/// @notice A small, well-behaved ERC-20 (6 decimals, open mint) that the misbehaving token mocks
///         below specialise. Written for the security tests only: no permit, no ERC-3009.
/// @dev All balance movements go through `_move`, so a subclass changes transfer semantics in one
///      place; `transfer` and `transferFrom` are virtual so a subclass can change return values.
contract MockERC20 {
    /// @notice The token name.
    string public name;
    /// @notice The token symbol.
    string public symbol;
    /// @notice Fixed at 6, like USDC.
    uint8 public constant decimals = 6;
    /// @notice Sum of all balances.
    uint256 public totalSupply;
    /// @notice Balance of each account.
    mapping(address account => uint256 balance) public balanceOf;
    /// @notice Allowance given by `owner` to `spender`.
    mapping(address owner => mapping(address spender => uint256 amount)) public allowance;

    /// @notice ERC-20 Transfer event.
    event Transfer(address indexed from, address indexed to, uint256 amount);
    /// @notice ERC-20 Approval event.
    event Approval(address indexed owner, address indexed spender, uint256 amount);

    /// @notice The sender's balance is below the amount moved.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice The spender's allowance is below the amount moved.
    error InsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);

    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
    }

    /// @notice Creates `amount` tokens for `to`. Anyone may mint: this is a test token.
    /// @param to The recipient.
    /// @param amount The amount created.
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Sets the caller's allowance for `spender`.
    /// @param spender The spender.
    /// @param amount The new allowance.
    /// @return Always true.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Moves `amount` from the caller to `to`.
    /// @param to The recipient.
    /// @param amount The amount.
    /// @return success True on success.
    function transfer(address to, uint256 amount) external virtual returns (bool success) {
        _move(msg.sender, to, amount);
        return true;
    }

    /// @notice Moves `amount` from `from` to `to` using the caller's allowance.
    /// @param from The owner of the tokens.
    /// @param to The recipient.
    /// @param amount The amount.
    /// @return success True on success.
    function transferFrom(address from, address to, uint256 amount) external virtual returns (bool success) {
        _spendAllowance(from, amount);
        _move(from, to, amount);
        return true;
    }

    /// @dev Debits `from`, credits `to`, emits Transfer. Subclasses may skim, hook or refuse here.
    function _move(address from, address to, uint256 amount) internal virtual {
        uint256 balance = balanceOf[from];
        if (balance < amount) revert InsufficientBalance(from, balance, amount);
        unchecked {
            balanceOf[from] = balance - amount;
        }
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }

    /// @dev Consumes `amount` of the caller's allowance over `from` (an infinite allowance is kept).
    function _spendAllowance(address from, uint256 amount) internal {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(from, msg.sender, allowed, amount);
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
    }
}

/// @title FeeOnTransferToken
/// @notice Burns a fee on every transfer, so the recipient gets less than `amount`. The escrow must
///         notice that its TokenStore did not grow by the collected amount (`TokenCollectionFailed`).
/// @dev The fee is `amount * feeBps / 10_000`, at least 1 unit whenever `feeBps > 0`, and can be
///      switched off so a test can first put tokens into the escrow normally.
contract FeeOnTransferToken is MockERC20 {
    /// @notice The fee skimmed on each transfer, in basis points (0 disables it).
    uint256 public feeBps;

    /// @param feeBps_ The initial fee in basis points.
    constructor(uint256 feeBps_) MockERC20("Fee On Transfer", "FOT") {
        feeBps = feeBps_;
    }

    /// @notice Changes the fee.
    /// @param feeBps_ The new fee in basis points (0 disables it).
    function setFeeBps(uint256 feeBps_) external {
        feeBps = feeBps_;
    }

    /// @dev Moves `amount` out of `from` but credits `to` with `amount - fee`; the fee is burned.
    function _move(address from, address to, uint256 amount) internal override {
        uint256 fee;
        if (feeBps != 0) {
            fee = amount * feeBps / 10_000;
            if (fee == 0) fee = 1;
            if (fee > amount) fee = amount;
        }
        super._move(from, to, amount);
        if (fee != 0) {
            balanceOf[to] -= fee;
            totalSupply -= fee;
            emit Transfer(to, address(0), fee);
        }
    }
}

/// @title FalseReturningToken
/// @notice Returns `false` instead of reverting when told to fail, moving nothing, like some
///         early ERC-20s. The escrow must turn that into `SafeERC20FailedOperation(token)`.
contract FalseReturningToken is MockERC20 {
    /// @notice When true, `transfer` returns false and moves nothing.
    bool public failTransfer;
    /// @notice When true, `transferFrom` returns false and moves nothing.
    bool public failTransferFrom;

    constructor() MockERC20("False Returning", "FALSE") {}

    /// @notice Switches the two failure modes.
    /// @param failTransfer_ Whether `transfer` fails.
    /// @param failTransferFrom_ Whether `transferFrom` fails.
    function setFailures(bool failTransfer_, bool failTransferFrom_) external {
        failTransfer = failTransfer_;
        failTransferFrom = failTransferFrom_;
    }

    /// @inheritdoc MockERC20
    function transfer(address to, uint256 amount) external override returns (bool) {
        if (failTransfer) return false;
        _move(msg.sender, to, amount);
        return true;
    }

    /// @inheritdoc MockERC20
    function transferFrom(address from, address to, uint256 amount) external override returns (bool) {
        if (failTransferFrom) return false;
        _spendAllowance(from, amount);
        _move(from, to, amount);
        return true;
    }
}

/// @title RevertingToken
/// @notice Reverts with its own error when told to fail (a paused or blocklisting token).
contract RevertingToken is MockERC20 {
    /// @notice When true, `transfer` reverts.
    bool public revertTransfer;
    /// @notice When true, `transferFrom` reverts.
    bool public revertTransferFrom;

    /// @notice The token refuses to move funds.
    error TokenPaused();

    constructor() MockERC20("Reverting", "REVERT") {}

    /// @notice Switches the two failure modes.
    /// @param revertTransfer_ Whether `transfer` reverts.
    /// @param revertTransferFrom_ Whether `transferFrom` reverts.
    function setReverts(bool revertTransfer_, bool revertTransferFrom_) external {
        revertTransfer = revertTransfer_;
        revertTransferFrom = revertTransferFrom_;
    }

    /// @inheritdoc MockERC20
    function transfer(address to, uint256 amount) external override returns (bool) {
        if (revertTransfer) revert TokenPaused();
        _move(msg.sender, to, amount);
        return true;
    }

    /// @inheritdoc MockERC20
    function transferFrom(address from, address to, uint256 amount) external override returns (bool) {
        if (revertTransferFrom) revert TokenPaused();
        _spendAllowance(from, amount);
        _move(from, to, amount);
        return true;
    }
}

/// @title NoReturnToken
/// @notice USDT-style token: `transfer`, `transferFrom` and `approve` return no data at all.
///         The escrow must work with it unchanged.
/// @dev Deliberately not a MockERC20: the return types differ, so it has its own small ledger.
contract NoReturnToken {
    /// @notice Fixed at 6, like USDT.
    uint8 public constant decimals = 6;
    /// @notice Sum of all balances.
    uint256 public totalSupply;
    /// @notice Balance of each account.
    mapping(address account => uint256 balance) public balanceOf;
    /// @notice Allowance given by `owner` to `spender`.
    mapping(address owner => mapping(address spender => uint256 amount)) public allowance;

    /// @notice ERC-20 Transfer event.
    event Transfer(address indexed from, address indexed to, uint256 amount);

    /// @notice Creates `amount` tokens for `to`. Anyone may mint: this is a test token.
    /// @param to The recipient.
    /// @param amount The amount created.
    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Sets the caller's allowance for `spender`; returns nothing.
    /// @param spender The spender.
    /// @param amount The new allowance.
    function approve(address spender, uint256 amount) external {
        allowance[msg.sender][spender] = amount;
    }

    /// @notice Moves `amount` from the caller to `to`; returns nothing, reverts on failure.
    /// @param to The recipient.
    /// @param amount The amount.
    function transfer(address to, uint256 amount) external {
        _move(msg.sender, to, amount);
    }

    /// @notice Moves `amount` from `from` to `to` with the caller's allowance; returns nothing.
    /// @param from The owner of the tokens.
    /// @param to The recipient.
    /// @param amount The amount.
    function transferFrom(address from, address to, uint256 amount) external {
        require(allowance[from][msg.sender] >= amount, "allowance");
        allowance[from][msg.sender] -= amount;
        _move(from, to, amount);
    }

    function _move(address from, address to, uint256 amount) private {
        require(balanceOf[from] >= amount, "balance");
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}

/// @notice Receiver of the `CallbackToken` hook.
interface ITokenTransferHook {
    /// @notice Called by the token after every balance movement.
    /// @param from The debited account.
    /// @param to The credited account.
    /// @param amount The amount moved.
    function onTokenTransfer(address from, address to, uint256 amount) external;
}

/// @title CallbackToken
/// @notice ERC-777-style token that calls a hook after every transfer: the vehicle for re-entering
///         the escrow from the middle of one of its own token movements.
/// @dev The hook's revert is bubbled up verbatim, and the escrow passes it on unchanged.
contract CallbackToken is MockERC20 {
    /// @notice The contract called after every transfer (zero: no call).
    address public hook;

    constructor() MockERC20("Callback", "CALLBACK") {}

    /// @notice Sets the hook target.
    /// @param hook_ The contract to call after each transfer, or zero.
    function setHook(address hook_) external {
        hook = hook_;
    }

    /// @dev Moves the tokens, then calls the hook.
    function _move(address from, address to, uint256 amount) internal override {
        super._move(from, to, amount);
        if (hook != address(0)) ITokenTransferHook(hook).onTokenTransfer(from, to, amount);
    }
}

/// @title RawResultToken
/// @notice A token whose `transfer` / `transferFrom` can be made to revert with any bytes, or to
///         move the tokens and then return any bytes: for checking that revert data comes back
///         byte for byte and that only an ABI `true` (or nothing at all) counts as success.
contract RawResultToken is MockERC20 {
    /// @notice When set, transfers revert with exactly these bytes.
    bytes public revertData;
    /// @notice Whether transfers revert (with `revertData`, which may be empty).
    bool public reverts;
    /// @notice When `rawReturn` is set, transfers move the tokens and return exactly these bytes.
    bytes public returnData;
    /// @notice Whether transfers return `returnData` instead of the ABI-encoded `true`.
    bool public rawReturn;

    constructor() MockERC20("Raw Result", "RAW") {}

    /// @notice Makes every transfer revert with `data`.
    /// @param data The revert data (any bytes, empty included).
    function setRevert(bytes calldata data) external {
        revertData = data;
        reverts = true;
    }

    /// @notice Makes every transfer succeed and return `data`.
    /// @param data The return data (any bytes, empty included).
    function setReturn(bytes calldata data) external {
        returnData = data;
        rawReturn = true;
    }

    /// @inheritdoc MockERC20
    function transfer(address to, uint256 amount) external override returns (bool) {
        _before();
        _move(msg.sender, to, amount);
        _after();
        return true;
    }

    /// @inheritdoc MockERC20
    function transferFrom(address from, address to, uint256 amount) external override returns (bool) {
        _before();
        _spendAllowance(from, amount);
        _move(from, to, amount);
        _after();
        return true;
    }

    function _before() private view {
        if (!reverts) return;
        bytes memory data = revertData;
        assembly {
            revert(add(data, 0x20), mload(data))
        }
    }

    function _after() private view {
        if (!rawReturn) return;
        bytes memory data = returnData;
        assembly {
            return(add(data, 0x20), mload(data))
        }
    }
}
