"""``tracejit cluster keys`` and ``tracejit cluster serve``."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracejit.cli import main
from tracejit.cluster import Keys, free_port
from tracejit.cluster.remote import Connection
from tracejit.cluster.wire import Kind, Message

REPO = Path(__file__).resolve().parents[2]


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_keys_writes_the_files_and_warns_about_secrets(tmp_path):
    folder = tmp_path / "keys"
    result = _invoke("cluster", "keys", str(folder), "--clients", "2")
    assert result.exit_code == 0, result.output
    for name in ("server.key", "server.key_secret", "client0.key", "client1.key_secret",
                 "allowed/server.key", "allowed/client1.key", ".gitignore"):
        assert (folder / name).is_file()
        assert f"wrote {folder / name}" in result.stdout
    assert f"wrote {folder / 'client0.key_secret'}  (secret, mode 0600)" in result.stdout
    assert stat.S_IMODE(os.stat(folder / "server.key_secret").st_mode) == 0o600
    assert "WARNING: never commit or share the *.key_secret files" in result.stderr
    assert not (folder / "client2.key").exists()


def test_keys_refuses_a_folder_that_has_keys_and_a_negative_count(tmp_path):
    assert _invoke("cluster", "keys", str(tmp_path)).exit_code == 0
    again = _invoke("cluster", "keys", str(tmp_path))
    assert again.exit_code == 1 and "already holds keys" in again.output
    negative = _invoke("cluster", "keys", str(tmp_path / "n"), "--clients", "-1")
    assert negative.exit_code == 2 and "--clients" in negative.output


@pytest.mark.parametrize("args, code, message", [
    (['{"ps": ["10.9.8.7:2222"]}', "ps", "0"], 1,
     "refusing to serve 10.9.8.7:2222 without CURVE keys"),
    (['{"ps": ["127.0.0.1:2222"]}', "worker", "0"], 1, "job_name 'worker' is not a job"),
    (['{"ps": ["127.0.0.1:2222"]}', "ps", "4"], 1, "no task 4 in job 'ps'"),
    (['{"ps": ["127.0.0.1:2222"]', "ps", "0"], 2, "cluster spec JSON is malformed"),
    (["no-such-file.json", "ps", "0"], 2, "'no-such-file.json' is neither a JSON object "
                                          "nor a file"),
    (['{"ps": ["127.0.0.1:2222"]}', "ps", "-1"], 2, "--task_index"),
])
def test_serve_names_what_is_wrong(args, code, message):
    cluster, job, index = args
    result = _invoke("cluster", "serve", "--cluster", cluster, "--job_name", job,
                     "--task_index", index)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_serve_without_a_keys_folder_names_the_file(tmp_path):
    result = _invoke("cluster", "serve", "--cluster", '{"ps": ["127.0.0.1:2222"]}',
                     "--job_name", "ps", "--task_index", "0", "--keys", str(tmp_path))
    assert result.exit_code == 1
    assert f"cannot read CURVE keys {tmp_path / 'server'}.key_secret" in result.output


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as status:
            return ", ".join(line.strip() for line in status
                             if line.startswith(("SigBlk", "SigIgn", "SigCgt", "State")))
    except OSError as exc:
        return f"(unreadable: {exc})"


class Serving:
    """``tracejit cluster serve`` in a subprocess, up once it says so."""

    def __init__(self, *options: str):
        # NOTE: Ctrl-C as at a terminal: a test run started in the background by a
        # non-interactive shell ignores SIGINT, and a child would inherit that
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracejit.cli", "cluster", "serve", *options], cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_default_sigint)
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(self.process.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(60)
        self.banner = found[0] if found else ""

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, then its exit status and what it wrote to stderr."""
        self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            # NOTE: say how signals stood (a SIGINT ignored or blocked is inherited
            # from the process that started the server)
            raise AssertionError(f"Ctrl-C did not stop the server: server "
                                 f"{_signal_state(self.process.pid)}; this process "
                                 f"{_signal_state(os.getpid())}") from None
        return self.process.returncode, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


def test_serve_answers_a_ping_and_stops_on_ctrl_c():
    address = f"127.0.0.1:{free_port()}"
    serving = Serving("--cluster", json.dumps({"ps": [address]}), "--job_name", "ps",
                      "--task_index", "0")
    try:
        assert serving.banner.startswith(f"serving /job:ps/task:0 at zmq://{address}")
        reply = Connection(address, "/job:ps/replica:0/task:0").request(
            Message(Kind.PING), "PING", 10_000)
        assert (reply.text["job"], reply.text["task"]) == ("ps", 0)
        code, err = serving.interrupt()
        assert code == 0, err
        assert "stopped /job:ps/task:0" in err
    finally:
        serving.kill()


def test_serve_with_keys_from_a_cluster_file(tmp_path):
    assert _invoke("cluster", "keys", str(tmp_path / "keys")).exit_code == 0
    address = f"127.0.0.1:{free_port()}"
    spec = tmp_path / "cluster.json"
    spec.write_text(json.dumps({"ps": [address], "worker": ["127.0.0.1:1"]}))
    serving = Serving("--cluster", str(spec), "--job_name", "ps", "--task_index", "0",
                      "--keys", str(tmp_path / "keys"))
    try:
        assert serving.banner.strip().endswith("(CURVE)"), serving.banner
        keys = Keys.load(tmp_path / "keys", "client0")
        reply = Connection(address, "/job:ps/replica:0/task:0", keys).request(
            Message(Kind.PING), "PING", 10_000)
        assert json.loads(reply.text["cluster"])["worker"] == ["127.0.0.1:1"]
    finally:
        serving.kill()


def test_a_session_without_a_server_connects_with_keys_from_the_environment(
        tmp_path, monkeypatch):
    import numpy as np

    import tracejit.compat.v1 as tf
    from tracejit.cluster.session import KEYS_ENV

    assert _invoke("cluster", "keys", str(tmp_path / "keys")).exit_code == 0
    address = f"127.0.0.1:{free_port()}"
    serving = Serving("--cluster", json.dumps({"ps": [address]}), "--job_name", "ps",
                      "--task_index", "0", "--keys", str(tmp_path / "keys"))
    try:
        with tf.Graph().as_default():
            y = tf.constant([1.0, 2.0]) * 3.0
            config = tf.ConfigProto(operation_timeout_in_ms=1500)
            # without keys the secured task never answers
            with pytest.raises(tf.errors.DeadlineExceededError, match="did not answer PING"):
                tf.Session(f"zmq://{address}", config=config)
            monkeypatch.setenv(KEYS_ENV, f"{tmp_path / 'keys'}:client0")
            config.operation_timeout_in_ms = 60_000     # the stage compiles there
            with tf.Session(f"zmq://{address}", config=config) as sess:
                # unpinned work runs on the target task, through the secured connection
                np.testing.assert_array_equal(sess.run(y), [3.0, 6.0])
    finally:
        serving.kill()
