"""AMX on the compile target and the host (host/tile_state.py): the tile features read
off a feature string or compiled in a child process, Linux's permission, and what the
target reports as runnable."""

from __future__ import annotations

import pytest

from tracejit.codegen_cpu.host import machine, target, tile_state


def tile_features_uncached(cpu, features):
    return set(tile_state.tile_features.__wrapped__(cpu, features))


@pytest.mark.parametrize("features, found", [
    ("+avx2,+amx-tile,+amx-int8,-amx-bf16", {"amx-tile", "amx-int8"}),
    ("+amx-tile,+amx-int8,+amx-bf16", {"amx-tile", "amx-int8", "amx-bf16"}),
    ("-amx-tile,+amx-int8,+amx-bf16", set()),       # no products without the tiles
    ("-amx-tile,-amx-int8,-amx-bf16,+avx512f", set()),
])
def test_a_feature_string_that_names_the_tiles_is_read(features, found):
    # a CPU name LLVM would compile AMX for: the string decides, no child is asked
    assert tile_features_uncached("sapphirerapids", features) == found


@pytest.mark.parametrize("cpu, found", [
    ("sapphirerapids", {"amx-tile", "amx-int8", "amx-bf16"}),
    ("graniterapids", {"amx-tile", "amx-int8", "amx-bf16"}),
    ("cascadelake", set()), ("znver4", set()), ("x86-64", set())])
def test_a_named_cpu_is_probed_in_a_child_process(cpu, found):
    """LLVM aborts on an AMX intrinsic for a CPU without AMX: this process survives."""
    assert tile_features_uncached(cpu, "") == found
    # a feature added to the name counts too
    if not found:
        assert tile_features_uncached(cpu, "+amx-tile,+amx-int8") == {"amx-tile", "amx-int8"}


def test_the_permission_is_asked_of_linux_and_only_granted_with_amx():
    granted = tile_state.tile_state_permitted()
    assert isinstance(granted, bool)
    assert tile_state.tile_state_permitted() is granted          # asked once
    if granted:
        assert tile_state.tile_features(*machine.host_cpu())


def test_code_for_an_amx_cpu_names_the_tiles_it_needs():
    host_tiles = tile_state.tile_features(*machine.host_cpu())
    with target.compiling_for("sapphirerapids"):
        tiles = target.target_tile_features()
        missing = target.missing_features()
    if host_tiles:
        # an AMX host: the kernels use the tiles where Linux granted them
        assert tiles == (host_tiles if tile_state.tile_state_permitted() else frozenset())
    else:
        # compiled and inspected here, refused at load: the tiles are among what is missing
        assert tiles == {"amx-tile", "amx-int8", "amx-bf16"}
        assert {"amx-tile", "amx-int8", "amx-bf16"} <= set(missing)
    with target.compiling_for("haswell"):
        assert target.target_tile_features() == frozenset()
