"""Throughput of the distributed path against the same model in one process (docs/benchmarks.md).

    python -m bmoe_py.experiments.runtime_benchmark [--samples 2000] [--batch-tokens 1024]

Brings up a local network (anvil, the suite, the embedded IPFS node, honest `bmoe edge` processes hosting every
expert, a `bmoe validator` for the optimistic policy) and publishes two models of MNIST-1D's shape (8 experts, top-2,
9 tokens per sample): "small", trained, with the demo's 32-64-32 experts, whose expert work is microseconds per
token so that the per-call cost of the network path shows; and "wide", untrained, with 1024-4096-1024 experts, where
expert work dominates as in a real deployment. For each it measures, at batches of about `--batch-tokens` tokens:

- in process: the gate and the exact int8 experts (loaded from the chain and IPFS, verified) in this process;
- distributed: the publisher runtime (`InferenceSession`) routing every expert call over HTTP to the edge nodes,
  under `none`, `optimistic:P` and `redundant:3`, each on a fresh task.

Tokens per second count model tokens (sample patches) end to end, gate included; latency is per expert call
(one HTTP request to one host). Everything runs on this machine, so the edge nodes, the validator, anvil and the
IPFS node share its cores with the publisher: the ratio is a lower bound for a real deployment where the experts run
elsewhere. Results go to results/runtime_benchmark.json and docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from .localnet import PUBLISHER_KEY, LocalNetwork

ROOT = Path(__file__).resolve().parents[2]
ETHER = 10**18


def in_process_throughput(chain, ipfs, model_id: int, x: torch.Tensor, batch: int, repeats: int = 3) -> dict:
    """Tokens/s of the gate + exact experts in this process, the best of `repeats` passes (warm caches)."""
    from ..publisher.fetch import load_exact_model_from_chain

    model = load_exact_model_from_chain(chain, ipfs, model_id)
    config = model.model.config
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(x), batch):
            model(x[i : i + batch])
        best = min(best, time.perf_counter() - started)
    tokens = len(x) * config.num_tokens
    return {"tokens": tokens, "seconds": best, "tokens_per_s": tokens / best}


def distributed_throughput(chain, ipfs, model_id: int, policy: str, x, y, batch: int) -> dict:
    from ..publisher.runtime import InferenceSession, Policy

    session = InferenceSession(chain, ipfs, model_id, Policy.parse(policy), price_per_token=10**9, escrow=ETHER // 10)
    try:
        session.run(x[:batch], None if y is None else y[:batch], batch_size=batch)  # warm-up: connections, host discovery
        report = session.run(x, y, batch_size=batch).to_dict()
    finally:
        session.close()
    return report


def publish_wide_model(chain, ipfs, d_model: int, d_hidden: int, seed: int = 0) -> int:
    """An untrained MNIST-1D-shaped MoE with wide experts (d_model-d_hidden-d_model), quantised and published.

    Throughput does not depend on what the weights learned, and training experts this wide on 2 CPU cores would
    take longer than the whole benchmark; its accuracy is therefore not reported.
    """
    from ..model.moe import MoEConfig, MoEModel
    from ..model.quantize import quantize_model
    from ..publisher.prepare import model_files
    from ..publisher.publish import PublishParams, publish_model

    torch.manual_seed(seed)
    config = MoEConfig(input_dim=40, num_classes=10, patch_size=8, patch_stride=4, d_model=d_model, d_hidden=d_hidden, num_experts=8, k=2)
    model = MoEModel(config).eval()
    files = model_files(model, quantize_model(model, torch.randn(256, 40)))
    return publish_model(chain, ipfs, files, PublishParams(challenge_window=120)).model_id


def measure(net, chain, ipfs, model_id: int, experts: list[int], x, y, args, name: str) -> dict:
    """In-process and distributed throughput of one published model; its edge nodes are stopped at the end."""
    tokens_per_sample = (40 - 8) // 4 + 1
    batch = max(1, args.batch_tokens // tokens_per_sample)
    nodes = [net.start_edge(f"bench-{name}-edge-{i}", model_id, experts) for i in range(args.nodes)]
    print(f"[{name}] {len(x)} samples in batches of {batch} samples = {batch * tokens_per_sample} tokens", flush=True)
    # In process the model has the machine to itself, as a publisher running it alone would.
    torch.set_num_threads(_cpus())
    local = in_process_throughput(chain, ipfs, model_id, x, batch)
    torch.set_num_threads(1)  # the publisher's share once the experts run in the nodes' processes
    print(f"[{name}] in process: {local['tokens_per_s']:,.0f} tokens/s", flush=True)
    rows = []
    for policy in ("none", f"optimistic:{args.optimistic_rate:g}", "redundant:3"):
        validator = None
        if policy.startswith("optimistic"):
            validator = net.start_validator(f"bench-{name}-validator", model_id, extra=["--sample-rate", f"{args.optimistic_rate:g}"])
        report = distributed_throughput(chain, ipfs, model_id, policy, x, y, batch)
        if validator:
            net.stop(validator)
        row = {
            "policy": policy,
            "tokens_per_s": report["tokens_per_s"],
            "ratio": report["tokens_per_s"] / local["tokens_per_s"],
            "p50_ms": report.get("latency_p50_ms"),
            "p99_ms": report.get("latency_p99_ms"),
            "calls": sum(report.get("calls_per_host", {}).values()),
            "accuracy": report.get("accuracy"),
        }
        rows.append(row)
        print(f"[{name}] {policy}: {row['tokens_per_s']:,.0f} tokens/s ({row['ratio']:.2f} of in-process), "
              f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms", flush=True)  # fmt: skip
    for node in nodes:
        net.stop(node)
    return {"samples": len(x), "batch_samples": batch, "batch_tokens": batch * tokens_per_sample, "in_process": local, "distributed": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000, help="test samples, small model (default: %(default)s)")
    parser.add_argument("--wide-samples", type=int, default=256, help="test samples, wide model (default: %(default)s)")
    parser.add_argument("--batch-tokens", type=int, default=1024, help="tokens per batch (default: %(default)s)")
    parser.add_argument("--nodes", type=int, default=3, help="honest edge nodes (default: %(default)s)")
    parser.add_argument("--optimistic-rate", type=float, default=0.1, help="P of optimistic:P (default: %(default)s)")
    parser.add_argument("--models", default="small,wide", help="which models to measure (default: %(default)s)")
    parser.add_argument("--ipfs-port", type=int, default=5002)
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "runtime_benchmark.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)

    from ..chain.client import connect
    from ..model.data import load_dataset
    from ..storage.client import IpfsClient

    wanted = {m.strip() for m in args.models.split(",")}
    sections: dict[str, dict] = {}
    with LocalNetwork(ROOT / ".bmoe" / "bench", ipfs_port=args.ipfs_port) as net:
        net.start_chain()
        net.deploy()
        net.start_ipfs()
        chain = connect(net.rpc_url, PUBLISHER_KEY)
        ipfs = IpfsClient(net.ipfs_api, timeout=120)
        data = load_dataset("mnist1d")
        if "small" in wanted:
            published = net.publish_model(
                ["--dataset", "mnist1d", "--epochs", "6", "--experts", "8", "--patch-size", "8", "--patch-stride", "4",
                 "--challenge-window", "120"]
            )  # fmt: skip
            experts = [e["index"] for e in published["experts"]]
            x, y = data.x_test[: args.samples], data.y_test[: args.samples]
            sections["small"] = measure(net, chain, ipfs, published["model_id"], experts, x, y, args, "small")
            sections["small"]["model"] = "trained MNIST-1D MoE, 8 experts of 32-64-32 (exact int8), top-2, 9 tokens per sample"
        if "wide" in wanted:
            model_id = publish_wide_model(chain, ipfs, 1024, 4096)
            x = data.x_test[: args.wide_samples]
            sections["wide"] = measure(net, chain, ipfs, model_id, list(range(8)), x, None, args, "wide")
            sections["wide"]["model"] = "untrained MNIST-1D-shaped MoE, 8 experts of 1024-4096-1024 (exact int8), top-2, 9 tokens per sample"
        ipfs.close()

    result = {
        "setting": {
            "edge_nodes": args.nodes, "optimistic_rate": args.optimistic_rate,
            "machine": f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}, torch {torch.__version__}",
        },  # fmt: skip
        **sections,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    args.markdown.write_text(_markdown(result))
    print(f"wrote {args.json} and {args.markdown}")
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _markdown(result: dict) -> str:
    s = result["setting"]
    lines = [
        "# Runtime benchmark: the distributed path against one process",
        "",
        "Measured by `python -m bmoe_py.experiments.runtime_benchmark` (numbers in results/runtime_benchmark.json).",
        f"{s['edge_nodes']} honest `bmoe edge` processes on loopback, each hosting every expert; one `bmoe validator` "
        f"sampling {s['optimistic_rate']:.0%} of every commitment during the optimistic run. Machine: {s['machine']}; every",
        "process (edge nodes, validator, anvil, IPFS node, publisher) shares these cores. In process, the gate and the",
        "exact experts run in the publisher's process with all cores; distributed, the publisher runs the gate on one",
        "thread and each expert call is one HTTP request to one host, verified (signature, receipt, Merkle root) before",
        "use. Tokens/s count model tokens end to end, gate included; latency is per expert call.",
        "",
    ]
    for name, section in result.items():
        if name == "setting":
            continue
        local = section["in_process"]["tokens_per_s"]
        lines += [
            f"## {name}: {section['model']}",
            "",
            f"{section['samples']} MNIST-1D test samples in batches of {section['batch_samples']} samples "
            f"({section['batch_tokens']} tokens). In process: **{local:,.0f} tokens/s**.",
            "",
            "| policy | tokens/s | of in-process | p50 ms per call | p99 ms per call | expert calls | accuracy |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in section["distributed"]:
            accuracy = "-" if r["accuracy"] is None else f"{r['accuracy']:.2%}"
            lines.append(
                f"| {r['policy']} | {r['tokens_per_s']:,.0f} | {r['ratio']:.2f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['calls']} | {accuracy} |"
            )
        lines.append("")
    lines += [
        "Target: at least 0.5 of in-process throughput at 1,024-token batches under `none` and `optimistic`.",
        "`redundant:3` sends every expert call to three hosts and compares their outputs, so it does three times the",
        "expert work on the same cores.",
        "",
        "## Reading the numbers",
        "",
        _verdict(result),
        "",
        "A distributed call has a fixed cost that in-process execution does not pay: the request and response frames over",
        "HTTP, the node's per-token leaf hashes, Merkle root and EIP-712 signature, the SQLite write before the reply, and",
        "the publisher's recomputation of the root and recovery of the signer. At 1,024 tokens that is tens of",
        "milliseconds of Python on a shared core. With the wide experts the expert arithmetic dominates and the",
        "distributed path keeps pace with one process (it can exceed it: three node processes use the cores in parallel",
        "while the in-process kernel is one PyTorch call at a time). With the demo's 32-64-32 experts the whole model",
        "runs in microseconds per token in process, so the network path's fixed cost sets the pace and the target is",
        "not met; it is a cost per call, not per FLOP, and it shrinks relative to the work as experts grow.",
        "",
    ]
    return "\n".join(lines)


def _verdict(result: dict) -> str:
    parts = []
    for name, section in result.items():
        if name == "setting":
            continue
        ratios = {r["policy"].split(":")[0]: r["ratio"] for r in section["distributed"]}
        met = all(ratios.get(p, 0) >= 0.5 for p in ("none", "optimistic"))
        parts.append(
            f"{name}: `none` {ratios.get('none', 0):.2f} and `optimistic` {ratios.get('optimistic', 0):.2f} of in-process, "
            f"target {'met' if met else 'not met'}."
        )
    return " ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
