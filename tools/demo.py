"""`make demo`: a whole B-MoE network on this machine, some of its edge nodes cheating, and each verification
policy run against them. Real parts only: anvil, the contract suite, the embedded Kubo engine, `bmoe edge` and
`bmoe validator` processes over HTTP and JSON-RPC.

1. anvil on 127.0.0.1:8545 (started unless one answers) and the contract suite (deployed unless alive);
2. the embedded IPFS node;
3. a model: an MoE trained on MNIST-1D (8 experts, top-2), experts quantised to exact int8, every file pinned,
   model and experts registered on chain with a short challenge window (so nodes are paid during the demo);
4. honest edge nodes hosting every expert;
5. for each policy (`none`, `redundant:3`, `optimistic:P`): two fresh cheating nodes join (one `signflip`, one
   `gaussian`, each hosting half of the experts, so no expert has two cheaters); the publisher classifies the test
   samples twice under the policy: the first pass meets the cheaters, the second runs after the disputes they
   caused have settled (validators watch the chain during the optimistic phase); then the cheaters leave;
6. a table (policy, accuracy of both passes, tokens/s, latency, disputes won, stake slashed, time to slash: chain
   time from a cheater's first commitment to its slash, the slower cheater's), the same as JSON in
   results/demo.json and a chart in results/demo.png. Every process is stopped at the end, also on Ctrl-C; the chain keeps running
   (`python tools/local_chain.py --stop` stops it).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bmoe_py.experiments.localnet import PUBLISHER_KEY, LocalNetwork, NetworkError  # noqa: E402
from bmoe_py.experiments.testbed import frauds_proven, seconds_to_slash, slashed_stake  # noqa: E402

ETHER = 10**18


def step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


@dataclass
class PhaseResult:
    policy: str
    accuracy_first: float  # the first pass, while the cheaters serve
    accuracy_second: float  # the second pass, after the disputes of the first have settled
    tokens: int
    tokens_per_s: float
    p50_ms: float
    p99_ms: float
    disputes_won: int
    stake_slashed_eth: float
    cheaters_slashed: int
    cheaters: int
    seconds_to_slash: list[int]  # per slashed cheater: chain time from its first commitment to its slash
    seconds: float


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ipfs-port", type=int, default=5001)
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=1000, help="test samples per policy (default: %(default)s)")
    parser.add_argument("--honest", type=int, default=3, help="honest edge nodes (default: %(default)s)")
    parser.add_argument("--policies", default="none,redundant:3,optimistic:0.25", help="comma-separated (default: %(default)s)")
    parser.add_argument("--attack-fraction", type=float, default=0.5, help="tokens a cheater manipulates (default: %(default)s)")
    parser.add_argument("--challenge-window", default="40", help="of the demo model, seconds (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="folder of demo.json and demo.png")
    args = parser.parse_args()

    started = time.monotonic()
    try:
        with LocalNetwork(ROOT / ".bmoe" / "demo", ipfs_port=args.ipfs_port) as net:
            results, baseline = run_demo(net, args)
    except NetworkError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    report(results, baseline, args, time.monotonic() - started)
    return 0


def run_demo(net: LocalNetwork, args) -> tuple[list[PhaseResult], dict]:
    from bmoe_py.chain.client import connect
    from bmoe_py.model.data import load_dataset  # noqa: F401  (imported here: torch loads in a second or two)
    from bmoe_py.storage.client import IpfsClient

    step("local chain (anvil) and contracts")
    net.start_chain()
    net.deploy()

    step("IPFS node (embedded Kubo engine)")
    net.start_ipfs()

    step("train, quantise and publish a model (MNIST-1D, 8 experts, top-2)")
    published = net.publish_model(
        ["--dataset", "mnist1d", "--epochs", str(args.epochs), "--experts", "8", "--patch-size", "8", "--patch-stride", "4",
         "--challenge-window", args.challenge_window]
    )  # fmt: skip
    model_id = published["model_id"]
    print(f"model {model_id}: float accuracy {published['float_accuracy']:.2%}, exact int8 {published['exact_accuracy']:.2%}")
    experts = list(range(len(published["experts"])))

    step(f"{args.honest} honest edge nodes, each hosting all {len(experts)} experts")
    for i in range(args.honest):
        node = net.start_edge(f"edge-honest-{i}", model_id, experts, extra=["--window-seconds", "3"])
        print(f"  {node.name} {node.address} at {node.url}", flush=True)

    chain = connect(net.rpc_url, PUBLISHER_KEY)
    ipfs = IpfsClient(net.ipfs_api, timeout=30)
    x, y = test_set(published)
    x, y = x[: args.samples], y[: args.samples]
    from bmoe_py.publisher.fetch import load_exact_model_from_chain

    # The reference: the same published model whole in this process, on the same samples, nobody cheating.
    baseline = {"exact_accuracy": load_exact_model_from_chain(chain, ipfs, model_id).accuracy(x, y), "samples": len(x)}

    results = []
    half = len(experts) // 2
    for phase, policy in enumerate(p.strip() for p in args.policies.split(",")):
        step(f"policy {policy}: two cheating nodes join")
        first_block = chain.w3.eth.block_number
        cheaters = [
            net.start_edge(
                f"edge-cheat-{phase}-{attack}", model_id, hosted,
                extra=["--attack", attack, "--attack-fraction", str(args.attack_fraction), "--window-seconds", "3"],
            )
            for attack, hosted in (("signflip", experts[:half]), ("gaussian", experts[half:]))
        ]  # fmt: skip
        for node in cheaters:
            print(f"  {node.name} {node.address} (cheats on {args.attack_fraction:.0%} of its tokens)", flush=True)
        validators = []
        if policy.startswith("optimistic:"):
            rate = policy.split(":", 1)[1]
            validators = [
                net.start_validator(f"validator-{phase}-{i}", model_id, extra=["--sample-rate", rate, "--from-block", str(first_block)])
                for i in range(2)
            ]  # fmt: skip
            print(f"  {len(validators)} validators sampling {float(rate):.0%} of every commitment", flush=True)
        result = run_phase(chain, ipfs, model_id, policy, x, y, [c.address for c in cheaters], first_block)
        results.append(result)
        for process in cheaters + validators:
            net.stop(process)
    ipfs.close()
    return results, baseline


def run_phase(chain, ipfs, model_id: int, policy: str, x, y, cheaters: list[str], first_block: int) -> PhaseResult:
    """Two passes over the samples under one policy: the first meets the cheaters, the second runs after the
    disputes they caused have settled (a slashed node has left the publisher's routing by then)."""
    from bmoe_py.publisher.runtime import InferenceSession, Policy

    started = time.monotonic()
    session = InferenceSession(chain, ipfs, model_id, Policy.parse(policy), price_per_token=10**9, escrow=ETHER // 10)
    try:
        print(f"  pass 1: {len(x)} samples", flush=True)
        first = session.run(x, y, batch_size=128).to_dict()
        print(f"  pass 1: accuracy {first['accuracy']:.2%}, {first['tokens_per_s']:,.0f} tokens/s", flush=True)
        if policy != "none":
            # Optimistic checking starts when a node commits its window: give the validators the time to fetch it,
            # re-execute a sample, challenge and prove (a few blocks once the window is committed).
            deadline = time.monotonic() + 90
            slashed = slashed_stake(chain, cheaters, first_block)
            while time.monotonic() < deadline and slashed[1] < len(cheaters):
                print(f"  waiting for disputes: {slashed[1]}/{len(cheaters)} cheaters slashed so far", flush=True)
                time.sleep(3)
                slashed = slashed_stake(chain, cheaters, first_block)
        print(f"  pass 2: {len(x)} samples", flush=True)
        second = session.run(x, y, batch_size=128).to_dict()
        print(f"  pass 2: accuracy {second['accuracy']:.2%}, {second['tokens_per_s']:,.0f} tokens/s", flush=True)
    finally:
        session.close()
    slashed = slashed_stake(chain, cheaters, first_block)
    return PhaseResult(
        policy=policy,
        accuracy_first=float(first["accuracy"]),
        accuracy_second=float(second["accuracy"]),
        tokens=int(first["tokens"]) + int(second["tokens"]),
        tokens_per_s=float(first["tokens_per_s"]),
        p50_ms=float(first.get("latency_p50_ms") or 0.0),
        p99_ms=float(first.get("latency_p99_ms") or 0.0),
        disputes_won=frauds_proven(chain, first_block),
        stake_slashed_eth=slashed[0] / ETHER,
        cheaters_slashed=slashed[1],
        cheaters=len(cheaters),
        seconds_to_slash=seconds_to_slash(chain, cheaters, first_block),
        seconds=time.monotonic() - started,
    )


def test_set(published: dict):
    """The MNIST-1D test split the model was evaluated on when it was published (same generator, same seed)."""
    from bmoe_py.model.data import load_dataset

    data = load_dataset("mnist1d")
    return data.x_test, data.y_test


def report(results: list[PhaseResult], baseline: dict, args, seconds: float) -> None:
    step("results")
    print(f"the same model in one process, nobody cheating: {baseline['exact_accuracy']:.2%} on {baseline['samples']} samples")
    header = ("policy", "accuracy 1st pass", "accuracy 2nd pass", "tokens/s", "p50 ms", "p99 ms", "disputes won", "stake slashed", "cheaters slashed", "time to slash")
    rows = [
        (r.policy, f"{r.accuracy_first:.2%}", f"{r.accuracy_second:.2%}", f"{r.tokens_per_s:,.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", str(r.disputes_won),
         f"{r.stake_slashed_eth:.2f} ETH", f"{r.cheaters_slashed}/{r.cheaters}",
         f"{max(r.seconds_to_slash)} s" if r.seconds_to_slash else "-")
        for r in results
    ]  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    args.out.mkdir(parents=True, exist_ok=True)
    document = {
        "setting": {
            "dataset": "mnist1d", "experts": 8, "k": 2, "honest_nodes": args.honest, "cheaters_per_policy": 2,
            "attacks": ["signflip", "gaussian"], "attack_fraction": args.attack_fraction, "samples": args.samples,
            "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        },  # fmt: skip
        "baseline": baseline,
        "policies": [r.__dict__ for r in results],
        "seconds": round(seconds, 1),
    }
    (args.out / "demo.json").write_text(json.dumps(document, indent=2) + "\n")
    chart(results, baseline, args.out / "demo.png")
    print(f"\nwrote {args.out / 'demo.json'} and {args.out / 'demo.png'} ({seconds:.0f} s in all)")


def chart(results: list[PhaseResult], baseline: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r.policy for r in results]
    positions = range(len(results))
    left.bar([p - 0.2 for p in positions], [100 * r.accuracy_first for r in results], width=0.4, color="#4477aa", label="1st pass (cheaters serving)")
    left.bar([p + 0.2 for p in positions], [100 * r.accuracy_second for r in results], width=0.4, color="#66ccee", label="2nd pass (after disputes)")
    left.set_xticks(list(positions), names)
    left.axhline(100 * baseline["exact_accuracy"], color="black", linestyle="--", label="in-process, no cheaters")
    left.set_ylabel("test accuracy (%)")
    left.set_ylim(0, 100)
    left.legend(loc="lower right", fontsize=8)
    left.set_title("accuracy with 2 cheating nodes")
    right.bar(names, [r.stake_slashed_eth for r in results], color="#cc6677")
    right.set_ylabel("stake slashed (ETH)")
    right.set_title("cheaters' stake slashed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
