"""Merkle trees, leaf encodings, signed receipts and commitment ids, exactly as the contracts define them.

docs/protocol.md (sections 2 and 4) is the specification; `tests/contracts/test_crypto_agreement.py` checks that the
Solidity side computes the same bytes.
"""
from .commitments import Commitment
from .hashing import keccak256
from .leaves import TokenLeaf, WeightRow, WeightsTree, request_id, row_leaf, token_tree, vector_hash, weights_tree
from .merkle import MerkleTree, double_hash, hash_pair, process_proof, verify
from .receipts import Receipt, receipt_digest, recover_signer, sign_receipt, typed_data

__all__ = [
    "Commitment",
    "MerkleTree",
    "Receipt",
    "TokenLeaf",
    "WeightRow",
    "WeightsTree",
    "double_hash",
    "hash_pair",
    "keccak256",
    "process_proof",
    "receipt_digest",
    "recover_signer",
    "request_id",
    "row_leaf",
    "sign_receipt",
    "token_tree",
    "typed_data",
    "vector_hash",
    "verify",
    "weights_tree",
]
