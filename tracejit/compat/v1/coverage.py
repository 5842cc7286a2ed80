"""How much of ``tensorflow.compat.v1`` this package implements, by module.

``tf_public_names.txt`` (next to this file) lists TensorFlow's public names as
``tf.module.name``, generated once from TensorFlow by ``tools/tf_public_names.py``. A
name counts as implemented when ``tracejit.compat.v1`` has the same attribute path.
``tracejit compat-report`` prints the table; ``--missing MODULE`` lists what is not there.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

NAMES_FILE = Path(__file__).with_name("tf_public_names.txt")


@dataclass
class ModuleCoverage:
    module: str
    total: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def implemented(self) -> int:
        return self.total - len(self.missing)


def tensorflow_names(path: Path = NAMES_FILE) -> tuple[str, list[str]]:
    """(the header line, the names) of the shipped list."""
    lines = path.read_text().splitlines()
    header = next((ln.lstrip("# ") for ln in lines if ln.startswith("#")), "")
    return header, [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _has(root, dotted: str) -> bool:
    value = root
    for part in dotted.split(".")[1:]:        # drop the leading "tf"
        try:
            value = getattr(value, part)
        except Exception:                      # noqa: BLE001 (a missing or broken name)
            return False
    return True


def coverage(names: list[str]) -> list[ModuleCoverage]:
    """Per module (``tf``, ``tf.nn``, ...), how many names exist here and which do not."""
    root = importlib.import_module("tracejit.compat.v1")
    table: dict[str, ModuleCoverage] = {}
    for name in names:
        module = name.rsplit(".", 1)[0]
        row = table.setdefault(module, ModuleCoverage(module))
        row.total += 1
        if not _has(root, name):
            row.missing.append(name)
    return sorted(table.values(), key=lambda r: r.module)
