"""Who may talk to a server: CURVE keys and an allow-list, required off loopback.

**Threat model.** A tracejit server runs the graphs it is sent and reads and writes
the variables it is asked to: whoever can open a connection to an unauthenticated port
can run code on that machine and read or change the model. So a server bound to
anything but loopback refuses to start without CURVE keys; with them, ZeroMQ's CURVE
encrypts and authenticates every connection, and a ZAP handler (pyzmq's authenticator
thread) admits only clients whose public key is on the server's allow-list. Loopback
servers (tests, one machine) need no keys: only local users can reach them (keys work
there too). Keys are files made by ``tracejit cluster keys DIR``; never commit the
secret ones.

**Key layout.** ``generate_keys(DIR, clients=N)`` writes one directory per cluster:

* ``server.key`` / ``server.key_secret``: the cluster's server pair. Every task serves
  with it (``Keys.load(DIR)``), and, since a task's session talks to the other tasks,
  connects with it too: so it is on the allow-list. Give it to every machine that runs
  a task.
* ``client<i>.key`` / ``client<i>.key_secret``: a pair for each process that only
  connects (a notebook, an evaluator: ``Keys.load(DIR, "client0")``). It needs
  ``server.key`` beside it, not the server's secret.
* ``allowed/*.key``: the public keys servers admit (``server.key`` and every client's).
  Deleting a client's file there and restarting the servers revokes it; adding a
  ``.key`` file admits another.

Secret files are written mode 0600 (made in a private temporary folder, then moved),
and a ``.gitignore`` in DIR keeps ``*.key_secret`` out of git.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
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
    def load(cls, directory: str | os.PathLike, name: str = "server") -> Keys:
        """The keys ``tracejit cluster keys DIR`` wrote (see the module's layout): this
        process's pair ``name.key_secret`` (``server`` for a task, ``client<i>`` for a
        process that only connects), ``server.key`` and ``allowed/*.key``."""
        directory = Path(directory)
        try:
            public, secret = zmq.auth.load_certificate(directory / f"{name}.key_secret")
        except (OSError, ValueError) as exc:
            raise ClusterError(f"cannot read CURVE keys {directory / name}.key_secret: "
                               f"{exc}") from None
        if secret is None:
            raise ClusterError(f"{directory / name}.key_secret holds no secret key")
        server_file = directory / "server.key"
        server_public = zmq.auth.load_certificate(server_file)[0] \
            if server_file.exists() else None
        allowed_dir = directory / "allowed"
        allowed = [zmq.auth.load_certificate(p)[0]
                   for p in sorted(allowed_dir.glob("*.key"))] if allowed_dir.is_dir() else []
        return cls(public, secret, server_public, allowed)


def generate_keys(directory: str | os.PathLike, clients: int = 1) -> list[Path]:
    """Write the key layout of the module's docstring into ``directory`` (made if
    needed): the server pair, ``clients`` client pairs, ``allowed/`` and a
    ``.gitignore``; the paths written. Refuses to overwrite keys already there."""
    if clients < 0:
        raise ClusterError(f"clients={clients}: the number of client key pairs is 0 or more")
    directory = Path(directory)
    names = ["server", *(f"client{i}" for i in range(clients))]
    existing = [directory / f"{n}{ext}" for n in names for ext in (".key", ".key_secret")
                if (directory / f"{n}{ext}").exists()]
    if existing:
        raise ClusterError(f"{existing[0]} exists: {directory} already holds keys (new ones "
                           "would lock out every task that has the old); remove them or "
                           "choose another directory")
    allowed = directory / "allowed"
    allowed.mkdir(parents=True, exist_ok=True)
    written = []
    # NOTE: made in a folder only this user can read, so a secret is never readable by
    # others, not even between its creation and its chmod
    with tempfile.TemporaryDirectory(dir=directory) as private:
        for name in names:
            public, secret = (Path(p) for p in zmq.auth.create_certificates(private, name))
            secret.chmod(0o600)
            for made in (public, secret):
                os.replace(made, directory / made.name)
            shutil.copyfile(directory / public.name, allowed / public.name)
            written += [directory / public.name, directory / secret.name,
                        allowed / public.name]
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# CURVE secret keys: never commit them\n*.key_secret\n")
        written.append(ignore)
    return written


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
        # NOTE: pyzmq hands the key Z85-encoded, as load_certificate reads it
        return bytes(client_key) in self.allowed


def secure_server(socket: zmq.Socket, keys: Keys, context: zmq.Context) -> None:
    """Make ``socket`` a CURVE server that admits only ``keys.allowed`` clients."""
    if not keys.allowed:
        raise ClusterError("a server with CURVE keys needs an allow-list of client public "
                           "keys (DIR/allowed/*.key)")
    if keys.server_public is not None and keys.public != keys.server_public:
        # NOTE: clients expect server.key: a server with a client's pair answers no one
        raise ClusterError("a server serves with the cluster's server key pair: load its "
                           "keys with Keys.load(DIR) (server.key_secret), not a client's")
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
