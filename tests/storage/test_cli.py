"""`bmoe ipfs` client commands against a running daemon."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bmoe_py.storage.cid import cid_of_bytes

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def bmoe(*args: str, api: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if api:
        env["BMOE_IPFS_API"] = api
    return subprocess.run([sys.executable, "-m", "bmoe_py.cli.main", "ipfs", *args], capture_output=True, env=env, timeout=60)


def test_add_prints_the_cid_and_cat_writes_the_content(node_a, tmp_path):
    data = os.urandom(400_000)
    (tmp_path / "in.bin").write_bytes(data)
    added = bmoe("add", str(tmp_path / "in.bin"), "--api", node_a.api)
    assert added.returncode == 0
    assert added.stdout.decode().split() == ["added", cid_of_bytes(data), "in.bin"]
    cat = bmoe("cat", cid_of_bytes(data), "-o", str(tmp_path / "out.bin"), api=node_a.api)
    assert cat.returncode == 0 and (tmp_path / "out.bin").read_bytes() == data


def test_pin_and_pins_list_the_cid(node_a, tmp_path):
    cid = node_a.client().add_bytes(b"pin me")
    assert bmoe("pin", cid, api=node_a.api).returncode == 0
    assert f"{cid} recursive" in bmoe("pins", "--type", "recursive", api=node_a.api).stdout.decode()


def test_cat_with_wrong_sha256_fails_with_a_message(node_a):
    cid = node_a.client().add_bytes(b"checked")
    result = bmoe("cat", cid, "--sha256", "00" * 32, api=node_a.api)
    assert result.returncode == 1
    assert result.stdout == b""
    assert cid in result.stderr.decode() and "sha256" in result.stderr.decode()


def test_id_of_an_unreachable_node_fails_with_its_address():
    result = bmoe("id", "--api", "http://127.0.0.1:1", "--timeout", "2")
    assert result.returncode == 1
    assert "http://127.0.0.1:1" in result.stderr.decode()
