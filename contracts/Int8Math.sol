// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Exact int8 layer arithmetic (docs/protocol.md, section 3)
/// @notice The on-chain twin of `bmoe_py.model.int8_ref`: int8 weights and activations (one two's-complement byte
/// per element), int32 bias, exact accumulation, and the requantisation
/// `y = clamp(relu?((acc * M + 2^(s-1)) >> s), -128, 127)`. The fraud proof recomputes one output row with it, so it
/// must agree with the reference bit for bit.
library Int8Math {
    /// @notice The longest row (layer inDim) the protocol allows; the dot product below is exact up to it.
    uint256 internal constant MAX_ROW_LENGTH = 4096;

    error LengthMismatch(uint256 weightsLength, uint256 inputLength);
    error RowTooLong(uint256 length, uint256 maxLength);

    /// @notice `clamp(relu?((acc * multiplier + 2^(shift-1)) >> shift), -128, 127)`.
    /// @dev The protocol's domain is 1 <= multiplier < 2^31 and shift <= 62 (the registry enforces it); there every
    /// intermediate value fits in int64, as in the reference. The arithmetic here is checked int256, so values outside
    /// that domain can only revert, never wrap. Solidity's `>>` on a signed integer is an arithmetic shift that rounds
    /// toward negative infinity (`sar`), which is the floor division the protocol requires.
    function requantize(int256 acc, int64 multiplier, uint8 shift, bool relu) internal pure returns (int8) {
        int256 q = acc * multiplier;
        if (shift > 0) q += int256(1) << (shift - 1);
        q >>= shift;
        if (relu && q < 0) return 0;
        if (q > type(int8).max) return type(int8).max;
        if (q < type(int8).min) return type(int8).min;
        return int8(q);
    }

    /// @notice One output row: `requantize(bias + dot(weights, x), multiplier, shift, relu)`.
    function rowOutput(
        bytes calldata weights,
        bytes calldata x,
        int32 bias,
        int64 multiplier,
        uint8 shift,
        bool relu
    ) internal pure returns (int8) {
        return requantize(int256(bias) + dot(weights, x), multiplier, shift, relu);
    }

    /// @notice The exact dot product of two int8 vectors of equal length (at most MAX_ROW_LENGTH).
    /// @dev Why the assembly: an element-by-element loop (`signextend(0, byte(i, word))` for each operand, a mul
    /// and an add) costs 40-50 gas per multiply-accumulate even unrolled, because every element needs its own byte
    /// extraction and sign extension. This instead handles 32 elements per pair of calldata words with four 256-bit
    /// multiplications ("SWAR": each 256-bit word is read as eight 32-bit lanes, i.e. a polynomial in z = 2^32):
    ///
    /// 1. Lanes: `(word >> 8r) & 0x000000ff..000000ff` (r = 0..3) puts the bytes at positions `4L + r` (counted from the
    ///    least significant byte) into lanes L = 0..7. Signed values come from xor-ing the word with 0x80..80 first and
    ///    subtracting 128 from every lane: `(b ^ 0x80) - 128` is the two's-complement value of byte b. The subtraction
    ///    borrows across lanes, which is harmless: the word is still exactly `sum_L s_L z^L` modulo 2^256.
    /// 2. Reversal: the x word is first reversed by 32-bit group (three swap stages), so its lane L holds the element
    ///    that the weight word has in lane 7 - L. The coefficient of z^7 in the product of the two words is then
    ///    `sum_L w_L x_L`: eight multiply-accumulates of matching elements in one `mul`. Coefficients of z^8 and up are
    ///    multiples of 2^256 and vanish, since `mul` is exact modulo 2^256.
    /// 3. Reading the result: the products of all words are summed. Every coefficient c_k is a sum of at most
    ///    4096 products of magnitude <= 2^14, so |c_k| <= 2^26. The top lane is c_7 (the dot product) plus the floor of
    ///    `(sum_(k<7) c_k z^k) / 2^224`, whose magnitude is < 2^219: adding 2^223 before the arithmetic shift by 224
    ///    makes that floor zero, and `sar` returns c_7 with its sign.
    /// The last, partial word is masked to its length, so its padding bytes are zeros and contribute nothing.
    /// About 12 gas per element.
    function dot(bytes calldata weights, bytes calldata x) internal pure returns (int256) {
        if (x.length != weights.length) revert LengthMismatch(weights.length, x.length);
        if (weights.length > MAX_ROW_LENGTH) revert RowTooLong(weights.length, MAX_ROW_LENGTH);
        uint256 weightsOffset;
        uint256 xOffset;
        assembly ("memory-safe") {
            weightsOffset := weights.offset
            xOffset := x.offset
        }
        return _dot(weightsOffset, xOffset, weights.length);
    }

    /// @dev The loop of `dot` on raw calldata offsets (a separate frame keeps the stack shallow).
    function _dot(uint256 weightsOffset, uint256 xOffset, uint256 n) private pure returns (int256 result) {
        assembly ("memory-safe") {
            // Used eight times per word each: kept on the stack rather than pushed (or code-copied) every time.
            let lanes := 0x000000ff000000ff000000ff000000ff000000ff000000ff000000ff000000ff
            let offsets := 0x0000008000000080000000800000008000000080000000800000008000000080
            let acc := 0
            for { let i := 0 } lt(i, n) { i := add(i, 32) } {
                let w := calldataload(add(weightsOffset, i))
                let v := calldataload(add(xOffset, i))
                if gt(add(i, 32), n) {
                    // The last, partial word: calldataload read past the vectors; keep only their bytes.
                    let mask := not(shr(shl(3, sub(n, i)), not(0)))
                    w := and(w, mask)
                    v := and(v, mask)
                }
                w := xor(w, 0x8080808080808080808080808080808080808080808080808080808080808080)
                v := xor(v, 0x8080808080808080808080808080808080808080808080808080808080808080)
                // Reverse the order of v's eight 32-bit groups: swap halves, then quarters, then eighths.
                v := or(shl(128, v), shr(128, v))
                v := or(
                    shl(64, and(v, 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff)),
                    and(shr(64, v), 0x0000000000000000ffffffffffffffff0000000000000000ffffffffffffffff)
                )
                v := or(
                    shl(32, and(v, 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff)),
                    and(shr(32, v), 0x00000000ffffffff00000000ffffffff00000000ffffffff00000000ffffffff)
                )
                // Lane groups r = 0..3 (bytes 4L + r), signed, multiplied pairwise.
                acc := add(
                    acc,
                    add(
                        add(
                            mul(sub(and(w, lanes), offsets), sub(and(v, lanes), offsets)),
                            mul(sub(and(shr(8, w), lanes), offsets), sub(and(shr(8, v), lanes), offsets))
                        ),
                        add(
                            mul(sub(and(shr(16, w), lanes), offsets), sub(and(shr(16, v), lanes), offsets)),
                            mul(sub(and(shr(24, w), lanes), offsets), sub(and(shr(24, v), lanes), offsets))
                        )
                    )
                )
            }
            result := sar(224, add(acc, shl(223, 1)))
        }
    }
}
