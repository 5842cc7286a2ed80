"""The text files of an ahead-of-time build: ``NAME.h``, an example ``main.c``, a README.

``main.c`` runs the library on inputs read from raw files (each argument's bytes, as
``NAME_arg_bytes`` says, little-endian, C order) and writes each result to a raw file,
or prints it when no file is named -- what the tests drive it with, and a template for
an application.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .c_api import ERRORS, WEIGHTS_HEADER_BYTES

__all__ = ["Buffer", "Description", "header", "example_main", "readme", "C_TYPES"]

# tracejit dtype -> the C element type of its buffers
C_TYPES = {"float32": "float", "float64": "double", "int8": "int8_t", "int16": "int16_t",
           "int32": "int32_t", "int64": "int64_t", "uint8": "uint8_t", "uint16": "uint16_t",
           "uint32": "uint32_t", "uint64": "uint64_t", "bool": "uint8_t",
           "float16": "uint16_t", "bfloat16": "uint16_t"}
_NOTES = {"bool": "0 or 1, one byte each", "float16": "IEEE half-precision bits",
          "bfloat16": "bfloat16 bits (the upper half of a float32)"}
_PRINTF = {"float": ("%.9g", "double"), "double": ("%.17g", "double"),
           "int64_t": ("%lld", "long long"), "uint64_t": ("%llu", "unsigned long long")}


@dataclass(frozen=True)
class Buffer:
    """One argument or result: its C name, shape and tracejit dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    itemsize: int

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.elements * self.itemsize

    @property
    def c_type(self) -> str:
        return C_TYPES[self.dtype]

    def describe(self) -> str:
        note = _NOTES.get(self.dtype)
        return (f"{self.dtype}{list(self.shape)}: {self.elements} x {self.c_type}"
                + (f" ({note})" if note else "") + f", {self.nbytes} bytes")


@dataclass(frozen=True)
class Description:
    """What the text files say about a build."""

    name: str
    source: str                 # what was built, for the comments
    target: str                 # the target, described
    args: tuple[Buffer, ...]
    results: tuple[Buffer, ...]
    weights_in_file: bool
    weights_bytes: int


def _macro(d: Description) -> str:
    return d.name.upper()


