"""Write tensorflow.compat.v1's public names, one ``module.name`` per line, for
``tracejit compat-report`` (tracejit/compat/v1/tf_public_names.txt).

Run once, with TensorFlow installed (not a dependency of tracejit):

    python tools/tf_public_names.py > tracejit/compat/v1/tf_public_names.txt

Modules are the top level (written ``tf``) and its public submodules, recursively
(``nn``, ``train``, ``layers``, ``errors``, ``math``, ...). A submodule counts as a module,
not as a name; everything else public in a module (functions, classes, constants,
dtypes) is a name. Left out: ``compat`` (the API again, for other versions) and
``raw_ops`` (1,400 generated kernels that TF1 scripts do not call).
"""

from __future__ import annotations

import sys
import types


SKIPPED = ("compat", "raw_ops")


def walk(module, prefix: str, seen: set, out: list) -> None:
    if id(module) in seen:
        return
    seen.add(id(module))
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        try:
            value = getattr(module, name)
        except Exception:       # noqa: BLE001 (a lazy attribute that fails to load)
            continue
        path = f"{prefix}.{name}"
        if isinstance(value, types.ModuleType):
            module_name = getattr(value, "__name__", "")
            if module_name.startswith("tensorflow") and name not in SKIPPED \
                    and module_name not in seen:
                seen.add(module_name)
                walk(value, path, seen, out)
            continue
        out.append(path)


def main() -> None:
    import tensorflow as tf
    names: list[str] = []
    walk(tf.compat.v1, "tf", set(), names)
    sys.stdout.write(f"# tensorflow.compat.v1 public names, TensorFlow {tf.__version__}\n")
    sys.stdout.write("".join(f"{n}\n" for n in names))


if __name__ == "__main__":
    main()
