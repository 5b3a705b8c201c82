"""The served RPC API speaks Kubo's formats, and client errors name the CID and the node."""
import random
import socket
import threading

import pytest
import requests

from bmoe_py.storage.client import IpfsClient
from bmoe_py.storage.errors import InvalidCid, IpfsUnavailable

pytestmark = pytest.mark.timeout(60)


def post(node, command, **kwargs):
    return requests.post(f"{node.api}/api/v0/{command}", timeout=30, **kwargs)


def test_add_answers_name_hash_and_size_as_kubo(node_a):
    # what `curl -F file=@hello.txt .../api/v0/add` gets from Kubo for "hello world\n"
    answer = post(node_a, "add", files={"file": ("hello.txt", b"hello world\n")})
    assert answer.status_code == 200
    assert answer.json() == {"Name": "hello.txt", "Hash": "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", "Size": "20"}


def test_cat_streams_the_bytes_with_their_length(node_a):
    data = random.Random(31).randbytes(700_000)
    cid = node_a.client().add_bytes(data)
    answer = post(node_a, "cat", params={"arg": cid})
    assert answer.content == data
    assert answer.headers["X-Content-Length"] == str(len(data))
    assert answer.headers["X-Stream-Output"] == "1"


def test_pin_ls_answers_keys_with_types(node_a):
    cid = node_a.client().add_bytes(b"pinned")
    assert post(node_a, "pin/ls", params={"arg": cid}).json() == {"Keys": {cid: {"Type": "recursive"}}}


def test_id_and_version_describe_a_kubo_0_22_node(node_a):
    info = post(node_a, "id").json()
    assert info["AgentVersion"].startswith("kubo/0.22.0")
    assert all(addr.endswith("/p2p/" + info["ID"]) for addr in info["Addresses"])
    assert post(node_a, "version").json()["Version"] == "0.22.0"


def test_errors_are_kubo_error_objects(node_a):
    answer = post(node_a, "cat", params={"arg": "notacid"})
    assert answer.status_code == 500
    body = answer.json()
    assert body["Type"] == "error" and body["Code"] == 0 and "notacid" in body["Message"]


def test_missing_argument_is_a_client_error(node_a):
    answer = post(node_a, "pin/add")
    assert answer.status_code == 400
    assert answer.json() == {"Message": 'argument "ipfs-path" is required', "Code": 1, "Type": "error"}


def test_get_is_refused_like_kubo(node_a):
    assert requests.get(f"{node_a.api}/api/v0/id", timeout=10).status_code == 405


def test_unreachable_node_error_names_the_node():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(IpfsUnavailable) as error:
        IpfsClient(url, retries=0).cat("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
    assert url in str(error.value) and "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH" in str(error.value)


def test_invalid_cid_is_refused_before_sending(node_a):
    with pytest.raises(InvalidCid) as error:
        node_a.client().cat("Qmnotacid")
    assert "Qmnotacid" in str(error.value) and node_a.api in str(error.value)


def test_client_retries_while_the_daemon_starts(spawn):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = IpfsClient(f"http://127.0.0.1:{port}", retries=7)  # backoff totals about 30 s
    answers = []
    asking = threading.Thread(target=lambda: answers.append(client.id()))
    asking.start()  # refused at first: nothing listens yet
    node = spawn("late", "--api-port", str(port))
    asking.join(30)
    assert answers and answers[0].id == node.client().id().id
