"""The ``tracejit`` command line: ``tracejit ir`` prints a function's IR, ``tracejit aot``
builds one ahead of time into a C library, ``tracejit cache``
shows or clears the compile cache, ``tracejit bench`` runs the benchmarks,
``tracejit compat-report`` counts the TF1 names tracejit.compat.v1 implements,
``tracejit board`` starts TensorBoard on a log directory,
``tracejit cluster`` makes CURVE keys and serves a task of a cluster."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import click
import numpy as np

from .ir.core import parse_tensor_type


def parse_type_spec(spec: str) -> np.ndarray:
    """``f32[128,784]`` -> a zero array of that type (only its type matters to tracing)."""
    try:
        type_ = parse_tensor_type(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return np.zeros(type_.shape, dtype=type_.dtype.np_dtype)


def load_function(target: str):
    """``path/to/file.py:function`` -> the function object."""
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise click.BadParameter(f"{target!r} should look like FILE.py:FUNCTION")
    file = Path(path)
    if not file.is_file():
        raise click.BadParameter(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"_tracejit_cli_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    try:
        return getattr(module, name)
    except AttributeError:
        raise click.BadParameter(f"{path} has no function {name!r}") from None


def parse_statics(statics) -> dict:
    """``--static NAME=VALUE`` options -> ``{NAME: the Python literal VALUE}``."""
    values = {}
    for item in statics:
        name, sep, literal = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} should look like NAME=VALUE")
        try:
            values[name] = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            raise click.BadParameter(f"{literal!r} is not a Python literal") from None
    return values


def _cpu_passes():
    """The CPU device's own passes (the device ``tracejit ir`` shows the program of)."""
    from .runtime.registry import get_device
    return get_device("cpu").passes


def stage_choices() -> list[str]:
    """Every value ``tracejit ir --stage`` takes: the traced graph, each pass of the
    pipeline, the aliases, all of them, and the CPU program's native forms."""
    from .passes.pipeline import stage_names
    return ["traced", *stage_names(_cpu_passes()), *_STAGE_ALIASES, "all", *_NATIVE_STAGES,
            PTX, PARTITIONED]


