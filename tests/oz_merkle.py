"""Builds trees with the real `@openzeppelin/merkle-tree` JS library (from node_modules), to cross-check Python."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

_SCRIPT = """
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
const trees = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = trees.map(({ values, types }) => {
  const tree = StandardMerkleTree.of(values, types);
  return { root: tree.root, proofs: values.map((_, i) => tree.getProof(i)) };
});
process.stdout.write(JSON.stringify(out));
"""


def oz_trees(trees: list[tuple[list[list[Any]], list[str]]]) -> list[dict[str, Any]]:
    """For each (values, leaf types): {"root": bytes, "proofs": [[bytes, ...] per value]} from the JS library.

    Values are given as JSON-able ABI values: hex strings for addresses, bytes32 and bytes, decimal strings
    for integers. One node process serves all trees (a node start costs ~0.1 s).
    """
    payload = json.dumps([{"values": values, "types": types} for values, types in trees])
    result = subprocess.run(
        ["node", "-e", _SCRIPT], input=payload, capture_output=True, text=True, cwd=ROOT, check=True, timeout=120
    )
    return [
        {
            "root": bytes.fromhex(tree["root"][2:]),
            "proofs": [[bytes.fromhex(node[2:]) for node in proof] for proof in tree["proofs"]],
        }
        for tree in json.loads(result.stdout)
    ]
