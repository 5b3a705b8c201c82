// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Int8Math} from "../Int8Math.sol";

/// @title Test harness exposing Int8Math (tests only, never deployed to a live network)
/// @notice Single calls for edge cases, batch calls so that thousands of random vectors are checked in a few eth_calls,
/// and a gas probe that measures the dot product alone.
contract Int8MathHarness {
    error BadBatch();

    /// @notice Int8Math.requantize.
    function requantize(int256 acc, int64 multiplier, uint8 shift, bool relu) external pure returns (int8) {
        return Int8Math.requantize(acc, multiplier, shift, relu);
    }

    /// @notice Int8Math.dot.
    function dot(bytes calldata weights, bytes calldata x) external pure returns (int256) {
        return Int8Math.dot(weights, x);
    }

    /// @notice Int8Math.rowOutput.
    function rowOutput(
        bytes calldata weights,
        bytes calldata x,
        int32 bias,
        int64 multiplier,
        uint8 shift,
        bool relu
    ) external pure returns (int8) {
        return Int8Math.rowOutput(weights, x, bias, multiplier, shift, relu);
    }

    /// @notice Requantises many accumulators with one parameter set.
    function requantizeBatch(int256[] calldata acc, int64 multiplier, uint8 shift, bool relu)
        external
        pure
        returns (int8[] memory out)
    {
        out = new int8[](acc.length);
        for (uint256 i; i < acc.length; ++i) {
            out[i] = Int8Math.requantize(acc[i], multiplier, shift, relu);
        }
    }

    /// @notice Dot products of `weights[k*n:(k+1)*n]` and `xs[k*n:(k+1)*n]` for every k.
    function dotBatch(bytes calldata weights, bytes calldata xs, uint256 n) external pure returns (int256[] memory out) {
        if (n == 0 || weights.length != xs.length || weights.length % n != 0) revert BadBatch();
        out = new int256[](weights.length / n);
        for (uint256 k; k < out.length; ++k) {
            out[k] = Int8Math.dot(weights[k * n:(k + 1) * n], xs[k * n:(k + 1) * n]);
        }
    }

    /// @notice A whole layer: row-major weights [outDim][inDim], one bias per row, input x of length inDim.
    /// @return out the layer's int8 output, one byte per row
    function layer(
        bytes calldata weights,
        int32[] calldata bias,
        bytes calldata x,
        int64 multiplier,
        uint8 shift,
        bool relu
    ) external pure returns (bytes memory out) {
        return _layerBatch(weights, bias, x, Requant(x.length, multiplier, shift, relu));
    }

    /// @notice One layer applied to many inputs: `xs` holds the inputs back to back (inDim bytes each).
    /// @return out the outputs back to back (outDim bytes each)
    function layerBatch(
        bytes calldata weights,
        int32[] calldata bias,
        bytes calldata xs,
        uint256 inDim,
        int64 multiplier,
        uint8 shift,
        bool relu
    ) external pure returns (bytes memory out) {
        return _layerBatch(weights, bias, xs, Requant(inDim, multiplier, shift, relu));
    }

    /// @notice The dot product and the gas it took, measured around the library call alone (no calldata or call
    /// overhead), for the gas-per-multiply-accumulate figure.
    function dotGas(bytes calldata weights, bytes calldata x) external view returns (int256 result, uint256 gasUsed) {
        uint256 before = gasleft();
        result = Int8Math.dot(weights, x);
        gasUsed = before - gasleft();
    }

    /// @dev A layer's input length and requantisation, bundled to keep the batch loops' stacks shallow.
    struct Requant {
        uint256 inDim;
        int64 multiplier;
        uint8 shift;
        bool relu;
    }

    function _layerBatch(bytes calldata weights, int32[] calldata bias, bytes calldata xs, Requant memory q)
        private
        pure
        returns (bytes memory out)
    {
        if (q.inDim == 0 || xs.length % q.inDim != 0 || weights.length != bias.length * q.inDim) revert BadBatch();
        out = new bytes((xs.length / q.inDim) * bias.length);
        for (uint256 k; k < xs.length / q.inDim; ++k) {
            bytes calldata x = xs[k * q.inDim:(k + 1) * q.inDim];
            for (uint256 r; r < bias.length; ++r) {
                out[k * bias.length + r] = bytes1(uint8(_row(weights, r, x, bias[r], q)));
            }
        }
    }

    function _row(bytes calldata weights, uint256 r, bytes calldata x, int32 bias, Requant memory q)
        private
        pure
        returns (int8)
    {
        bytes calldata row = weights[r * x.length:(r + 1) * x.length];
        return Int8Math.rowOutput(row, x, bias, q.multiplier, q.shift, q.relu);
    }
}