def header(d: Description) -> str:
    up = _macro(d)
    lines = [f"/* {d.name}.h: {d.source}, built ahead of time by tracejit for {d.target}.",
             " *",
             f" * Link {d.name}.o (add -lm) or {d.name}.so; they need only the C library and libm.",
             " * Calls are not reentrant: the library computes in one static scratch arena, so",
             " * threads calling it at the same time must take turns (a mutex). */",
             f"#ifndef {up}_H", f"#define {up}_H", "", "#include <stddef.h>",
             "#include <stdint.h>", "", "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
    lines += [f"#define {up}_{code} ({value})" for code, value in ERRORS.items()]
    lines += ["", f"#define {up}_NUM_ARGS {len(d.args)}",
              f"#define {up}_NUM_RESULTS {len(d.results)}",
              f"#define {up}_WEIGHTS_IN_FILE {int(d.weights_in_file)}"]
    for kind, buffers in (("ARG", d.args), ("RESULT", d.results)):
        for i, buf in enumerate(buffers):
            dims = ", ".join(str(n) for n in buf.shape) or "1"
            lines += ["", f"/* {kind.lower()} {i} '{buf.name}': {buf.describe()} */",
                      f"#define {up}_{kind}{i}_RANK {len(buf.shape)}",
                      f"#define {up}_{kind}{i}_SHAPE {{{dims}}}",
                      f"#define {up}_{kind}{i}_ELEMENTS {buf.elements}",
                      f"#define {up}_{kind}{i}_BYTES {buf.nbytes}"]
    params = [f"const {a.c_type} *{a.name}" for a in d.args]
    params += [f"{r.c_type} *{r.name}" for r in d.results]
    lines += ["", "/* Compute the results from the arguments (C order, no padding). Returns",
              f" * {up}_OK, or {up}_ERROR_NO_WEIGHTS when the weights live in a file and",
              " * none were loaded. Results never alias arguments. */",
              f"int {d.name}_run({', '.join(params) or 'void'});",
              "/* The same with the buffers in arrays: args[i], results[i]. */",
              f"int {d.name}_run_buffers(const void *const *args, void *const *results);",
              "", "int " + d.name + "_num_args(void);",
              "int " + d.name + "_num_results(void);",
              "/* Bytes of argument / result i; 0 for an i out of range. */",
              f"size_t {d.name}_arg_bytes(int i);",
              f"size_t {d.name}_result_bytes(int i);"]
    if d.weights_in_file:
        lines += ["", f"/* The weights ({d.weights_bytes} bytes) live in {d.name}.weights, which "
                  "must be loaded before the",
                  f" * first run: a {WEIGHTS_HEADER_BYTES}-byte header (magic, size, the build's "
                  "id) then the values.",
                  f" * load_weights reads the file ({up}_ERROR_OPEN: cannot; "
                  f"{up}_ERROR_WEIGHTS_MISMATCH: not",
                  " * this build's weights). set_weights uses the file's bytes where they are "
                  "(mapped,",
                  " * in flash): 64-byte aligned and alive as long as the library runs. */",
                  f"int {d.name}_load_weights(const char *path);",
                  f"int {d.name}_set_weights(const void *data, size_t bytes);"]
    lines += ["", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {up}_H */", ""]
    return "\n".join(lines)


def example_main(d: Description) -> str:
    """A program running the library: ``main [WEIGHTS] ARG_FILE... [RESULT_FILE...]``."""
    up, n_args = _macro(d), len(d.args)
    usage = ("WEIGHTS " if d.weights_in_file else "") + " ".join(
        f"{a.name}.bin" for a in d.args) + "".join(f" [{r.name}.bin" for r in d.results) \
        + "]" * len(d.results)
    first = 2 if d.weights_in_file else 1
    out = [f"/* main.c: runs {d.name} on arguments read from raw files and writes each result",
           " * to a raw file, or prints it when no file is named.",
           f" *   cc -O2 main.c {d.name}.o -lm -o {d.name}_main",
           f" *   ./{d.name}_main {usage} */",
           "#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>",
           f'#include "{d.name}.h"', "",
           "static void *read_file(const char *path, size_t bytes) {",
           "    FILE *f = fopen(path, \"rb\");",
           "    void *data = malloc(bytes ? bytes : 1);",
           "    if (!f || !data || fread(data, 1, bytes, f) != bytes) {",
           "        fprintf(stderr, \"cannot read %zu bytes from %s\\n\", bytes, path);",
           "        exit(1);", "    }", "    fclose(f);", "    return data;", "}", "",
           "int main(int argc, char **argv) {",
           f"    void *args[{max(n_args, 1)}], *results[{max(len(d.results), 1)}];",
           f"    int first = {first}, i;",
           f"    if (argc < first + {up}_NUM_ARGS) {{",
           f'        fprintf(stderr, "usage: %s {usage}\\n", argv[0]);', "        return 2;",
           "    }"]
    if d.weights_in_file:
        out += [f"    if ({d.name}_load_weights(argv[1]) != {up}_OK) {{",
                '        fprintf(stderr, "cannot load the weights from %s\\n", argv[1]);',
                "        return 1;", "    }"]
    out += [f"    for (i = 0; i < {up}_NUM_ARGS; i++)",
            f"        args[i] = read_file(argv[first + i], {d.name}_arg_bytes(i));",
            f"    for (i = 0; i < {up}_NUM_RESULTS; i++)",
            f"        results[i] = malloc({d.name}_result_bytes(i) + 1);",
            f"    if ({d.name}_run_buffers((const void *const *)args, results) != {up}_OK) {{",
            f'        fprintf(stderr, "{d.name}_run failed\\n");', "        return 1;", "    }",
            f"    for (i = 0; i < {up}_NUM_RESULTS; i++) {{",
            f"        int at = first + {up}_NUM_ARGS + i;",
            "        if (at < argc) {",
            "            FILE *f = fopen(argv[at], \"wb\");",
            f"            if (!f || fwrite(results[i], 1, {d.name}_result_bytes(i), f) != "
            f"{d.name}_result_bytes(i)) {{",
            '                fprintf(stderr, "cannot write %s\\n", argv[at]);',
            "                return 1;", "            }", "            fclose(f);",
            "            continue;", "        }"]
    for i, r in enumerate(d.results):
        fmt, cast = _PRINTF.get(r.c_type, ("%d", "int"))
        out += [f"        if (i == {i}) {{",
                f"            const {r.c_type} *v = results[{i}];",
                f'            printf("{r.name}:");',
                f"            for (size_t k = 0; k < {r.elements}; k++)",
                f'                printf(" {fmt}", ({cast})v[k]);',
                '            printf("\\n");', "        }"]
    out += ["    }", "    return 0;", "}", ""]
    return "\n".join(out)


def readme(d: Description, files: list[str], so_note: str) -> str:
    up = _macro(d)
    args = "\n".join(f"- argument {i} `{a.name}`: {a.describe()}" for i, a in enumerate(d.args))
    results = "\n".join(f"- result {i} `{r.name}`: {r.describe()}"
                        for i, r in enumerate(d.results))
    weights = (f"The weights ({d.weights_bytes} bytes) are in `{d.name}.weights`: call "
               f"`{d.name}_load_weights(\"{d.name}.weights\")` once before running "
               f"(`{d.name}_set_weights` takes the file's bytes where they already are)."
               if d.weights_in_file else
               f"The weights ({d.weights_bytes} bytes) are compiled into the library.")
    return f"""# {d.name}: built ahead of time by tracejit

{d.source}, compiled for {d.target}.

Files: {", ".join(f"`{f}`" for f in files)}.
{so_note}

The library needs the C library and libm only: no Python, no tracejit, no NumPy.

## Calling it

```c
#include "{d.name}.h"
int status = {d.name}_run(/* const arguments..., results... */);   /* {up}_OK is 0 */
```

{args}
{results}

Buffers are C-order arrays with no padding, in the machine's byte order. A call
computes every result; results never alias arguments. Calls are not reentrant (one
static scratch arena): threads must take turns. `{d.name}_run_buffers(args, results)`
takes arrays of pointers instead; `{d.name}_arg_bytes(i)` and
`{d.name}_result_bytes(i)` give the sizes, and `{up}_ARG<i>_SHAPE` and the other
macros of `{d.name}.h` the shapes.

{weights}

## Building a program

```sh
cc -O2 main.c {d.name}.o -lm -o {d.name}_main          # static: the object file
cc -O2 main.c ./{d.name}.so -Wl,-rpath,'$ORIGIN' -o {d.name}_main   # or the shared library
./{d.name}_main {"WEIGHTS " if d.weights_in_file else ""}{" ".join(f"{a.name}.bin" for a in d.args)}
```

`main.c` reads each argument from a raw file and prints the results (or writes them
to files named after the arguments).
"""
