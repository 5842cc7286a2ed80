"""Slurm's compact lists: host lists (``node[01-03,07],gpu5``) and tasks per node
(``2(x3),1``), expanded the way Slurm's own ``scontrol show hostnames`` does.

>>> expand_hostlist("node[01-03,07],gpu5")
['node01', 'node02', 'node03', 'node07', 'gpu5']
>>> expand_tasks_per_node("2(x3),1")
[2, 2, 2, 1]
"""

from __future__ import annotations

import itertools
import math
import re

from tracejit.cluster.spec import ClusterError

__all__ = ["MAX_HOSTS", "expand_hostlist", "expand_tasks_per_node"]

# NOTE: a bound on expanded lists, so a typo like node[0-99999999] fails at once instead
# of building a list that fills memory.
MAX_HOSTS = 1 << 20
_TASKS_PER_NODE = re.compile(r"([0-9]+)(?:\(x([0-9]+)\))?")


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _top_level_names(text: str, what: str) -> list[str]:
    """Split at the commas outside brackets, checking the brackets pair up unnested."""
    names, start, inside = [], 0, False
    for position, char in enumerate(text):
        if char == "[":
            if inside:
                raise ClusterError(f"{what}={_shorten(text)!r} nests '[' inside '['")
            inside = True
        elif char == "]":
            if not inside:
                raise ClusterError(f"{what}={_shorten(text)!r} has a ']' without a '['")
            inside = False
        elif char == "," and not inside:
            names.append(text[start:position])
            start = position + 1
        elif char.isspace():
            raise ClusterError(f"{what}={_shorten(text)!r} has white space in it")
    if inside:
        raise ClusterError(f"{what}={_shorten(text)!r} has a '[' without a ']'")
    names.append(text[start:])
    return names


def _range_values(group: str, text: str, what: str) -> list[str]:
    """The numbers one ``[..]`` group stands for: ``01-03,7`` -> 01 02 03 7."""
    values: list[str] = []
    for part in group.split(","):
        low, dash, high = part.partition("-")
        if not (low.isascii() and low.isdigit()) or (
                dash and not (high.isascii() and high.isdigit())):
            raise ClusterError(f"{what}={_shorten(text)!r}: [{group}] has a bad range {part!r}")
        stop = int(high) + 1 if dash else int(low) + 1
        if stop <= int(low):
            raise ClusterError(f"{what}={_shorten(text)!r}: range {part!r} runs backwards")
        if len(values) + stop - int(low) > MAX_HOSTS:
            raise ClusterError(f"{what}={_shorten(text)!r} names over {MAX_HOSTS} hosts")
        # NOTE: Slurm pads every number to the width of the range's first one (01-10).
        values.extend(str(number).zfill(len(low)) for number in range(int(low), stop))
    return values


def expand_hostlist(text: str, *, what: str = "host list") -> list[str]:
    """Expand a Slurm host list, in its order; ``what`` names the list in errors
    (e.g. ``"SLURM_JOB_NODELIST"``). Several brackets in one name multiply out.

    >>> expand_hostlist("r[1-2]n[1-2]")
    ['r1n1', 'r1n2', 'r2n1', 'r2n2']
    """
    if not isinstance(text, str) or not text:
        raise ClusterError(f"{what}={text!r} is not a host list")
    hosts: list[str] = []
    for name in _top_level_names(text, what):
        if not name:
            raise ClusterError(f"{what}={_shorten(text)!r} has an empty host name")
        # NOTE: the brackets are known to pair up, so splitting at them alternates
        # literal text (even places) with range groups (odd places).
        parts = re.split(r"[\[\]]", name)
        choices = [[part] if place % 2 == 0 else _range_values(part, text, what)
                   for place, part in enumerate(parts)]
        if len(hosts) + math.prod(len(choice) for choice in choices) > MAX_HOSTS:
            raise ClusterError(f"{what}={_shorten(text)!r} names over {MAX_HOSTS} hosts")
        hosts.extend("".join(pieces) for pieces in itertools.product(*choices))
    return hosts


def expand_tasks_per_node(text: str, *, what: str = "SLURM_TASKS_PER_NODE") -> list[int]:
    """Expand Slurm's tasks-per-node list (``N`` or ``N(xM)``, comma-separated) into
    one count per node."""
    if not isinstance(text, str):
        raise ClusterError(f"{what}={text!r} is not a tasks-per-node list")
    counts: list[int] = []
    for part in text.split(","):
        match = _TASKS_PER_NODE.fullmatch(part.strip())
        if match is None or int(match[1]) < 1 or (match[2] is not None and int(match[2]) < 1):
            raise ClusterError(
                f"{what}={_shorten(text)!r} has {part!r}, which is not N or N(xM) with "
                "N, M >= 1")
        repeat = int(match[2] or 1)
        if len(counts) + repeat > MAX_HOSTS:
            raise ClusterError(f"{what}={_shorten(text)!r} names over {MAX_HOSTS} nodes")
        counts += [int(match[1])] * repeat
    return counts
