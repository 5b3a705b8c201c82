// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title Test harness exposing OpenZeppelin's MerkleProof and the weight-row leaf, to check Python against Solidity
/// @dev Testing only; never deployed by the deployment scripts.
contract MerkleHarness {
    /// @notice Whether `proof` places `leaf` under `root` (sorted-pair hashing).
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice The root that `proof` leads to from `leaf`.
    function processProof(bytes32[] calldata proof, bytes32 leaf) external pure returns (bytes32) {
        return MerkleProof.processProofCalldata(proof, leaf);
    }

    /// @notice The leaf of one weight row (docs/protocol.md 2.2), as the fraud proof must compute it.
    function rowLeaf(uint32 layer, uint32 row, int32 bias, bytes calldata weights) external pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(layer, row, bias, weights))));
    }
}
