"""The edge node role: serve experts over HTTP with signed receipts, commit windows, get paid, answer disputes.

    from bmoe_py.edge import EdgeConfig, EdgeNode
    node = EdgeNode(EdgeConfig(model_id=1, experts=(0, 1), state_dir=Path("state")), chain, ipfs, key)
    asyncio.run(node.run(stop))

`bmoe edge` (bmoe_py/cli/edge_cmd.py) runs it as a process; docs/protocol.md 8, 8.1 and 9 are its contract.
Names are imported on first use, so that `bmoe --help` does not pay for torch and aiohttp.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "ATTACK_MODES": "attacks",
    "AttackConfig": "attacks",
    "EdgeConfig": "config",
    "EdgeNode": "node",
    "NodeSetupError": "node",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
