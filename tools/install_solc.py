"""Make solc 0.8.28 available to brownie through py-solc-x.

Native solc cannot be downloaded on machines without internet, so unless a native `solc` of the
right version is on PATH, this registers the npm package `solc` (solc-js) as py-solc-x's installed
`solc-v0.8.28` executable: a tiny shell wrapper around tools/solc-js-native.js.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

VERSION = "0.8.28"
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    import solcx

    target_dir = Path(solcx.get_solcx_install_folder())
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"solc-v{VERSION}"

    native = shutil.which("solc")
    if native:
        out = subprocess.run([native, "--version"], capture_output=True, text=True).stdout
        if f"Version: {VERSION}" in out:
            if target.exists() or target.is_symlink():
                target.unlink()
            target.symlink_to(native)
            print(f"solc {VERSION}: using native {native}")
            return 0

    wrapper = ROOT / "tools" / "solc-js-native.js"
    if not (ROOT / "node_modules" / "solc").is_dir():
        print("node_modules/solc is missing: run `npm ci` first", file=sys.stderr)
        return 1
    if target.is_symlink():
        target.unlink()
    target.write_text(f'#!/bin/sh\nexec node "{wrapper}" "$@"\n')
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    out = subprocess.run([str(target), "--version"], capture_output=True, text=True, check=True).stdout
    if f"Version: {VERSION}" not in out:
        print(f"registered solc does not report {VERSION}: {out!r}", file=sys.stderr)
        return 1
    print(f"solc {VERSION}: solc-js registered with py-solc-x at {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
