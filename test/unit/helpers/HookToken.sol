// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "solady/tokens/ERC20.sol";

/// @notice An ERC-20 that, once armed, makes one call to `hookTarget` with `hookData` from inside
///         its next transfer and records the outcome instead of reverting (a transfer failure would be
///         replaced by the hook's own revert data). Used to probe re-entrancy from token callbacks.
contract HookToken is ERC20 {
    address public hookTarget;
    bytes public hookData;
    bool public armed;
    bool public hookCalled;
    bool public hookSuccess;
    bytes public hookReturnData;

    function name() public pure override returns (string memory) {
        return "Hook Token";
    }

    function symbol() public pure override returns (string memory) {
        return "HOOK";
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target, bytes calldata data) external {
        hookTarget = target;
        hookData = data;
        armed = true;
    }

    function _beforeTokenTransfer(address from, address, uint256) internal override {
        if (!armed || from == address(0)) return;
        armed = false;
        hookCalled = true;
        (hookSuccess, hookReturnData) = hookTarget.call(hookData);
    }
}
