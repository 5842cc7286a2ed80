"""One peer's process: ``python -m benchmarks.child --peer jax --only W1,W3 --repeat 10``.

It prints one JSON line per result on stdout (see ``harness.MARKER``); a peer whose
library is missing says "not installed" and exits 0. Each peer runs in its own process
so that one library's threads, allocator and BLAS cannot slow another down (NumPy's and
SciPy's two OpenBLAS builds in one process made an MLP step 20x slower on this machine).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import platform
import sys

from . import harness
from .workloads import SIZES, WORKLOADS, make_inputs

# peer name -> (module of this package, the top-level library it needs)
PEERS = {
    "tracejit": ("peer_tracejit", "tracejit"),
    "numpy": ("peer_numpy", "numpy"),
    "numba": ("peer_numba", "numba"),
    "jax": ("peer_jax", "jax"),
    "torch": ("peer_torch", "torch"),
    "tensorflow": ("peer_tensorflow", "tensorflow"),
}


def python_variable(peer: str) -> str:
    """The environment variable that may name another Python (a virtual environment of
    its own) to run this peer's child: TRACEJIT_TORCH_PYTHON, TRACEJIT_TF_PYTHON, ..."""
    return f"TRACEJIT_{'TF' if peer == 'tensorflow' else peer.upper()}_PYTHON"


def _load(peer: str):
    module_name, library = PEERS[peer]
    try:
        return importlib.import_module(f"benchmarks.{module_name}"), None
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == library:
            return None, ("not installed", f"not installed (import {library} failed; "
                                           f"{python_variable(peer)} may name a Python "
                                           "that has it)")
        return None, ("failed", harness.error_reason(exc))
    except Exception as exc:        # noqa: BLE001 - a broken install is a result too
        return None, ("failed", harness.error_reason(exc))


def run_peer(peer: str, workloads: list[str], repeat: int, size_name: str) -> None:
    harness.emit({"type": "hello", "peer": peer, "pid": os.getpid(),
                  "python": platform.python_version()})
    module, problem = _load(peer)
    if module is None:
        status, reason = problem
        harness.emit({"type": "peer", "peer": peer, "status": status, "reason": reason})
        return
    harness.emit({"type": "peer", "peer": peer, "status": "ok", "versions": module.versions()})
    sizes = SIZES[size_name]
    for workload in workloads:
        variants = module.VARIANTS.get(workload, {})
        missing = getattr(module, "MISSING", {}).get(workload)
        if not variants:
            status, reason = missing or ("not supported", "not implemented for this peer")
            harness.emit(harness.Result(workload, peer, peer, status, reason).to_json())
            continue
        inputs = make_inputs(workload, sizes[workload])
        count = (harness.w7_repeats(repeat) if workload == "W7" else
                 harness.w8_repeats(repeat) if workload == "W8" else repeat)
        for variant, builder in variants.items():
            result = harness.run_variant(peer, workload, variant, builder, inputs,
                                         sizes[workload], count)
            harness.emit(result.to_json())
            gc.collect()
        del inputs
        gc.collect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer", required=True, choices=sorted(PEERS))
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    args = parser.parse_args(argv)
    workloads = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    run_peer(args.peer, workloads, max(1, args.repeat), args.size)
    harness.emit({"type": "done", "peer": args.peer})
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
