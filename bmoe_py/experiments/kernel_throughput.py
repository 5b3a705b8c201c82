"""Throughput of the exact int8 expert kernel (tokens per second), on CPU and, when present, CUDA.

    python -m bmoe_py.experiments.kernel_throughput [--tokens 65536] [--out results/kernel_throughput.json]

Random int8 experts of two shapes: the demo's expert (32 -> 64 -> 32) and a wide one (1024 -> 4096 -> 1024, rows
of the maximal on-chain length). Each run is checked bit for bit against the numpy reference on a sample first, so
a fast wrong kernel cannot report a figure.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from bmoe_py.model.int8_ref import IntLayer, expert_forward
from bmoe_py.model.kernel import ExactExpertKernel

SHAPES = {"demo 32-64-32": (32, 64, 32), "wide 1024-4096-1024": (1024, 4096, 1024)}


def random_expert(dims: tuple[int, ...], rng: np.random.Generator) -> list[IntLayer]:
    layers = []
    for i, (d_in, d_out) in enumerate(zip(dims, dims[1:])):
        weight = rng.integers(-128, 128, size=(d_out, d_in), dtype=np.int8)
        bias = rng.integers(-(2**20), 2**20, size=d_out, dtype=np.int32)
        # roughly the scale a calibrated quantisation picks: keeps outputs off the clamp
        layers.append(IntLayer(weight, bias, multiplier=2**30, shift=30 + int(np.log2(d_in)) + 10, relu=i < len(dims) - 2))
    return layers


def measure(device: str, dims: tuple[int, ...], tokens: int, rng: np.random.Generator) -> dict:
    layers = random_expert(dims, rng)
    kernel = ExactExpertKernel(layers, device)
    x = rng.integers(-128, 128, size=(tokens, dims[0]), dtype=np.int8)
    xt = torch.from_numpy(x)
    sample = slice(0, 256)
    got = kernel(xt[sample]).cpu().numpy()
    if not np.array_equal(got, expert_forward(layers, x[sample])[-1]):
        raise AssertionError(f"kernel differs from int8_ref on {device} for {dims}")
    kernel(xt[:1024])  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = kernel(xt)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    macs = sum(a * b for a, b in zip(dims, dims[1:]))
    return {"device": device, "shape": dims, "tokens": tokens, "seconds": round(seconds, 4),
            "tokens_per_second": round(tokens / seconds), "macs_per_token": macs,
            "gmacs_per_second": round(tokens * macs / seconds / 1e9, 3), "checksum": int(out.to(torch.int64).sum())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=65536)
    parser.add_argument("--out", type=Path, default=Path("results/kernel_throughput.json"))
    args = parser.parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rng = np.random.default_rng(0)
    runs = []
    for device in devices:
        for name, dims in SHAPES.items():
            tokens = args.tokens if dims[0] < 1024 else max(args.tokens // 16, 1024)
            run = measure(device, dims, tokens, rng) | {"name": name}
            print(f"{device:5s} {name:22s} {run['tokens_per_second']:>12,} tokens/s  {run['gmacs_per_second']:8.3f} GMAC/s"
                  "  (bit-exact vs int8_ref on a sample)", flush=True)
            runs.append(run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
              "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "runs": runs}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
