"""Tests for seamountae.scoring: windowed scoring equals whole-grid scoring, streaming to netCDF equals
scoring in memory, global grids wrap at ±180°, and the vectorised pipeline equals the per-patch one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import ndimage

from conftest import model_meta, ok, run_cli
from seamountae import grid as grid_module
from seamountae import lattice, runner, scoring
from seamountae.geometry import KM_PER_DEGREE, GridGeometry
from seamountae.grid import canonical_grid, from_cf_dataset, open_grid, read_grid, write_grid
from seamountae.model import PatchAutoencoder, artifact, load_artifact, masked_error
from seamountae.patches import MAX_NAN_FRACTION, bilinear, normalise_batch, relief_batch
from seamountae.lattice import iter_score, lattice_bands, separable_bilinear
from seamountae.runner import PatchScorer

PATCH_PX = 16
FIELDS = ("elevation", "error", "score", "relief_m")


def _model(patch_px=PATCH_PX, seed=0):
    torch.manual_seed(seed)
    return PatchAutoencoder(patch_px=patch_px, latent=4, width=4).eval()


CALIBRATION = np.linspace(0.05, 1.5, 60).tolist()


def _meta(patch_km, patch_px=PATCH_PX):
    return model_meta(patch_km, patch_px, CALIBRATION)


def _terrain(shape, seed=0, smooth=4.0):
    rng = np.random.default_rng(seed)
    z = ndimage.gaussian_filter(rng.normal(size=shape), smooth) * 4000.0 - 4000.0
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(6):  # a few seamounts on the rough floor
        r0, c0 = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        z += 1500.0 * np.exp(-((yy - r0) ** 2 + (xx - c0) ** 2) / (2 * 4.0**2))
    return z.astype(np.float32)


def _holes(z, seed=1):
    """NaN holes: a block, a few scattered cells, and a ragged strip along one edge."""
    z = z.copy()
    rng = np.random.default_rng(seed)
    ny, nx = z.shape
    z[ny // 3 : ny // 3 + 9, nx // 2 : nx // 2 + 13] = np.nan
    z[rng.integers(0, ny, 40), rng.integers(0, nx, 40)] = np.nan
    z[:, :5][np.arange(5)[None, :] < (np.arange(ny) % 6)[:, None]] = np.nan
    return z


@pytest.fixture(scope="module")
def projected():
    """157 x 203 projected grid, 1 km cells, with NaN holes: odd sizes on both axes."""
    z = _holes(_terrain((157, 203)))
    return canonical_grid(z, 500_000.0 + 1000.0 * np.arange(203), 4_000_000.0 + 1000.0 * np.arange(157), False, "", "projected")


@pytest.fixture(scope="module")
def geographic():
    """1-arc-minute lon/lat grid across 30.3°N..33.7°N: four 1° latitude bands, with holes."""
    y = 30.3 + np.arange(205) / 60.0
    x = -40.0 + np.arange(181) / 60.0
    return canonical_grid(_holes(_terrain((205, 181), seed=2)), x, y, True, None, "geographic")


def score(*args, **kwargs) -> xr.Dataset:
    """These tests check one lattice: models without a pyramid have one level, shown here as (y, x) maps."""
    return scoring.score(*args, **kwargs).isel(level=0)


def _assert_same(a: xr.Dataset, b: xr.Dataset, atol=1e-5):
    """Same cells missing, values within atol. The score is a step function of the error (a rank among
    calibration errors), so where float rounding moved an error across a calibration error it may
    differ by one step; where the errors are bitwise equal the scores must be too."""
    for name in FIELDS:
        x, y = a[name].values, b[name].values
        assert np.array_equal(np.isnan(x), np.isnan(y)), name
        if name != "score":
            assert np.nanmax(np.abs(x - y), initial=0.0) <= atol, name
    same_error = a["error"].values == b["error"].values
    step = 1.0 / (len(CALIBRATION) + 1) + 1e-6
    ds = np.abs(a["score"].values - b["score"].values)
    assert np.nanmax(np.where(same_error, ds, 0.0), initial=0.0) <= atol
    assert np.nanmax(ds, initial=0.0) <= step


# ------------------------------------------------------------------------------ windowed == whole


@pytest.mark.parametrize("kind", ["projected", "geographic"])
def test_windowed_scoring_equals_whole_grid(kind, request):
    grid = request.getfixturevalue(kind)
    model, meta = _model(), _meta(24.0)
    whole = score(grid, model, meta, device="cpu", window_cells=1 << 30)
    windowed = score(grid, model, meta, device="cpu", window_cells=3000, batch_size=37)
    _assert_same(whole, windowed)
    error = whole["error"].values
    assert np.isfinite(error).mean() > 0.7 and np.isnan(error[np.isnan(grid.values)]).all()
    if kind == "geographic":
        assert len(lattice_bands(grid, 24.0 / PATCH_PX)) == 4


def test_small_windows_really_split_the_grid(projected):
    """The windowed run above must not be a whole-grid run in disguise: count its tiles."""
    model, meta = _model(), _meta(24.0)
    tiles = list(iter_score(projected, model, meta, device="cpu", window_cells=3000))
    assert len({t[0].start for t in tiles}) > 2 and len({t[1].start for t in tiles}) > 1 or len(tiles) > 3
    covered = np.zeros(projected.shape, int)
    for rows, cols, out in tiles:
        covered[rows, cols] += 1
        assert out["error"].shape == covered[rows, cols].shape
    assert (covered == 1).all()  # every cell exactly once


@pytest.mark.parametrize("kind", ["projected", "geographic"])
def test_a_region_gets_the_whole_grid_values(kind, request):
    """What a SLURM tile or a dask block scores: the cells of a region, from the whole grid's lattice."""
    grid = request.getfixturevalue(kind)
    model, meta = _model(), _meta(24.0)
    whole = score(grid, model, meta, device="cpu", window_cells=1 << 30)
    for rows, cols in ((slice(37, 101), slice(13, 150)), (slice(0, 9), slice(170, None)), (slice(150, None), slice(0, 5))):
        error = np.full(grid.shape, np.nan, np.float32)
        covered = np.zeros(grid.shape, int)
        for r, c, out in iter_score(grid, model, meta, device="cpu", window_cells=3000, rows=rows, cols=cols):
            error[r, c] = out["error"]
            covered[r, c] += 1
        assert (covered[rows, cols] == 1).all() and covered.sum() == covered[rows, cols].size
        error[np.isnan(grid.values)] = np.nan  # as the score dataset has it: no elevation, no error
        expected = whole["error"].values[rows, cols]
        assert np.array_equal(np.isnan(error[rows, cols]), np.isnan(expected))
        assert np.nanmax(np.abs(error[rows, cols] - expected), initial=0.0) <= 1e-5


