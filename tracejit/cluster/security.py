"""Who may talk to a server: CURVE keys and an allow-list, required off loopback.

**Threat model.** A tracejit server runs the graphs it is sent and reads and writes
the variables it is asked to: whoever can open a connection to an unauthenticated port
can run code on that machine and read or change the model. So a server bound to
anything but loopback refuses to start without CURVE keys; with them, ZeroMQ's CURVE
encrypts and authenticates every connection, and a ZAP handler (pyzmq's authenticator
thread) admits only clients whose public key is on the server's allow-list. Loopback
servers (tests, one machine) need no keys: only local users can reach them. Keys are
files made by ``tracejit cluster keys DIR``; never commit the secret ones.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from .spec import ClusterError

__all__ = ["Keys", "check_binding", "secure_server", "secure_client", "generate_keys",
           "is_loopback"]


@dataclass
class Keys:
    """A task's CURVE key pair (Z85 text) and the public keys it accepts as clients."""

    public: bytes
    secret: bytes
    server_public: bytes | None = None          # the servers' key, for a client
    allowed: list[bytes] = field(default_factory=list)

    @classmethod
    def load(cls, directory: str | os.PathLike, name: str = "task") -> Keys:
        """The keys ``tracejit cluster keys DIR`` wrote: ``name.key_secret`` (this task),
        ``server.key`` (the servers' public key) and every ``*.key`` in
        ``DIR/allowed/`` (the clients a server accepts)."""
        directory = Path(directory)
        try:
            public, secret = zmq.auth.load_certificate(directory / f"{name}.key_secret")
        except (OSError, ValueError) as exc:
            raise ClusterError(f"cannot read CURVE keys {directory / name}.key_secret: "
                               f"{exc}") from None
        server_file = directory / "server.key"
        server_public = zmq.auth.load_certificate(server_file)[0] \
            if server_file.exists() else None
        allowed_dir = directory / "allowed"
        allowed = [zmq.auth.load_certificate(p)[0]
                   for p in sorted(allowed_dir.glob("*.key"))] if allowed_dir.is_dir() else []
        return cls(public, secret, server_public, allowed)


def generate_keys(directory: str | os.PathLike, clients: int = 1) -> list[Path]:
    """Write a server key pair (``server.key``, ``server.key_secret``) and ``clients``
    client pairs (``client<i>``), with the clients' public keys in ``allowed/``."""
    directory = Path(directory)
    allowed = directory / "allowed"
    allowed.mkdir(parents=True, exist_ok=True)
    written = list(zmq.auth.create_certificates(str(directory), "server"))
    for i in range(clients):
        public, secret = zmq.auth.create_certificates(str(directory), f"client{i}")
        copy = allowed / Path(public).name
        copy.write_bytes(Path(public).read_bytes())
        written += [Path(public), Path(secret), copy]
    for path in directory.glob("*.key_secret"):
        path.chmod(0o600)
    return [Path(p) for p in written]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(address: str, keys: Keys | None) -> None:
    """Refuse to serve off loopback without keys (see the module's threat model)."""
    host = address.rsplit(":", 1)[0]
    if keys is None and not is_loopback(host):
        raise ClusterError(
            f"refusing to serve {address} without CURVE keys: anyone who can reach this "
            "port could run graphs and read or change variables. Make keys with "
            "`tracejit cluster keys DIR` and pass keys=tracejit.cluster.Keys.load(DIR), or "
            "bind to 127.0.0.1")
    if keys is not None and not zmq.has("curve"):
        raise ClusterError("this libzmq has no CURVE support; cannot serve with keys")


# One authenticator per context: ZAP handlers are per context.
_AUTHENTICATORS: dict[int, ThreadAuthenticator] = {}


class _AllowList:
    """ZAP's CURVE callback: a client is let in when its public key is allowed."""

    def __init__(self, allowed: list[bytes]):
        self.allowed = {bytes(k) for k in allowed}

    def callback(self, domain: str, client_key: bytes) -> bool:
        return zmq.utils.z85.encode(client_key) in self.allowed or client_key in self.allowed


def secure_server(socket: zmq.Socket, keys: Keys, context: zmq.Context) -> None:
    """Make ``socket`` a CURVE server that admits only ``keys.allowed`` clients."""
    if not keys.allowed:
        raise ClusterError("a server with CURVE keys needs an allow-list of client public "
                           "keys (DIR/allowed/*.key)")
    auth = _AUTHENTICATORS.get(id(context))
    if auth is None:
        auth = _AUTHENTICATORS[id(context)] = ThreadAuthenticator(context)
        auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=_AllowList(keys.allowed))
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_server = True


def secure_client(socket: zmq.Socket, keys: Keys) -> None:
    """Make ``socket`` a CURVE client of the servers whose public key ``keys`` has."""
    if keys.server_public is None:
        raise ClusterError("CURVE client keys without the server's public key "
                           "(DIR/server.key)")
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_serverkey = keys.server_public
