"""Throughput of the distributed path against the same model in one process (docs/benchmarks.md).

    python -m bmoe_py.experiments.runtime_benchmark [--samples 2000] [--batch-tokens 1024]

Brings up a local network (anvil, the suite, the embedded IPFS node, honest `bmoe edge` processes hosting every
expert, a `bmoe validator` for the optimistic policy), publishes an MNIST-1D model (8 experts, top-2, 9 tokens per
sample), then measures, at batches of about `--batch-tokens` tokens:

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


def in_process_model(chain, ipfs, model_id: int):
    """The published exact model whole in this process (`ExactMoE`), every file verified against the chain."""
    from ..model.exact import ExactMoE
    from ..publisher.fetch import load_expert_from_chain, load_gate_from_chain

    gate = load_gate_from_chain(chain, ipfs, model_id).gate
    config = gate.model.config
    experts = [
        [gate.exact_expert(l, e, load_expert_from_chain(chain, ipfs, model_id, l * config.num_experts + e).layers)
         for e in range(config.num_experts)]
        for l in range(config.num_layers)
    ]  # fmt: skip
    return ExactMoE(gate.model, experts)


def in_process_throughput(chain, ipfs, model_id: int, x: torch.Tensor, batch: int, repeats: int = 3) -> dict:
    """Tokens/s of the gate + exact experts in this process, the best of `repeats` passes (warm caches)."""
    model = in_process_model(chain, ipfs, model_id)
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
        session.run(x[:batch], y[:batch], batch_size=batch)  # warm-up: connections, host discovery
        report = session.run(x, y, batch_size=batch).to_dict()
    finally:
        session.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000, help="test samples per measurement (default: %(default)s)")
    parser.add_argument("--batch-tokens", type=int, default=1024, help="tokens per batch (default: %(default)s)")
    parser.add_argument("--nodes", type=int, default=3, help="honest edge nodes (default: %(default)s)")
    parser.add_argument("--optimistic-rate", type=float, default=0.1, help="P of optimistic:P (default: %(default)s)")
    parser.add_argument("--ipfs-port", type=int, default=5002)
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "runtime_benchmark.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the publisher's share of the machine; the nodes have their own processes

    from ..chain.client import connect
    from ..model.data import load_dataset
    from ..storage.client import IpfsClient

    with LocalNetwork(ROOT / ".bmoe" / "bench", ipfs_port=args.ipfs_port) as net:
        net.start_chain()
        net.deploy()
        net.start_ipfs()
        published = net.publish_model(
            ["--dataset", "mnist1d", "--epochs", "6", "--experts", "8", "--patch-size", "8", "--patch-stride", "4",
             "--challenge-window", "60"]
        )  # fmt: skip
        model_id = published["model_id"]
        experts = [str(e["index"]) for e in published["experts"]]
        for i in range(args.nodes):
            net.start_edge(f"bench-edge-{i}", model_id, [int(e) for e in experts])
        chain = connect(net.rpc_url, PUBLISHER_KEY)
        ipfs = IpfsClient(net.ipfs_api, timeout=30)
        data = load_dataset("mnist1d")
        x, y = data.x_test[: args.samples], data.y_test[: args.samples]
        tokens_per_sample = (40 - 8) // 4 + 1
        batch = max(1, args.batch_tokens // tokens_per_sample)
        print(f"batches of {batch} samples = {batch * tokens_per_sample} tokens", flush=True)

        local = in_process_throughput(chain, ipfs, model_id, x, batch)
        print(f"in process: {local['tokens_per_s']:,.0f} tokens/s", flush=True)
        rows = []
        for policy in ("none", f"optimistic:{args.optimistic_rate:g}", "redundant:3"):
            validator = None
            if policy.startswith("optimistic"):
                validator = net.start_validator("bench-validator", model_id, extra=["--sample-rate", f"{args.optimistic_rate:g}"])
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
            print(f"{policy}: {row['tokens_per_s']:,.0f} tokens/s ({row['ratio']:.2f} of in-process), "
                  f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms", flush=True)  # fmt: skip
        ipfs.close()

    result = {
        "setting": {
            "model": "MNIST-1D MoE, 8 experts (32-64-32 exact int8), top-2, 9 tokens per sample",
            "samples": args.samples, "batch_samples": batch, "batch_tokens": batch * tokens_per_sample,
            "edge_nodes": args.nodes, "machine": f"{platform.machine()}, {torch.get_num_threads()} publisher thread, "
            f"{_cpus()} CPUs, Python {platform.python_version()}, torch {torch.__version__}",
        },  # fmt: skip
        "in_process": local,
        "distributed": rows,
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
        "Measured by `python -m bmoe_py.experiments.runtime_benchmark` (results/runtime_benchmark.json).",
        f"Model: {s['model']}; {s['samples']} MNIST-1D test samples in batches of {s['batch_samples']} samples "
        f"({s['batch_tokens']} tokens); {s['edge_nodes']} honest edge nodes on loopback, each hosting every expert.",
        f"Machine: {s['machine']}. Every process (edge nodes, validator, anvil, IPFS, publisher) shares these cores.",
        "",
        f"In process (gate + exact experts, one thread): **{result['in_process']['tokens_per_s']:,.0f} tokens/s**.",
        "",
        "| policy | tokens/s | of in-process | p50 ms per call | p99 ms per call | expert calls | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["distributed"]:
        lines.append(
            f"| {r['policy']} | {r['tokens_per_s']:,.0f} | {r['ratio']:.2f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['calls']} | {r['accuracy']:.2%} |"
        )
    lines += [
        "",
        "Target: at least 0.5 of in-process throughput at 1,024-token batches under `none` and `optimistic`.",
        "`redundant:3` sends every expert call to three hosts and compares their outputs, so it does three times the",
        "expert work on the same cores.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