def test_results_do_not_depend_on_batch_size(projected):
    model, meta = _model(), _meta(24.0)
    a = score(projected, model, meta, device="cpu", batch_size=7)
    b = score(projected, model, meta, device="cpu", batch_size=4096)
    _assert_same(a, b)


def test_stride_changes_the_lattice_not_the_cells(projected):
    model, meta = _model(), _meta(24.0)
    fine = score(projected, model, meta, stride_px=1, device="cpu")
    coarse = score(projected, model, meta, stride_px=4, device="cpu")
    assert fine["error"].shape == coarse["error"].shape == projected.shape
    assert not np.allclose(fine["error"].values, coarse["error"].values, equal_nan=True)


# ----------------------------------------------------------------- vectorised == one patch at a time


def test_vectorised_statistics_equal_the_per_patch_reference():
    """PatchScorer (fast complete-patch path and general path) == patches.normalise_batch + model + relief_batch."""
    model = _model()
    rng = np.random.default_rng(3)
    z = _terrain((157, 203))
    raw = np.stack([z[r : r + PATCH_PX, c : c + PATCH_PX] for r, c in zip(rng.integers(0, 140, 64), rng.integers(0, 185, 64))])
    raw[:3, :5, :] = np.nan  # partly missing but usable
    raw[3, :10, :] = np.nan  # too much missing
    patches = torch.from_numpy(raw)
    scorer = PatchScorer(model, "cpu", batch_size=16)
    fast = scorer(patches)
    with torch.inference_mode():
        x, valid, _ = normalise_batch(patches)
        reference = masked_error(model(x[:, None]), x[:, None], valid[:, None])
        usable = valid.flatten(1).mean(1) >= 1 - MAX_NAN_FRACTION
        reference = torch.where(usable, reference, torch.nan)
        relief = torch.where(usable, relief_batch(patches), torch.nan)
    assert torch.equal(torch.isnan(fast["error"]), torch.isnan(reference)) and torch.isnan(fast["error"][3])
    torch.testing.assert_close(fast["error"], reference, rtol=1e-4, atol=1e-5, equal_nan=True)
    torch.testing.assert_close(fast["relief_m"], relief, rtol=0, atol=0, equal_nan=True)  # the same statistic, exactly
    complete = torch.from_numpy(raw[4:])
    with torch.inference_mode():
        error, relief_fast = scorer.stats(complete, complete=True)
        slow_error, slow_relief = scorer.stats(complete, complete=False)
    torch.testing.assert_close(error, slow_error, rtol=1e-4, atol=1e-5)
    assert torch.equal(relief_fast, slow_relief)