def _print_stages(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from .passes.pipeline import CLEANUP, MAX_CLEANUP_ROUNDS
    click.echo("traced")
    for name, _ in CLEANUP:
        click.echo(f"{name}  (every device; repeats while it changes the graph, at most "
                   f"{MAX_CLEANUP_ROUNDS} rounds)")
    for name, _ in _cpu_passes():
        click.echo(f"{name}  (the cpu device's own)")
    click.echo(f"aliases: {', '.join(_STAGE_ALIASES)}; the CPU program: "
               f"{', '.join(_NATIVE_STAGES)}")
    ctx.exit(0)


# "optimized": after the target-independent rewrites; "fused": after the device's passes.
_STAGE_ALIASES = {
    "optimized": lambda names: [n for n in names if n in _cleanup_names()][-1],
    "fused": lambda names: names[-1],
}


def _cleanup_names() -> set[str]:
    from .passes.pipeline import CLEANUP
    return {name for name, _ in CLEANUP}


# Stages past the IR: the CPU backend's compiled program of the whole graph.
_NATIVE_STAGES = ("llvm", "llvm-raw", "asm")
# The CUDA backend's kernels as PTX (any machine; --arch picks the GPU architecture).
PTX = "ptx"
# The graph placed over this process's devices and cut into stages (docs/runtime.md).
PARTITIONED = "partitioned"


@click.group()
def main():
    """tracejit: a tracing JIT compiler for tensor programs."""


def function_and_arguments(command):
    """The FILE.py:FUNCTION argument and the --arg / --static options of a command."""
    command = click.option("--static", "statics", multiple=True, metavar="NAME=VALUE",
                           help="A static argument as a Python literal, e.g. --static "
                                "n=3.")(command)
    command = click.option("--arg", "args", multiple=True, metavar="TYPE",
                           help="An argument type such as f32[128,784]; once per "
                                "positional argument.")(command)
    return click.argument("target")(command)


@main.command("ir")
@function_and_arguments
@click.option("--stage", default="traced", show_default=True,
              type=click.Choice(stage_choices()),
              help="Which stage to print: traced, optimized, fused, a pass name, all; "
                   "the CPU program: llvm (optimized LLVM IR), llvm-raw, asm; the GPU "
                   "kernels: ptx; or partitioned (the stages over devices, with their "
                   "transfers).")
@click.option("--arch", default="sm_90", show_default=True,
              help="The GPU architecture --stage ptx compiles for (sm_80, sm_90, ...).")
@click.option("--stages", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_stages, help="List the pipeline's stages in order and exit.")
@click.option("--locations/--no-locations", default=False,
              help="Append the user's source line to each equation.")
def ir_command(target, args, statics, stage, locations, arch):
    """Print the IR of FILE.py:FUNCTION traced for the given argument types."""
    from .ir.printer import print_graph
    from .trace.jit import JitFunction

    fun = load_function(target)
    arrays = [parse_type_spec(a) for a in args]
    static_values = parse_statics(statics)
    jitted = fun if isinstance(fun, JitFunction) else JitFunction(
        fun, static_argnames=tuple(static_values))
    graph = jitted.trace(*arrays, **static_values).graph
    if stage in _NATIVE_STAGES:
        from .codegen_cpu.host.program import Unsupported
        from .runtime.registry import get_device
        try:
            text = get_device("cpu").compiler.dump(graph, stage)
        except Unsupported as exc:
            raise click.ClickException(f"{exc}: this graph has no native program (it runs "
                                       "on the reference interpreter)") from None
        click.echo(text.rstrip("\n"))
        return
    if stage == PTX:
        from .ir.errors import TracejitError
        try:
            from .codegen_cuda.ptx import graph_ptx
            text = graph_ptx(graph, arch)
        except (TracejitError, ValueError) as exc:
            raise click.ClickException(str(exc).splitlines()[0]) from None
        click.echo(text.rstrip("\n"))
        return
    if stage == PARTITIONED:
        from .ir.errors import TracejitError
        from .passes.partition import format_partitions
        from .runtime.partitions import plan_partitions
        from .runtime.registry import get_device
        try:
            parts, _ = plan_partitions(graph, get_device())
        except TracejitError as exc:
            raise click.ClickException(str(exc).splitlines()[0]) from None
        click.echo(format_partitions(parts))
        return
    stages = [("traced", graph)]
    if stage != "traced":
        try:
            from .passes.pipeline import run_stages
        except ImportError:
            raise click.BadParameter("the optimization passes are not available") from None
        stages += [(name, g) for name, g in run_stages(graph, device_passes=_cpu_passes())
                   if name != "traced"]
        stage = _STAGE_ALIASES.get(stage, lambda names: stage)([s for s, _ in stages])
        if stage != "all":
            chosen = [s for s in stages if s[0] == stage]
            if not chosen:
                raise click.BadParameter(f"unknown stage {stage!r}; choose from "
                                         f"{', '.join(s for s, _ in stages)} or all")
            stages = chosen
    for i, (name, g) in enumerate(stages):
        if len(stages) > 1:
            click.echo(("\n" if i else "") + f"# ---- stage: {name}")
        click.echo(print_graph(g, locations=locations))


@main.command("aot")
@function_and_arguments
@click.option("-o", "--out", required=True, metavar="DIR/NAME",
              help="Where the files go and the library's name: build/digits writes "
                   "build/digits.o, .so, .h, build/main.c and build/README.")
@click.option("--target", "machine", default="host", show_default=True,
              help="host, x86-64, x86-64-v2, x86-64-v3, x86-64-v4, aarch64-linux-gnu, "
                   "aarch64-linux-android.")
@click.option("--cpu", default=None, help="A core for an aarch64 target (cortex-a72, ...).")
@click.option("--weights", type=click.Choice(["embed", "file"]), default="embed",
              show_default=True, help="Bake the weights into the library, or write them "
                                      "to NAME.weights, loaded at run time.")
def aot_command(target, args, statics, out, machine, cpu, weights):
    """Build FILE.py:FUNCTION ahead of time into a C library (see docs/aot.md)."""
    from .aot import AotError, FreezeError, LinkError, compile, parse_target
    try:
        parse_target(machine, cpu)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--target") from None
    if not args:
        raise click.UsageError("give the type of each argument: --arg f32[1,8,8,1] ...")
    fun = load_function(target)
    arrays = [parse_type_spec(a) for a in args]
    try:
        library = compile(fun, *arrays, out=out, target=machine, cpu=cpu, weights=weights,
                          **parse_statics(statics))
    except (AotError, FreezeError, LinkError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in library.files.values():
        click.echo(f"wrote {path} ({path.stat().st_size} bytes)")
    if library.note:
        click.echo(library.note)


def _megabytes(n: int) -> str:
    return f"{n / 1024 ** 2:.1f} MiB"


@main.group("cache")
def cache_group():
    """The on-disk compile cache and the tuning record."""


@cache_group.command("info")
def cache_info():
    """Where the cache is, how many entries and bytes it holds, and its cap."""
    from .codegen_cpu.host import cache_budget, tuning
    from .codegen_cpu.host.cache_budget import cache_dir
    folder = cache_dir()
    if folder is None:
        click.echo("compile cache: off (TRACEJIT_CACHE_DIR=off): in memory only")
        return
    try:
        limit = cache_budget.size_limit()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    used = cache_budget.usage(folder)
    click.echo(f"compile cache: {folder}")
    click.echo(f"entries: {used.entries}, {_megabytes(used.bytes)}")
    click.echo("cap: " + ("none" if limit is None else _megabytes(limit))
               + f" ({cache_budget.LIMIT_ENV})")
    record = tuning.record_path()
    count = len(tuning.decisions())
    click.echo(f"tuning record: {record} ({count} decisions"
               + ("" if record is not None and record.exists() else ", not written yet") + ")")


@cache_group.command("clear")
def cache_clear():
    """Delete every compiled entry and this host's tuning record."""
    from .codegen_cpu.host import cache_budget, tuning
    from .codegen_cpu.host.cache_budget import cache_dir
    folder = cache_dir()
    if folder is None:
        click.echo("compile cache: off (TRACEJIT_CACHE_DIR=off): nothing on disk")
        return
    freed = cache_budget.clear(folder)
    tuning.forget()
    click.echo(f"removed {freed.entries} entries ({_megabytes(freed.bytes)}) from {folder} "
               "and the tuning record")


@main.command("compat-report")
@click.option("--missing", "missing_in", default=None, metavar="MODULE",
              help="List the names of this module (e.g. tf.nn) that are not implemented.")
def compat_report(missing_in):
    """How many of tensorflow.compat.v1's public names tracejit.compat.v1 has, by module."""
    from .compat.v1.coverage import coverage, tensorflow_names
    header, names = tensorflow_names()
    rows = coverage(names)
    if missing_in is not None:
        row = next((r for r in rows if r.module == missing_in), None)
        if row is None:
            raise click.BadParameter(f"no module {missing_in!r}; modules: "
                                     + ", ".join(r.module for r in rows))
        click.echo("\n".join(row.missing) if row.missing else "(none missing)")
        return
    click.echo(f"tracejit.compat.v1 against {header}")
    width = max(len(r.module) for r in rows)
    for row in rows:
        click.echo(f"{row.module:<{width}}  {row.implemented:>5} / {row.total:<5} "
                   f"{100 * row.implemented / row.total:5.1f}%")
    done = sum(r.implemented for r in rows)
    total = sum(r.total for r in rows)
    click.echo(f"{'all':<{width}}  {done:>5} / {total:<5} {100 * done / total:5.1f}%")


@main.group("cluster")
def cluster_group():
    """Distributed runs: CURVE keys, and serving one task of a cluster."""


@cluster_group.command("keys")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--clients", default=1, show_default=True, type=click.IntRange(min=0),
              help="How many client key pairs to make (for processes that only connect).")
def cluster_keys(directory, clients):
    """Write a cluster's CURVE keys into DIR: the server pair, client pairs, and
    the allow-list of public keys servers admit (allowed/)."""
    from .cluster.security import generate_keys
    from .cluster.spec import ClusterError
    try:
        written = generate_keys(directory, clients)
    except (ClusterError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}" + ("  (secret, mode 0600)" if path.suffix == ".key_secret"
                                      else ""))
    click.echo(f"Every task serves with --keys {directory} (server.key_secret); a process "
               "that only connects loads its client<i>.key_secret with server.key.")
    click.echo("WARNING: never commit or share the *.key_secret files: whoever holds one can "
               "run graphs on your tasks and read or change the model.", err=True)


