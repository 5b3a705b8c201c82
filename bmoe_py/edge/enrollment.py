"""Joining the network on chain: enough stake for the model, and a host registration with this node's endpoint for
every expert it serves. Idempotent, so a restarted node only sends what changed."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._tx import tx_hash

if TYPE_CHECKING:
    from ..chain.client import Chain

__all__ = ["ensure_hosting", "ensure_stake"]

log = logging.getLogger("bmoe.edge")
ETHER = 10**18


def ensure_stake(chain: Chain, min_stake: int, wanted: int | None) -> int:
    """Deposits what is missing for max(wanted, min_stake) of active stake; the active stake after."""
    target = max(wanted or 0, min_stake)
    staked = int(chain.call(chain.staking.functions.stakeOf(chain.address)))
    if staked < target:
        receipt = chain.send(chain.staking.functions.deposit(), value=target - staked)
        log.info("staked %s ETH (now %s ETH, the model needs %s ETH), tx %s", _eth(target - staked), _eth(target),
                 _eth(min_stake), tx_hash(receipt))  # fmt: skip
        staked = target
    else:
        log.info("stake of %s ETH covers the model's minimum of %s ETH", _eth(staked), _eth(min_stake))
    return staked


def ensure_hosting(chain: Chain, model_id: int, experts: tuple[int, ...], url: str) -> None:
    """Registers this node as host of each expert at `url` (re-registering where another endpoint is recorded)."""
    registry = chain.registry
    for expert in experts:
        if chain.call(registry.functions.isHost(model_id, expert, chain.address)):
            endpoint = chain.call(registry.functions.endpointOf(model_id, expert, chain.address))
            if endpoint == url:
                continue
            chain.send(registry.functions.unregisterHost(model_id, expert))
            log.info("expert %d: unregistered the old endpoint %s", expert, endpoint)
        receipt = chain.send(registry.functions.registerHost(model_id, expert, url))
        log.info("registered as host of model %d expert %d at %s, tx %s", model_id, expert, url,
                 tx_hash(receipt))  # fmt: skip


def _eth(wei: int) -> str:
    return f"{wei / ETHER:g}"
