"""The region benchmarks (benchmarks/regions.py, one_class.py) never let a held-out region into its
own training: folds are whole oceans, and no training grid overlaps a held-out one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from common import OCEANS, REGIONS, SHARED, ocean_folds  # noqa: E402

from seamountae.grid import open_grid  # noqa: E402


def test_every_region_is_held_out_once_with_its_whole_ocean():
    folds = list(ocean_folds(REGIONS))
    held = [r.name for _, held_out, _ in folds for r in held_out]
    assert sorted(held) == sorted(r.name for r in REGIONS)
    for ocean, held_out, training in folds:
        assert {r.ocean for r in held_out} == {ocean}
        assert ocean not in {r.ocean for r in training}
        assert not {r.name for r in held_out} & {r.name for r in training}
        assert len(held_out) + len(training) == len(REGIONS)
    assert [ocean for ocean, _, _ in folds] == [o for o in OCEANS if any(r.ocean == o for r in REGIONS)]


def extent(region):
    grid = open_grid(SHARED / region.file)
    x0, x1 = float(grid.x[0]), float(grid.x[-1])
    if region.lon is not None:
        x0, x1 = max(x0, region.lon[0]), min(x1, region.lon[1])
    return x0, x1, float(grid.y[0]), float(grid.y[-1])


@pytest.mark.skipif(not all((SHARED / r.file).exists() for r in REGIONS), reason="needs the real grids in ../shared/data")
def test_no_training_grid_overlaps_a_held_out_grid():
    """A training region's catalogued seamounts lie inside its grid, so disjoint grids mean that no
    held-out seamount or seafloor is trained on."""
    boxes = {r.name: extent(r) for r in REGIONS}
    for _, held_out, training in ocean_folds(REGIONS):
        for h in held_out:
            hx0, hx1, hy0, hy1 = boxes[h.name]
            for t in training:
                tx0, tx1, ty0, ty1 = boxes[t.name]
                overlap = min(hx1, tx1) > max(hx0, tx0) and min(hy1, ty1) > max(hy0, ty0)
                assert not overlap, f"{t.name} (training) overlaps {h.name} (held out)"
