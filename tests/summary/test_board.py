"""`tracejit board`: TensorBoard on a log directory, bound to loopback; without the
tensorboard package, a message saying how to install it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from click.testing import CliRunner

import tracejit as tj
from tracejit.board import INSTALL_HINT, tensorboard_argv
from tracejit.cli import main


def test_tensorboard_arguments():
    assert tensorboard_argv("logs", 7000, False) == \
        ["tensorboard", "--logdir", "logs", "--port", "7000", "--host", "127.0.0.1"]
    assert tensorboard_argv("logs", 7000, True)[-1] == "--bind_all"


def test_missing_tensorboard_says_how_to_install_it(monkeypatch, tmp_path):
    # NOTE: a None entry makes `import tensorboard` raise ImportError
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    result = CliRunner().invoke(main, ["board", str(tmp_path)])
    assert result.exit_code == 1
    assert INSTALL_HINT in result.output and "pip install tensorboard" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _runs(port: int):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2) as reply:
            return json.loads(reply.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_board_serves_the_runs_on_loopback(tmp_path):
    with tj.summary.create_file_writer(tmp_path / "run1") as writer:
        writer.scalar("loss", 0.5, 1)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tracejit.cli", "board", str(tmp_path), "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        runs = None
        while time.monotonic() < deadline and process.poll() is None:
            runs = _runs(port)
            if runs:
                break
            time.sleep(0.5)
        assert runs == ["run1"], (runs, process.poll())
        with socket.socket() as other:
            # bound to 127.0.0.1 only: the port is free on the other addresses
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
            try:
                address = socket.gethostbyname(socket.gethostname())
            except OSError:
                address = None
            if address and not address.startswith("127."):
                other.bind((address, port))
    finally:
        # NOTE: SIGINT first, which TensorBoard takes as Ctrl-C and stops its data server
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        output = process.stdout.read().decode(errors="replace")
        process.stdout.close()
    assert f"http://127.0.0.1:{port}/" in output
