"""The data plane of B-MoE, byte for byte (docs/protocol.md 8 and 9): the binary frames that publishers and edge
nodes exchange over HTTP, and the window bundle an edge node pins to IPFS beside each commitment.

The edge node, the publisher and the validator all import these; nothing here touches the network or the chain.
"""
from .bundle import BUNDLE_FORMAT, BundleError, BundleToken, WindowBundle
from .wire import (
    MAX_FRAME_BYTES,
    MAX_TOKENS_PER_REQUEST,
    ForwardRequest,
    ForwardResponse,
    FrameError,
    decode_frame,
    encode_frame,
)

__all__ = [
    "BUNDLE_FORMAT",
    "MAX_FRAME_BYTES",
    "MAX_TOKENS_PER_REQUEST",
    "BundleError",
    "BundleToken",
    "ForwardRequest",
    "ForwardResponse",
    "FrameError",
    "WindowBundle",
    "decode_frame",
    "encode_frame",
]