def test_resampling_matches_scipy_bilinear():
    rng = np.random.default_rng(4)
    values = (rng.normal(size=(40, 50)) * 500 - 4500).astype(np.float32)
    values[10:13, 20:22] = np.nan
    rows, cols = np.sort(rng.uniform(0, 39, 37)), np.sort(rng.uniform(0, 49, 41))
    rows[0], cols[-1] = 0.0, 49.0  # the array's own edges are inside
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    expected = bilinear(values, rr, cc)
    got = separable_bilinear(torch.from_numpy(values), rows, cols, dtype=torch.float64).numpy()
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)


# --------------------------------------------------------------------------- streaming to netCDF


@pytest.fixture
def model_file(tmp_path):
    model, meta = _model(), _meta(24.0)
    path = tmp_path / "model.pt"
    torch.save(artifact(model, **meta), path)
    return path


@pytest.mark.parametrize("kind, suffix", [("projected", ".nc"), ("geographic", ".nc"), ("geographic", ".tif")])
def test_cli_streams_the_same_result_as_score_in_memory(kind, suffix, request, tmp_path, model_file, monkeypatch):
    """Also from a GeoTIFF grid, which the writer thread reads back while the main thread reads windows."""
    grid = request.getfixturevalue(kind)
    write_grid(grid, tmp_path / f"grid{suffix}")
    monkeypatch.setattr(lattice, "WINDOW_CELLS", 4000)  # many windows, many output tiles
    monkeypatch.setattr(lattice, "CHUNK_ROWS", 8)
    out = tmp_path / "score.nc"
    ok(run_cli(["score", tmp_path / f"grid{suffix}", "--model", model_file, "--device", "cpu", "--batch-size", "50",
                "-o", out]))
    model, meta = load_artifact(model_file)
    expected = score(read_grid(tmp_path / f"grid{suffix}"), model, meta, device="cpu", window_cells=1 << 30)
    with xr.open_dataset(out) as ds:
        streamed = from_cf_dataset(ds.load()).isel(level=0)
    _assert_same(expected, streamed)
    assert streamed.attrs["seamountae_kind"] == "score" and streamed.attrs["stride_px"] == expected.attrs["stride_px"]
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*"))
    with xr.open_dataset(out) as ds:
        assert ds["error"].encoding["zlib"] and ds["error"].encoding["chunksizes"] == (1, 8, grid.shape[1])
        assert '"batch_size": 50' in ds.attrs["seamountae_parameters"]


