"""`bmoe validator` as a real process for the tests: started with a key of its own, sampling every token."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def start_validator(network, key: str, model_id: int, state_dir: Path, ready: Path, sample_rate: float = 1.0) -> subprocess.Popen:
    """Starts the validator and waits until it has written its --ready-file; its log is `state_dir/log.txt`."""
    env = network.env(BMOE_PRIVATE_KEY=key)
    cmd = [sys.executable, "-m", "bmoe_py", "validator", "--model", str(model_id), "--sample-rate", str(sample_rate),
           "--state-dir", str(state_dir), "--poll", "0.3", "--ready-file", str(ready)]  # fmt: skip
    log = open(state_dir / "log.txt", "ab")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, (state_dir / "log.txt").read_text()
        assert time.monotonic() < deadline, "validator not ready in 60 s"
        time.sleep(0.1)
    return proc
