// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {AuthCaptureEscrow} from "../../contracts/AuthCaptureEscrow.sol";

/// @dev Bit width of PaymentInfo field `field` (0..11) inside its ABI word.
function paymentInfoFieldWidth(uint256 field) pure returns (uint256) {
    if (field == 11) return 256; // salt
    if (field == 4) return 120; // maxAmount
    if (field >= 5 && field <= 7) return 48; // expiries
    if (field == 8 || field == 9) return 16; // fee bounds
    return 160; // addresses
}

/// @dev `info` with bit `bitSeed % width` of field `field` (0..11) flipped, inside the field's
///      width: a different, still cleanly encoded, payment.
function flipPaymentInfoBit(AuthCaptureEscrow.PaymentInfo memory info, uint256 field, uint256 bitSeed)
    pure
    returns (AuthCaptureEscrow.PaymentInfo memory)
{
    bytes memory encoded = abi.encode(info);
    uint256 flip = 1 << (bitSeed % paymentInfoFieldWidth(field));
    assembly {
        let p := add(add(encoded, 0x20), mul(field, 0x20))
        mstore(p, xor(mload(p), flip))
    }
    return abi.decode(encoded, (AuthCaptureEscrow.PaymentInfo));
}