def test_cli_batch_size_defaults_to_auto_and_rejects_nonsense(tmp_path, projected, model_file):
    write_grid(projected, tmp_path / "grid.nc")
    ok(run_cli(["score", tmp_path / "grid.nc", "--model", model_file, "--device", "cpu", "--threads", "1", "-o", tmp_path / "a.nc"]))
    with xr.open_dataset(tmp_path / "a.nc") as ds:
        assert '"batch_size": "auto"' in ds.attrs["seamountae_parameters"]
    bad = run_cli(["score", tmp_path / "grid.nc", "--model", model_file, "--batch-size", "lots", "-o", tmp_path / "b.nc"], True)
    assert bad.exit_code == 2 and "auto" in bad.stderr and not (tmp_path / "b.nc").exists()


def test_streaming_reads_windows_not_the_whole_grid(tmp_path, projected, monkeypatch):
    """Peak memory follows the window: no read from the file is larger than a window's worth of cells."""
    write_grid(projected, tmp_path / "grid.nc")
    reads = []
    original = grid_module._GridWindows._window

    def spy(self, key):
        out = original(self, key)
        reads.append(out.size)
        return out

    monkeypatch.setattr(grid_module._GridWindows, "_window", spy)
    monkeypatch.setattr(lattice, "TILE_CELLS", 2000)  # output tiles (whose elevation is read back) small too
    monkeypatch.setattr(lattice, "CHUNK_ROWS", 8)
    judge_grid = scoring.judge_grid
    map_reads = []

    def candidates_after_the_map(*args, **kwargs):  # the candidates' pass reads blocks of rows with their halo
        map_reads.extend(reads)
        return judge_grid(*args, **kwargs)

    monkeypatch.setattr(scoring, "judge_grid", candidates_after_the_map)
    grid = open_grid(tmp_path / "grid.nc")
    model, meta = _model(), _meta(24.0)
    scoring.write_score(grid, model, meta, tmp_path / "s.nc", device="cpu", window_cells=3000)
    grid.close()
    assert map_reads and max(map_reads) < 5000 < projected.size / 6  # windows of ~3000 cells (8 x 8 centres at least)
    with xr.open_dataset(tmp_path / "s.nc") as ds:
        streamed = from_cf_dataset(ds.load())
    whole = scoring.score(projected, model, meta, device="cpu")
    _assert_same(whole.isel(level=0), streamed.isel(level=0))
    assert whole.sizes["candidate"] > 0
    xr.testing.assert_allclose(whole[[n for n in whole.data_vars if n.startswith("candidate_")]],
                               streamed[[n for n in streamed.data_vars if n.startswith("candidate_")]])


# ------------------------------------------------------------------------------------ open_grid


def test_open_grid_equals_read_grid(tmp_path):
    """Lazily opened files give read_grid's grid: flipped axes, 0..360 longitudes, depths, GeoTIFF."""
    rng = np.random.default_rng(5)
    depth = rng.uniform(100, 5000, size=(30, 72)).astype(np.float32)
    depth[4, 7] = np.nan
    depth[5, 8] = -20.0  # land once depths are turned into elevations
    ds = xr.Dataset({"z": (("lat", "lon"), depth, {"positive": "down", "units": "m"})},
                    coords={"lat": np.linspace(20, -9, 30), "lon": np.arange(72) * 5.0})  # descending, 0..355
    ds.to_netcdf(tmp_path / "depth.nc")
    write_grid(read_grid(tmp_path / "depth.nc"), tmp_path / "grid.tif")
    for name in ("depth.nc", "grid.tif"):
        eager, lazy = read_grid(tmp_path / name), open_grid(tmp_path / name)
        try:
            assert lazy.attrs == eager.attrs
            np.testing.assert_array_equal(lazy.x.values, eager.x.values)
            np.testing.assert_array_equal(lazy.y.values, eager.y.values)
            np.testing.assert_array_equal(lazy.values, eager.values)
            for r0, r1, c0, c1 in ((0, 30, 0, 72), (3, 17, 30, 42), (25, 30, 60, 72), (7, 8, 35, 37)):
                np.testing.assert_array_equal(lazy[r0:r1, c0:c1].values, eager.values[r0:r1, c0:c1])
            assert float(lazy[4, 36]) == float(eager[4, 36]) or np.isnan(eager.values[4, 36])
        finally:
            lazy.close()


