// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Test harness: a contract account that forwards calls but refuses plain ETH transfers
/// @dev Testing only. It has no receive or fallback function, so a pull payment to it fails, which exercises
/// the `TransferFailed` paths of the contracts that pay out.
contract NoReceiveCaller {
    /// @notice Calls `target` with `data` and msg.value, bubbling up any revert unchanged.
    function forward(address target, bytes calldata data) external payable returns (bytes memory result) {
        bool ok;
        (ok, result) = target.call{value: msg.value}(data);
        if (!ok) {
            // Re-throw the callee's revert data as is, so that tests see its custom error.
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
    }
}
