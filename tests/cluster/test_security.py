"""Who may talk to a server (tracejit/cluster/security.py): keys required off loopback,
CURVE with an allow-list on, the key files ``generate_keys`` writes."""

from __future__ import annotations

import os
import stat
import time

import pytest
import zmq.auth

from tracejit.cluster import ClusterError, Keys, Server, free_port, generate_keys
from tracejit.cluster.remote import Connection
from tracejit.cluster.security import check_binding
from tracejit.cluster.wire import Kind, Message
from tracejit.runtime.partitions import StepTimeout

SHORT_MS = 400


@pytest.mark.parametrize("address", ["10.1.2.3:2222", "0.0.0.0:2222", "ps0.example.com:2222",
                                     "[2001:db8::1]:2222", "192.168.0.7:1"])
def test_a_non_loopback_address_without_keys_is_refused(address):
    with pytest.raises(ClusterError) as info:
        check_binding(address, None)
    message = str(info.value)
    assert f"refusing to serve {address} without CURVE keys" in message
    assert "`tracejit cluster keys DIR`" in message


@pytest.mark.parametrize("address", ["127.0.0.1:2222", "localhost:2222", "127.8.9.10:1",
                                     "[::1]:2222"])
def test_loopback_needs_no_keys(address):
    check_binding(address, None)


def test_a_server_off_loopback_refuses_to_start_before_binding():
    with pytest.raises(ClusterError, match=r"refusing to serve 10\.255\.255\.1:2222 without"):
        Server({"ps": ["10.255.255.1:2222"]}, "ps", 0)


@pytest.fixture
def key_dir(tmp_path):
    generate_keys(tmp_path / "keys", clients=2)
    return tmp_path / "keys"


@pytest.fixture
def secure(key_dir):
    server = Server({"ps": [f"127.0.0.1:{free_port()}"]}, "ps", 0, keys=Keys.load(key_dir))
    try:
        yield server
    finally:
        server.stop()


def _ping(server: Server, keys: Keys | None, timeout_ms: int = 10_000) -> Message:
    return Connection(server.address, "/job:ps/replica:0/task:0", keys).request(
        Message(Kind.PING), "PING", timeout_ms)


def test_an_allowed_client_is_answered_over_curve(secure, key_dir):
    assert _ping(secure, Keys.load(key_dir, "client0")).text["job"] == "ps"
    assert _ping(secure, Keys.load(key_dir, "client1")).text["task"] == 0
    # a task's own session connects with the server pair, which is on the list too
    assert _ping(secure, Keys.load(key_dir)).text["job"] == "ps"


def _refused(server: Server, keys: Keys | None) -> None:
    start = time.monotonic()
    with pytest.raises(StepTimeout, match=f"did not answer PING within {SHORT_MS} ms"):
        _ping(server, keys, SHORT_MS)
    assert time.monotonic() - start < SHORT_MS / 1000 + 2


def test_a_client_with_an_unknown_key_gets_nothing(secure, key_dir, tmp_path):
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    _, secret_file = zmq.auth.create_certificates(stranger, "me")
    public, secret = zmq.auth.load_certificate(secret_file)
    _refused(secure, Keys(public, secret, Keys.load(key_dir).public))


def test_a_client_without_keys_gets_nothing(secure):
    _refused(secure, None)


def test_a_client_removed_from_allowed_is_locked_out(key_dir):
    (key_dir / "allowed" / "client1.key").unlink()
    server = Server({"ps": [f"127.0.0.1:{free_port()}"]}, "ps", 0, keys=Keys.load(key_dir))
    try:
        _refused(server, Keys.load(key_dir, "client1"))
        assert _ping(server, Keys.load(key_dir, "client0")).text["job"] == "ps"
    finally:
        server.stop()


def test_a_plain_loopback_server_in_the_same_process_still_answers(secure):
    # NOTE: the keyed server started ZAP's authenticator for the whole context
    plain = Server.create_local_server()
    try:
        assert _ping(plain, None).text["job"] == "localhost"
    finally:
        plain.stop()


def test_a_server_given_a_clients_keys_refuses_to_start(key_dir):
    with pytest.raises(ClusterError, match=r"could not start: a server serves with the "
                                           r"cluster's server key pair"):
        Server({"ps": [f"127.0.0.1:{free_port()}"]}, "ps", 0,
               keys=Keys.load(key_dir, "client0"))


def test_a_server_without_an_allow_list_refuses_to_start(key_dir):
    keys = Keys.load(key_dir)
    keys.allowed = []
    with pytest.raises(ClusterError, match=r"needs an allow-list .*DIR/allowed/\*\.key"):
        Server({"ps": [f"127.0.0.1:{free_port()}"]}, "ps", 0, keys=keys)


def test_generate_keys_writes_the_layout_with_private_secrets(tmp_path):
    folder = tmp_path / "new" / "keys"
    written = generate_keys(folder, clients=2)
    names = sorted(str(p.relative_to(folder)) for p in written)
    assert names == sorted([".gitignore", "server.key", "server.key_secret",
                            "client0.key", "client0.key_secret", "client1.key",
                            "client1.key_secret", "allowed/server.key",
                            "allowed/client0.key", "allowed/client1.key"])
    for path in written:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if path.suffix == ".key_secret":
            assert mode == 0o600, f"{path} is {oct(mode)}"
        else:
            assert not mode & 0o022, f"{path} is writable by others: {oct(mode)}"
    assert sorted(os.listdir(folder)) == sorted([".gitignore", "allowed", "server.key",
                                                 "server.key_secret", "client0.key",
                                                 "client0.key_secret", "client1.key",
                                                 "client1.key_secret"])
    assert "*.key_secret" in (folder / ".gitignore").read_text().splitlines()
    for name in ("server", "client0", "client1"):
        assert (folder / "allowed" / f"{name}.key").read_bytes() == \
            (folder / f"{name}.key").read_bytes()
    keys = Keys.load(folder, "client1")
    assert keys.server_public == Keys.load(folder).public != keys.public
    assert len(keys.allowed) == 3 and keys.public in keys.allowed


def test_generate_keys_refuses_to_overwrite_keys(key_dir):
    before = (key_dir / "server.key_secret").read_bytes()
    with pytest.raises(ClusterError, match=r"server\.key exists: .* already holds keys"):
        generate_keys(key_dir, clients=1)
    assert (key_dir / "server.key_secret").read_bytes() == before


def test_generate_keys_with_no_clients_and_a_negative_count(tmp_path):
    written = generate_keys(tmp_path / "k", clients=0)
    assert {p.name for p in written} == {"server.key", "server.key_secret", ".gitignore"}
    with pytest.raises(ClusterError, match="clients=-1"):
        generate_keys(tmp_path / "other", clients=-1)


def test_loading_keys_that_are_not_there_names_the_file(tmp_path):
    with pytest.raises(ClusterError, match=r"cannot read CURVE keys .*nowhere/server\."
                                           r"key_secret"):
        Keys.load(tmp_path / "nowhere")