# ----------------------------------------------------------------------------- longitude wrap


def test_global_grid_wraps_at_the_antimeridian():
    """A seamount straddling ±180° scores as it does when the grid is rolled to put it at 0°."""
    step = 0.5
    x = -180 + step / 2 + step * np.arange(720)
    y = -10 + step / 2 + step * np.arange(40)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    z = _terrain((40, 720), seed=6, smooth=2.0) * 0.2 - 3000.0
    dlon = (xx - 180.0 + 180.0) % 360.0 - 180.0  # degrees from the antimeridian
    z += 2500.0 * np.exp(-(dlon**2 + (yy - 0.5) ** 2) / (2 * 1.5**2))
    # Patches of 8 px with exactly 2 columns per pixel in the 0°..1° band: the lattice repeats every
    # 4 columns there, so rolling by a multiple of 4 columns moves the lattice onto itself.
    km_per_col = step * KM_PER_DEGREE * math.cos(math.radians(0.5))
    meta, model = _meta(8 * 2 * km_per_col, patch_px=8), _model(patch_px=8)
    grid = canonical_grid(z.astype(np.float32), x, y, True, None, "global")
    assert GridGeometry.of(grid).wraps
    shift = 360  # columns: 180°, a multiple of 4
    rolled = canonical_grid(np.roll(z, shift, axis=1).astype(np.float32), x, y, True, None, "rolled")
    a = score(grid, model, meta, device="cpu", window_cells=5000)
    b = score(rolled, model, meta, device="cpu")
    band = (y > 0) & (y < 1)
    for name in ("error", "relief_m", "score"):
        got, expected = np.roll(a[name].values, shift, axis=1)[band], b[name].values[band]
        assert np.isfinite(got).all(), name  # the cells at ±180° see across the seam
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 if name != "relief_m" else 1e-2, err_msg=name)
    # The seamount itself, at the seam: its relief is seen whole on both sides.
    edge = a["relief_m"].values[band][:, [0, -1]]
    assert (edge > 1500).all()


def test_regional_grid_does_not_wrap(projected, geographic):
    assert not GridGeometry.of(projected).wraps and not GridGeometry.of(geographic).wraps


# ------------------------------------------------------------------------------------- devices


def test_auto_batch_size_on_cpu_is_bounded():
    size = runner.auto_batch_size(torch.device("cpu"), 32, 16)
    assert 32 <= size <= runner.CPU_BATCH


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_matches_cpu(projected, precision):
    model, meta = _model(), _meta(24.0)
    meta = {**meta, "calibration": {**meta["calibration"], "errors": {"fp32": CALIBRATION, precision: CALIBRATION}}}
    cpu = score(projected, model, meta, device="cpu", precision="fp32")
    cuda = score(projected, model, meta, device="cuda", precision=precision)
    np.testing.assert_allclose(cuda["error"].values, cpu["error"].values, rtol=0.02, atol=2e-3)
    np.testing.assert_allclose(cuda["relief_m"].values, cpu["relief_m"].values, rtol=0, atol=1e-2)


def test_iterating_leaves_the_callers_autograd_state_alone(projected):
    tiles = iter_score(projected, _model(), _meta(24.0), device="cpu", window_cells=3000)
    next(tiles)
    assert not torch.is_inference_mode_enabled()
    tiles.close()
