"""Downloads are checked against their CID on the client side: a node or proxy that alters content
is caught."""
import hashlib
import random

import pytest

from bmoe_py.storage.client import IpfsClient
from bmoe_py.storage.errors import ContentMismatch

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def stored(node_a):
    data = random.Random(21).randbytes(5_000_000)
    return node_a.client().add_bytes(data), data


def test_fetch_verified_returns_genuine_content(node_a, stored):
    cid, data = stored
    assert node_a.client().fetch_verified(cid, expected_sha256=hashlib.sha256(data).hexdigest()) == data


def test_tampered_download_raises_content_mismatch(tampering_proxy, stored):
    cid, data = stored
    with IpfsClient(tampering_proxy.url) as client:
        assert client.cat(cid) != data  # the proxy really alters what it serves
        with pytest.raises(ContentMismatch) as error:
            client.fetch_verified(cid)
    assert cid in str(error.value) and tampering_proxy.url in str(error.value)


def test_wrong_expected_sha256_raises_content_mismatch(node_a, stored):
    cid, _ = stored
    with pytest.raises(ContentMismatch) as error:
        node_a.client().fetch_verified(cid, expected_sha256="00" * 32)
    assert cid in str(error.value)
