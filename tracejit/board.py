"""``tracejit board LOGDIR``: TensorBoard on the event files tracejit wrote.

Runs TensorBoard in this process, on 127.0.0.1 unless ``--bind-all`` is given (a
training machine's logs should not be served to the network by default). Without the
``tensorboard`` package it says how to install it and exits with status 1.
"""

from __future__ import annotations

import os

import click

INSTALL_HINT = ("tracejit board needs TensorBoard, which is not installed here: "
                "pip install tensorboard  (or: pip install tracejit, which depends on it)")


def tensorboard_argv(logdir: str, port: int, bind_all: bool) -> list[str]:
    """TensorBoard's own command line for these options."""
    argv = ["tensorboard", "--logdir", logdir, "--port", str(port)]
    # NOTE: TensorBoard's --bind_all is a bare flag and conflicts with --host
    argv += ["--bind_all"] if bind_all else ["--host", "127.0.0.1"]
    return argv


@click.command("board")
@click.argument("logdir", type=click.Path(file_okay=False))
@click.option("--port", default=6006, show_default=True, type=click.IntRange(0, 65535),
              help="The port to serve on (0: any free one).")
@click.option("--bind-all", is_flag=True, default=False,
              help="Serve on every network interface instead of 127.0.0.1 only.")
def board_command(logdir, port, bind_all):
    """Start TensorBoard on LOGDIR (the directory given to tf.summary.FileWriter or
    tracejit.summary.create_file_writer); Ctrl-C stops it."""
    try:
        from tensorboard import program
    except ImportError:
        click.echo(INSTALL_HINT, err=True)
        raise SystemExit(1) from None
    if not os.path.isdir(logdir):
        click.echo(f"note: {logdir} does not exist yet; TensorBoard shows runs as they "
                   "appear", err=True)
    server = program.TensorBoard()
    server.configure(argv=tensorboard_argv(logdir, port, bind_all))
    raise SystemExit(server.main())
