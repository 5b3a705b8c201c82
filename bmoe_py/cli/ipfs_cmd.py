"""`bmoe ipfs`: run the embedded IPFS node and talk to any IPFS node through the Kubo RPC API."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from bmoe_py.storage.client import IpfsClient, default_api_url
from bmoe_py.storage.errors import IpfsError

log = logging.getLogger("bmoe.ipfs")

_DESCRIPTION = """\
IPFS for B-MoE. `daemon` runs an embedded IPFS node (the Kubo 0.22 engine from the kubo-python
wheel) and serves the Kubo RPC API on --api-port, so the other commands (and every B-MoE role)
work with it exactly as with a real Kubo daemon elsewhere: point --api (or BMOE_IPFS_API) at it."""

_DAEMON_DESCRIPTION = """\
Run an embedded IPFS node on the repository --repo (created on first start; pins survive
restarts) and serve the Kubo RPC API subset B-MoE uses (add, cat, pin/add, pin/ls, id, version,
swarm/connect, swarm/peers) at http://API-HOST:API-PORT/api/v0/.

The node works offline: it dials no public bootstrap peer and does no mDNS; nodes of one
deployment meet with `bmoe ipfs connect` or --bootstrap. Port 0 picks a free port; the API
address is written to REPO/api, as Kubo does. SIGINT or SIGTERM stop it cleanly."""


def register(subparsers: argparse._SubParsersAction, name: str, summary: str) -> None:
    parser = subparsers.add_parser(
        name, help=summary, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    sub = parser.add_subparsers(dest="ipfs_command", metavar="SUBCOMMAND")

    daemon = sub.add_parser(
        "daemon",
        help="run the embedded IPFS node and its RPC API",
        description=_DAEMON_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    daemon.add_argument(
        "--repo",
        type=Path,
        metavar="PATH",
        default=Path(os.environ.get("BMOE_IPFS_REPO") or Path.home() / ".bmoe" / "ipfs"),
        help="repository directory (default: $BMOE_IPFS_REPO or ~/.bmoe/ipfs)",
    )
    daemon.add_argument("--api-host", default="127.0.0.1", metavar="HOST", help="address the RPC API listens on (default: %(default)s)")
    daemon.add_argument("--api-port", type=int, default=5001, metavar="PORT", help="RPC API port, 0 for any free port (default: %(default)s)")
    daemon.add_argument("--swarm-host", default="0.0.0.0", metavar="HOST", help="address for peer connections (default: %(default)s)")
    daemon.add_argument("--swarm-port", type=int, default=4001, metavar="PORT", help="TCP port for peer connections, 0 for any (default: %(default)s)")
    daemon.add_argument(
        "--bootstrap",
        action="append",
        default=[],
        metavar="MULTIADDR",
        help="peer to connect to at start, /ip4/HOST/tcp/PORT/p2p/PEER_ID (repeatable; default: none)",
    )
    daemon.add_argument(
        "--fetch-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="longest a fetch, pin or connect may wait, whatever the request asks (default: %(default)g)",
    )
    daemon.set_defaults(func=_daemon)

    def client_command(name: str, help: str, handler: Callable[[argparse.Namespace, IpfsClient], int | None]) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        command.add_argument(
            "--api",
            default=default_api_url(),
            metavar="URL",
            help="RPC API of the node, http://HOST:PORT or /ip4/HOST/tcp/PORT (default: $BMOE_IPFS_API or %(default)s)",
        )
        command.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="deadline of the request (default: %(default)g)")
        command.set_defaults(func=lambda args: _run_client(args, handler))
        return command

    add = client_command("add", "add a file to IPFS and pin it; print its CID", _add)
    add.add_argument("file", type=Path, metavar="FILE")
    add.add_argument("-q", "--quiet", action="store_true", help="print the CID only")
    add.add_argument("--no-verify", action="store_true", help="accept a CID other than the one computed locally")

    cat = client_command("cat", "fetch a file by CID, check it hashes to that CID, write it out", _cat)
    cat.add_argument("cid", metavar="CID")
    cat.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to this file instead of standard output")
    cat.add_argument("--sha256", metavar="HEX", help="also require this sha256 of the content")
    cat.add_argument("--no-verify", action="store_true", help="do not check the content against the CID")

    pin = client_command("pin", "pin a CID on the node (it fetches the content if needed)", _pin)
    pin.add_argument("cid", metavar="CID")

    pins = client_command("pins", "list the pinned CIDs and their pin type", _pins)
    pins.add_argument("--type", default="all", choices=["all", "recursive", "indirect", "direct"], help="only pins of this type")

    client_command("id", "show the node's peer ID, addresses and agent version", _id)

    connect = client_command("connect", "connect the node to a peer", _connect)
    connect.add_argument("multiaddr", metavar="MULTIADDR", help="the peer, /ip4/HOST/tcp/PORT/p2p/PEER_ID")


# ---------------------------------------------------------------- daemon


def _daemon(args: argparse.Namespace) -> int:
    from bmoe_py.storage.kubo import KuboNode, NodeConfig
    from bmoe_py.storage.server import ApiServer, serve_in_thread, write_api_file

    node = KuboNode(
        args.repo,
        NodeConfig(swarm_host=args.swarm_host, swarm_port=args.swarm_port, bootstrap=tuple(args.bootstrap)),
    )
    try:
        node.start()
    except IpfsError as exc:
        log.error("%s", exc)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    # Installed after the engine is loaded: the Go runtime would otherwise keep SIGINT/SIGTERM.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server = ApiServer(node, args.api_host, args.api_port, fetch_timeout=args.fetch_timeout)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.api_host, args.api_port, exc)
        node.stop()
        return 1
    thread = serve_in_thread(server)
    api_file = write_api_file(server)
    log.info("RPC API server listening on %s", server.multiaddr)
    log.info("Daemon is ready: peer %s, API %s", node.peer_id, server.url)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        api_file.unlink(missing_ok=True)
        node.stop()
        log.info("daemon stopped")
    return 0


# ---------------------------------------------------------------- client commands


def _run_client(args: argparse.Namespace, handler: Callable[[argparse.Namespace, IpfsClient], int | None]) -> int:
    with IpfsClient(args.api, timeout=args.timeout) as client:
        try:
            return int(handler(args, client) or 0)
        except IpfsError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:  # the reader went away (`bmoe ipfs pins | head`): nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # and nothing to flush at exit
            return 0
        except OSError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1


def _add(args: argparse.Namespace, client: IpfsClient) -> None:
    cid = client.add_file(args.file, verify=not args.no_verify)
    print(cid if args.quiet else f"added {cid} {args.file.name}")


def _cat(args: argparse.Namespace, client: IpfsClient) -> None:
    if args.no_verify:
        data = client.cat(args.cid, timeout=args.timeout)
    else:
        data = client.fetch_verified(args.cid, expected_sha256=args.sha256, timeout=args.timeout)
    if args.output:
        args.output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _pin(args: argparse.Namespace, client: IpfsClient) -> None:
    client.pin_add(args.cid, timeout=args.timeout)
    print(f"pinned {args.cid} recursively")


def _pins(args: argparse.Namespace, client: IpfsClient) -> None:
    for cid, kind in sorted(client.pin_ls(args.type).items()):
        print(f"{cid} {kind}")


def _id(args: argparse.Namespace, client: IpfsClient) -> None:
    info = client.id()
    print(json.dumps({"ID": info.id, "Addresses": info.addresses, "AgentVersion": info.agent_version}, indent=2))


def _connect(args: argparse.Namespace, client: IpfsClient) -> None:
    client.swarm_connect(args.multiaddr, timeout=args.timeout)
    print(f"connect {args.multiaddr.rsplit('/', 1)[-1]} success")
