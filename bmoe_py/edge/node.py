"""The edge node: wires the store, the experts, the HTTP API and the background duties together.

    node = EdgeNode(config, chain, ipfs, key)
    asyncio.run(node.run(stop_event))

Start: open the state, bind the HTTP port (503 until ready), stake, load and verify the experts, register as their
host at the endpoint, write the ready file. Then serve, and every `poll_seconds` run each duty (windows and
commits, finalize and claim, dispute responses, interrupted training finishes) in a worker thread. A duty that
fails (chain or IPFS unreachable, a transaction refused) is logged and tried again on the next round: it never stops
the node.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from aiohttp import web

from ..publisher.records import read_model
from .attacks import Attacker
from .committer import Committer
from .config import EdgeConfig
from .disputes import DisputeResponder
from .enrollment import ensure_hosting, ensure_stake
from .executor import load_executor, pick_device
from .payments import Payments
from .service import EdgeService, build_app
from .signer import ReceiptSigner
from .store import EdgeStore
from .trainer import Trainer

if TYPE_CHECKING:
    from ..chain.client import Chain
    from ..storage.client import IpfsClient

__all__ = ["EdgeNode", "NodeSetupError"]

log = logging.getLogger("bmoe.edge")


class NodeSetupError(Exception):
    """The node cannot start (unknown model or expert, no CUDA although asked for, ...)."""


class EdgeNode:
    def __init__(self, config: EdgeConfig, chain: Chain, ipfs: IpfsClient, key: str) -> None:
        self.config, self.chain, self.ipfs = config, chain, ipfs
        self.store = EdgeStore(config.state_dir / "edge.sqlite3")
        self._claim_state_dir()
        signer = ReceiptSigner(key, chain.chain_id, chain.ledger.address)
        self.service = EdgeService(chain, signer, config.model_id, self.store, Attacker(config.attack))
        self.url: str | None = None

    def _claim_state_dir(self) -> None:
        """A state dir belongs to one node and model: its requests are signed by that key, its windows for that model."""
        owner = {"node": self.chain.address, "model": str(self.config.model_id), "chain": str(self.chain.chain_id)}
        for key, value in owner.items():
            recorded = self.store.get_meta(key)
            if recorded is None:
                self.store.set_meta(key, value)
            elif recorded != value:
                self.store.close()
                raise NodeSetupError(f"{self.config.state_dir} holds the state of {key} {recorded}, not {value}: "
                                     "use another --state-dir")  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        runner = web.AppRunner(build_app(self.service), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, config.host, config.port)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # the real port of --port 0
            self.url = config.public_url or f"http://{config.host}:{port}"
            duties = await asyncio.to_thread(self._prepare)
            self._announce()
            loops = [asyncio.create_task(self._loop(name, duty)) for name, duty in duties]
            await stop.wait()
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        finally:
            await runner.cleanup()
            self.store.close()
            if self.service.ready:
                log.info("edge node %s stopped", self.chain.address)

    def _prepare(self) -> list[tuple[str, Callable[[], None]]]:
        """Everything before serving: stake, experts, registration. Returns the duties to run periodically."""
        from ..chain.client import TransactionReverted

        config, chain = self.config, self.chain
        try:
            model = read_model(chain, config.model_id, experts=False)
        except TransactionReverted as exc:
            raise NodeSetupError(f"chain {chain.chain_id} has no model {config.model_id} ({exc})") from None
        unknown = [e for e in config.experts if e >= model.expert_count]
        if unknown:
            raise NodeSetupError(f"model {config.model_id} has {model.expert_count} experts, there is no expert {unknown}")
        try:
            device = pick_device(config.device)
        except RuntimeError as exc:
            raise NodeSetupError(str(exc)) from None
        if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
            # Forward calls already run in parallel worker threads; intra-op threads on top of them only spin and
            # contend, above all when several nodes, anvil and IPFS share a small machine. OMP_NUM_THREADS overrides.
            torch.set_num_threads(1)
        disputes = DisputeResponder(chain, self.store, self.service.executors, config.model_id)
        ensure_stake(chain, model.min_node_stake, config.stake)
        for index in config.experts:
            executor = load_executor(chain, self.ipfs, config.model_id, model.mode, index, device)
            self.service.executors[index] = executor
            log.info("expert %d version %d verified and loaded on %s (%d -> %d, %s)", index, executor.version, device,
                     executor.in_dim, executor.out_dim, "exact int8" if executor.exact else "float")  # fmt: skip
        assert self.url is not None
        ensure_hosting(chain, config.model_id, config.experts, self.url)
        committer = Committer(chain, self.ipfs, self.store, config.model_id, config.window_seconds, config.window_tokens)
        payments = Payments(chain, self.store, model.challenge_window)
        trainer = Trainer(chain, self.ipfs, self.store, self.service, model.mode)
        self.service.trainer = trainer
        return [("windows", committer.tick), ("payments", payments.tick), ("disputes", disputes.tick),
                ("training", trainer.tick)]  # fmt: skip

    def _announce(self) -> None:
        config = self.config
        self.service.ready = True
        if config.ready_file:
            info = {"url": self.url, "node": self.chain.address, "pid": os.getpid()}
            tmp = config.ready_file.with_name(config.ready_file.name + ".tmp")
            tmp.write_text(json.dumps(info))
            tmp.replace(config.ready_file)  # atomic: a reader never sees half a file
        if config.attack.enabled:
            a = config.attack
            log.warning("ATTACK MODE %s: strength %g, fraction %g, seed %d (experiments only)", a.mode, a.strength,
                        a.fraction, a.seed)  # fmt: skip
        log.info("edge node %s ready at %s serving model %d experts %s", self.chain.address, self.url,
                 config.model_id, list(config.experts))  # fmt: skip

    async def _loop(self, name: str, duty: Callable[[], None]) -> None:
        failures = 0
        while True:
            try:
                await asyncio.to_thread(duty)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a duty must never stop the node: log, back off, try again
                failures += 1
                message = " ".join(str(exc).split())[:500]  # one line, whatever a server put in its error page
                log.error("%s duty failed (%d in a row), retrying: %s: %s", name, failures, type(exc).__name__, message)
            await asyncio.sleep(self.config.poll_seconds * min(2 ** failures, 20))
