"""Which edge nodes may serve each expert, as the chain says, kept current while a task runs.

The registry is the only source of hosts (`hosts`, `endpointOf`, `isActiveHost`): a node whose stake fell below
the model's minimum (slashed or unbonded) is no longer active and is dropped at the next refresh. `Slashed`,
`UnbondRequested`, `Deposited` and host (un)registration events force that refresh before the next batch, so a node proven to
cheat, by this publisher or by a validator, gets no further call from it. Besides
the chain's view, the publisher keeps two local ones: hosts it caught lying itself (evicted for the session) and
hosts that failed a call or a health check (skipped for `down_for` seconds, then tried again).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from .remote import HostClient, HostError

if TYPE_CHECKING:
    from ..chain.client import Chain

__all__ = ["ExpertUnavailable", "HostDirectory"]

log = logging.getLogger("bmoe.publisher.hosts")


class ExpertUnavailable(RuntimeError):
    """No host of `expert` could answer; `tried` maps each host tried to why it failed."""

    def __init__(self, expert: int, tried: dict[str, str]) -> None:
        self.expert = expert
        self.tried = dict(tried)
        detail = "; ".join(f"{host}: {why}" for host, why in tried.items()) or "the registry lists no active host"
        super().__init__(f"expert {expert} is unavailable ({detail})")


@dataclass
class _Entry:
    client: HostClient
    checked: bool = False  # health checked since it was (re)discovered
    down_until: float = 0.0


class HostDirectory:
    """Active, healthy hosts of a model's experts. Thread-safe."""

    def __init__(
        self,
        chain: Chain,
        model_id: int,
        experts: Iterable[int],
        *,
        call_timeout: float = 10.0,
        refresh_interval: float = 30.0,
        down_for: float = 5.0,
    ) -> None:
        self.chain = chain
        self.model_id = model_id
        self.experts = list(experts)
        self.call_timeout = call_timeout
        self.refresh_interval = refresh_interval
        self.down_for = down_for
        self.evicted: dict[str, str] = {}  # address -> why, for the rest of the session
        self._session = requests.Session()
        # Connection reuse to every host from every worker thread (the default pool keeps 10 per host).
        adapter = requests.adapters.HTTPAdapter(pool_connections=64, pool_maxsize=64)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._entries: dict[int, dict[str, _Entry]] = {e: {} for e in self.experts}
        self._lock = threading.Lock()
        self._refreshed_at = float("-inf")
        self._last_block = chain.w3.eth.block_number
        self._watched = {  # topic0 -> event, of every event that can change who may serve an expert
            bytes.fromhex(event().topic.removeprefix("0x")): event()
            for event in (chain.staking.events.Slashed, chain.staking.events.UnbondRequested,
                          chain.staking.events.Deposited, chain.registry.events.HostRegistered,
                          chain.registry.events.HostUnregistered)
        }  # fmt: skip
        self._rotation = 0

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ chain view

    def refresh(self, force: bool = False) -> None:
        """Re-reads the hosts of every expert from the registry (at most every `refresh_interval` s unless forced)."""
        self._watch_events()
        if not force and time.monotonic() - self._refreshed_at < self.refresh_interval:
            return
        registry = self.chain.registry
        found: dict[int, dict[str, str]] = {}
        for expert in self.experts:
            found[expert] = {}
            for address in self.chain.call(registry.functions.hosts(self.model_id, expert)):
                if not self.chain.call(registry.functions.isActiveHost(self.model_id, expert, address)):
                    continue
                found[expert][address] = self.chain.call(registry.functions.endpointOf(self.model_id, expert, address))
        with self._lock:
            for expert, hosts in found.items():
                old = self._entries[expert]
                self._entries[expert] = {
                    address: old[address] if address in old and old[address].client.url == url.rstrip("/")
                    else _Entry(HostClient(address, url, self._session, self.call_timeout))
                    for address, url in hosts.items()
                }  # fmt: skip
            self._refreshed_at = time.monotonic()

    def _watch_events(self) -> None:
        """Evicts every node slashed since the last look, and forces a refresh when a host may have changed
        (slashed, unbonding, staking again, host registered or unregistered), before the next call is routed.

        One `eth_getLogs` over both contracts and all five events: this runs before every batch.
        """
        head = self.chain.w3.eth.block_number
        if head <= self._last_block:
            return
        logs = self.chain.w3.eth.get_logs({
            "fromBlock": self._last_block + 1, "toBlock": head,
            "address": [self.chain.staking.address, self.chain.registry.address],
            "topics": [["0x" + topic.hex() for topic in self._watched]],
        })  # fmt: skip
        self._last_block = head
        changed = False
        for raw in logs:
            event = self._watched[bytes(raw["topics"][0])].process_log(raw)
            args = event["args"]
            if event["event"] == "Slashed":
                self.evict(args["account"], f"slashed {args['amount']} wei on chain")
            if event["event"] not in ("HostRegistered", "HostUnregistered") or args["modelId"] == self.model_id:
                changed = True
        if changed:
            self._refreshed_at = float("-inf")

    # ------------------------------------------------------------------ routing

    def evict(self, address: str, reason: str) -> None:
        """Never route to `address` again in this session."""
        with self._lock:
            if address not in self.evicted:
                log.warning("evicting host %s: %s", address, reason)
                self.evicted[address] = reason

    def mark_down(self, address: str) -> None:
        """`address` failed a call: skip it for `down_for` seconds."""
        with self._lock:
            for hosts in self._entries.values():
                if address in hosts:
                    hosts[address].down_until = time.monotonic() + self.down_for

    def candidates(self, expert: int) -> list[HostClient]:
        """The hosts of `expert` to try, in order: healthy ones first, rotated to spread load; down ones last."""
        with self._lock:
            entries = [e for a, e in self._entries[expert].items() if a not in self.evicted]
            self._rotation += 1
            rotation = self._rotation
        for entry in entries:  # first sight of a host: make sure it is up and is who the registry says
            if entry.checked or entry.down_until > time.monotonic():
                continue
            try:
                entry.client.health()
                entry.checked = True
            except HostError as exc:
                log.info("host %s of expert %d not healthy: %s", entry.client.address, expert, exc.reason)
                entry.down_until = time.monotonic() + self.down_for
        now = time.monotonic()
        up = [e.client for e in entries if e.down_until <= now and e.checked]
        down = [e.client for e in entries if e.down_until > now or not e.checked]
        if up:
            shift = rotation % len(up)
            up = up[shift:] + up[:shift]
        return up + down

    def hosts_of(self, expert: int) -> list[str]:
        """Addresses of the active, non-evicted hosts of `expert` (for reports and tests)."""
        with self._lock:
            return [a for a in self._entries[expert] if a not in self.evicted]
