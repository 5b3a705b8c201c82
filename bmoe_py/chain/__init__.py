"""Contract access without brownie: deployment manifests, a web3 client with readable reverts, deployment helpers.

    from bmoe_py.chain import connect
    chain = connect(rpc_url, private_key)        # finds deployments/<chain-id>.json
    chain.send(chain.staking.functions.deposit(), value=10**18)

`bmoe_py.chain.deploy` (brownie, used by scripts/deploy.py) is not imported here.
"""
from .client import Chain, ChainError, TransactionReverted, connect, default_rpc_url
from .errors import DecodedError, ErrorDecoder
from .manifest import (
    CONTRACT_NAMES,
    ContractRecord,
    Manifest,
    ManifestError,
    ManifestNotFound,
    deployment_gone,
    deployments_dir,
    load_manifest,
    manifest_path,
    save_manifest,
)

__all__ = [
    "CONTRACT_NAMES",
    "Chain",
    "ChainError",
    "ContractRecord",
    "DecodedError",
    "ErrorDecoder",
    "Manifest",
    "ManifestError",
    "ManifestNotFound",
    "TransactionReverted",
    "connect",
    "default_rpc_url",
    "deployment_gone",
    "deployments_dir",
    "load_manifest",
    "manifest_path",
    "save_manifest",
]
