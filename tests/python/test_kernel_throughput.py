"""The kernel throughput benchmark checks its kernel against the reference before it reports a figure."""
import json

from bmoe_py.experiments import kernel_throughput


def test_benchmark_reports_bit_exact_cpu_runs(tmp_path):
    out = tmp_path / "throughput.json"
    assert kernel_throughput.main(["--tokens", "1024", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    cpu = [run for run in result["runs"] if run["device"] == "cpu"]
    assert [run["name"] for run in cpu] == list(kernel_throughput.SHAPES)
    assert all(run["tokens_per_second"] > 0 for run in cpu)
