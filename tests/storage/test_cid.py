"""CIDv0 computation (bmoe_py.storage.cid) against known CIDs and against the Kubo engine itself."""
import random

import pytest

from bmoe_py.storage.cid import CHUNK_SIZE, MAX_LINKS, CidBuilder, cid_of_bytes, file_dag, parse_cid
from bmoe_py.storage.errors import InvalidCid

# Sizes around every boundary of the default import: empty, one byte, exactly one chunk, one chunk
# and a byte, and files of tens of MB (a root with many leaves); MAX_LINKS chunks + 1 needs two levels.
ENGINE_SIZES = [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 10_000_000, 50_000_000, MAX_LINKS * CHUNK_SIZE + 1]


def test_empty_file_has_kubos_well_known_cid():
    assert cid_of_bytes(b"") == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


def test_hello_world_has_kubos_well_known_cid():
    # `echo "hello world" | ipfs add`, the example of the IPFS documentation
    assert cid_of_bytes(b"hello world\n") == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def test_dag_size_counts_every_block():
    # one leaf: the 6-byte empty UnixFS node; Kubo's `add` reports Size "6" for an empty file
    assert file_dag(b"").dag_size == 6
    dag = file_dag(bytes(CHUNK_SIZE + 1))
    assert dag.file_size == CHUNK_SIZE + 1
    assert dag.dag_size > CHUNK_SIZE + 1  # data plus protobuf framing plus the root


def test_cid_does_not_depend_on_how_the_bytes_are_fed():
    data = random.Random(7).randbytes(3 * CHUNK_SIZE + 12345)
    builder = CidBuilder()
    for start in range(0, len(data), 100_003):
        builder.update(data[start : start + 100_003])
    assert builder.finish().cid == cid_of_bytes(data)


def test_one_flipped_byte_changes_the_cid():
    data = bytearray(random.Random(8).randbytes(2 * CHUNK_SIZE))
    before = cid_of_bytes(bytes(data))
    data[CHUNK_SIZE + 5] ^= 1
    assert cid_of_bytes(bytes(data)) != before


def test_parse_cid_reads_v0_and_the_same_block_as_v1():
    v0 = parse_cid("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
    # `ipfs cid format -v 1 -b base32` of the same CID
    v1 = parse_cid("bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y")
    assert (v0.version, v1.version) == (0, 1)
    assert v0.multihash == v1.multihash
    assert v0.is_default_file_root and v1.is_default_file_root


@pytest.mark.parametrize("text", ["", "notacid", "Qm" + "0" * 44, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQ"])
def test_parse_cid_rejects_what_is_not_a_cid(text):
    with pytest.raises(InvalidCid):
        parse_cid(text)


def test_cid_equals_the_engines_for_every_boundary_size(node_a):
    rng = random.Random(2024)
    with node_a.client(timeout=120) as client:
        for size in ENGINE_SIZES:
            data = rng.randbytes(size)
            engine_cid = client.add_bytes(data, name=f"{size}.bin", verify=False)
            assert cid_of_bytes(data) == engine_cid, f"size {size}"
