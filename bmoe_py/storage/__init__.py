"""Storage: IPFS through the Kubo RPC API (`client`), the embedded Kubo node that serves it (`kubo`,
`server`, run by `bmoe ipfs daemon`), and CIDv0 computation to verify every download (`cid`)."""
from bmoe_py.storage.cid import cid_of_bytes, file_dag, parse_cid
from bmoe_py.storage.client import IpfsClient, NodeInfo, default_api_url
from bmoe_py.storage.errors import (
    CidNotFound,
    ContentMismatch,
    InvalidCid,
    IpfsApiError,
    IpfsError,
    IpfsTimeout,
    IpfsUnavailable,
)

__all__ = [
    "CidNotFound",
    "ContentMismatch",
    "InvalidCid",
    "IpfsApiError",
    "IpfsClient",
    "IpfsError",
    "IpfsTimeout",
    "IpfsUnavailable",
    "NodeInfo",
    "cid_of_bytes",
    "default_api_url",
    "file_dag",
    "parse_cid",
]