def _cluster_spec(text: str):
    """--cluster: a JSON object, or a file holding one."""
    from .cluster.spec import ClusterError, ClusterSpec
    try:
        if text.lstrip().startswith("{"):
            return ClusterSpec.from_json(text)
        if not Path(text).is_file():
            raise click.BadParameter(f"{text!r} is neither a JSON object nor a file",
                                     param_hint="--cluster")
        return ClusterSpec.from_json(Path(text).read_text())
    except OSError as exc:
        raise click.BadParameter(f"cannot read {text}: {exc}",
                                 param_hint="--cluster") from None
    except ClusterError as exc:
        raise click.BadParameter(str(exc), param_hint="--cluster") from None


@cluster_group.command("serve")
@click.option("--cluster", "cluster_text", required=True, metavar="JSON_OR_FILE",
              help='The cluster spec: {"ps": ["host:port"], "worker": [...]} or a file '
                   "holding it.")
@click.option("--job_name", required=True, help="This task's job.")
@click.option("--task_index", required=True, type=click.IntRange(min=0),
              help="This task's index in its job.")
@click.option("--keys", "key_dir", default=None, type=click.Path(file_okay=False),
              help="The directory `tracejit cluster keys` wrote; required off loopback.")
def cluster_serve(cluster_text, job_name, task_index, key_dir):
    """Serve one task of a cluster (a parameter server's process) until Ctrl-C."""
    from .cluster.security import Keys
    from .cluster.server import Server
    cluster = _cluster_spec(cluster_text)
    try:
        keys = Keys.load(key_dir) if key_dir is not None else None
        server = Server(cluster, job_name, task_index, keys=keys)
    except ValueError as exc:       # ClusterError, and the spec's unknown task index
        raise click.ClickException(str(exc)) from None
    click.echo(f"serving /job:{job_name}/task:{task_index} at {server.target}"
               + (" (CURVE)" if keys is not None else ""))
    try:
        server.join()
    except KeyboardInterrupt:
        click.echo("interrupted: stopping", err=True)
    finally:
        server.stop()
    click.echo(f"stopped /job:{job_name}/task:{task_index}", err=True)


# The benchmark suite's command; its implementation imports nothing until it runs.
from .bench import bench_command  # noqa: E402

main.add_command(bench_command)

# `tracejit board`: TensorBoard on a log directory (tracejit/board.py)
from .board import board_command  # noqa: E402

main.add_command(board_command)


if __name__ == "__main__":
    main()
