"""--region: a box cut lazily out of a larger lon/lat grid with the halo its scores read, across
the antimeridian and at a grid's edge; nothing else is read, and the region's candidates are the
whole grid's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import ndimage

from conftest import model_meta, ok, run_cli
from seamountae import grid as grid_module
from seamountae import scoring
from seamountae.errors import SeamountaeError
from seamountae.geometry import GridGeometry, in_region
from seamountae.grid import canonical_grid, cut_region, from_cf_dataset, open_grid, read_grid, write_grid
from seamountae.model import PatchAutoencoder


def _global(step=0.5):
    x = -180 + step / 2 + step * np.arange(int(360 / step))
    y = -10 + step / 2 + step * np.arange(int(20 / step))
    z = -4000.0 + 300.0 * np.sin(np.radians(3 * x))[None, :] * np.cos(np.radians(20 * y))[:, None]
    return canonical_grid(z.astype(np.float32), x, y, True, None, "global")


def test_a_region_across_the_antimeridian_is_cut_with_its_halo_and_longitudes_past_180():
    grid = _global()
    cut, rows, cols = cut_region(grid, (175.0, -175.0, -3.0, 3.0), halo_km=200.0)
    lon = cut["x"].values
    assert np.all(np.diff(lon) == 0.5) and lon[0] < 175 and lon[-1] > 185  # continuous past 180, halo both sides
    inner_lon, inner_lat = lon[cols], cut["y"].values[rows]
    assert inner_lon[0] == 175.25 and inner_lon[-1] == 184.75 and inner_lat[0] == -2.75 and inner_lat[-1] == 2.75
    # Each cell is the global grid's at its longitude (modulo 360).
    at = np.searchsorted(grid["x"].values, (lon + 180.0) % 360.0 - 180.0)
    r0 = int(np.searchsorted(grid["y"].values, cut["y"].values[0]))
    np.testing.assert_array_equal(cut.values, grid.values[r0 : r0 + cut.shape[0]][:, at])
    assert not GridGeometry.of(cut).wraps and cut.attrs["region"] == "175/-175/-3/3"
    # W > E and E > 180 are the same box.
    same, rows2, cols2 = cut_region(grid, (175.0, 185.0, -3.0, 3.0), halo_km=200.0)
    np.testing.assert_array_equal(same["x"].values, lon) and (rows2, cols2) == (rows, cols)


def test_a_region_at_the_grids_edge_keeps_the_halo_inside_the_grid():
    grid = _global().isel(x=slice(0, 100))  # a regional grid, -180..-130
    cut, rows, cols = cut_region(grid, (-181.0, -175.0, -12.0, -8.0), halo_km=300.0)
    assert cut["x"].values[0] == grid["x"].values[0] and cols.start == 0 and rows.start == 0
    assert cut["x"].values[cols][-1] == -175.25 and cut["y"].values[rows][-1] == -8.25


def test_a_region_off_the_grid_or_on_a_projected_grid_is_refused_in_one_line():
    with pytest.raises(SeamountaeError, match="holds no cell of the grid") as off:
        cut_region(_global(), (0.0, 10.0, 40.0, 50.0), 10.0)
    projected = canonical_grid(np.zeros((5, 5), np.float32) - 4000, np.arange(5) * 1000.0, np.arange(5) * 1000.0, False)
    with pytest.raises(SeamountaeError, match="projected") as flat:
        cut_region(projected, (0.0, 1.0, 0.0, 1.0), 10.0)
    assert "\n" not in str(off.value) + str(flat.value)


def _seamounts(shape, seed=4):
    rng = np.random.default_rng(seed)
    z = ndimage.gaussian_filter(rng.normal(size=shape), 3.0) * 3000.0 - 4000.0
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(40):
        r0, c0 = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        z += rng.uniform(500, 2000) * np.exp(-((yy - r0) ** 2 + (xx - c0) ** 2) / (2 * rng.uniform(2, 5) ** 2))
    return z.astype(np.float32)


def _score_region(whole, meta, region, folder, monkeypatch):
    """Score `region` of `whole` (written to netCDF, opened lazily) and the whole grid in memory;
    assert every read lies in the cut and the region's candidates are the whole grid's inside it.
    Returns the region's score file."""
    write_grid(whole, folder / "grid.nc")
    torch.manual_seed(0)
    model = PatchAutoencoder(patch_px=16, latent=4, width=4).eval()
    read = []
    original = grid_module._GridWindows._window

    def spy(self, key):
        read.append((np.atleast_1d(self._rows[key[0]]), np.atleast_1d(self._cols[key[1]])))
        return original(self, key)

    monkeypatch.setattr(grid_module._GridWindows, "_window", spy)
    lazy = open_grid(folder / "grid.nc")
    cut, rows, cols = cut_region(lazy, region, scoring.reach_km(meta))
    assert not read  # cutting reads nothing
    scoring.write_score(cut, model, meta, folder / "region.nc", device="cpu", rows=rows, cols=cols)
    lazy.close()
    x, y = whole["x"].values, whole["y"].values
    in_rows = np.rint((cut["y"].values - y[0]) / (y[1] - y[0])).astype(int)  # the cut's cells in the file
    in_cols = np.rint((cut["x"].values - x[0]) / (x[1] - x[0])).astype(int) % x.size
    assert cut.size < 0.6 * whole.size  # the halo leaves part of the grid out
    for r, c in read:
        assert np.isin(r, in_rows).all() and np.isin(c, in_cols).all()
    with xr.open_dataset(folder / "region.nc") as ds:
        scored = from_cf_dataset(ds.load())
    everywhere = scoring.score(whole, model, meta, device="cpu")
    inside = in_region(everywhere["candidate_x"].values, everywhere["candidate_y"].values, region)
    assert inside.sum() >= 3
    lon = (scored["candidate_x"].values + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(lon, everywhere["candidate_x"].values[inside], rtol=1e-6)
    for name in ("candidate_y", "candidate_height_m", "candidate_error", "candidate_score"):
        np.testing.assert_allclose(scored[name].values, everywhere[name].values[inside], rtol=1e-6, err_msg=name)
    # Indexed in the region's own file.
    cx, cy = scored["candidate_col"].values.astype(int), scored["candidate_row"].values.astype(int)
    np.testing.assert_allclose(scored["x"].values[cx], scored["candidate_x"].values, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scored["y"].values[cy], scored["candidate_y"].values, rtol=0, atol=1e-9)
    return scored


def test_scoring_a_region_reads_only_it_and_its_halo_and_judges_the_whole_grids_candidates(tmp_path, monkeypatch):
    x, y = -60 + np.arange(420) / 60.0, 20 + np.arange(360) / 60.0  # 1′ cells, 7° × 6°
    whole = canonical_grid(_seamounts((360, 420)), x, y, True, None, "seamounts")
    region = (-57.0, -55.0, 22.0, 24.0)
    scored = _score_region(whole, model_meta(24.0, 16), region, tmp_path, monkeypatch)
    assert in_region(scored["x"].values, np.full(scored.sizes["x"], 23.0), region).all()
    assert (scored["y"].values >= 22.0).all() and (scored["y"].values <= 24.0).all()
    assert 119 <= scored.sizes["x"] <= 121 and 119 <= scored.sizes["y"] <= 121  # 2° of 1′ cells, edges included


def test_a_region_of_a_global_file_across_the_antimeridian_is_scored_as_the_whole_globe_scores_it(tmp_path, monkeypatch):
    step = 0.25
    x, y = -180 + step / 2 + step * np.arange(1440), -10 + step / 2 + step * np.arange(80)
    whole = canonical_grid(_seamounts((80, 1440), seed=6), x, y, True, None, "globe")
    assert GridGeometry.of(whole).wraps
    scored = _score_region(whole, model_meta(400.0, 16), (165.0, -165.0, -8.0, 8.0), tmp_path, monkeypatch)
    assert scored["x"].values[0] > 165 and scored["x"].values[-1] > 180  # past 180 across the seam


def test_cli_score_region_records_it_and_refuses_a_bad_one(tmp_path, grid_file, model_file):
    grid = read_grid(grid_file)
    x, y = grid["x"].values, grid["y"].values
    w, e = x[len(x) // 4], x[3 * len(x) // 4]
    s, n = y[len(y) // 4], y[3 * len(y) // 4]
    box = f"{w:.4f}/{e:.4f}/{s:.4f}/{n:.4f}"
    ok(run_cli(["score", grid_file, "--model", model_file, "--region", box, "-o", tmp_path / "s.nc", "--device", "cpu"]))
    with xr.open_dataset(tmp_path / "s.nc") as ds:
        assert float(ds["lon"].min()) >= w and float(ds["lon"].max()) <= e
        recorded = json.loads(ds.attrs["seamountae_parameters"])
    assert recorded["region"] == box and recorded["region_halo_km"] > 0
    bad = run_cli(["score", grid_file, "--model", model_file, "--region", "10/20/30", "-o", tmp_path / "t.nc"])
    assert bad.exit_code == 2 and "W/E/S/N" in bad.stderr and not (tmp_path / "t.nc").exists()


def test_cli_find_with_gmt_style_r_keeps_the_catalogue_inside(tmp_path, grid_file, model_file):
    grid = read_grid(grid_file)
    x, y = grid["x"].values, grid["y"].values
    w, e, s, n = x[len(x) // 5], x[4 * len(x) // 5], y[len(y) // 5], y[4 * len(y) // 5]
    out = tmp_path / "found.geojson"
    ok(run_cli(["find", grid_file, "--model", model_file, f"-R{w:.4f}/{e:.4f}/{s:.4f}/{n:.4f}", "-o", out, "--device", "cpu"]))
    points = np.array([f["geometry"]["coordinates"] for f in json.loads(out.read_text())["features"]]).reshape(-1, 2)
    assert in_region(points[:, 0], points[:, 1], (w, e, s, n)).all()


def test_a_config_gives_the_region_as_lon_min_lon_max_lat_min_lat_max_or_w_e_s_n(tmp_path, grid_file, model_file):
    grid = read_grid(grid_file)
    x, y = grid["x"].values, grid["y"].values
    box = [round(float(x[len(x) // 4]), 4), round(float(x[3 * len(x) // 4]), 4),
           round(float(y[len(y) // 4]), 4), round(float(y[3 * len(y) // 4]), 4)]
    for name, value in (("list", "[" + ", ".join(map(str, box)) + "]"), ("text", '"' + "/".join(map(str, box)) + '"')):
        config = tmp_path / f"{name}.toml"
        config.write_text(f"[score]\nregion = {value}\n")
        ok(run_cli(["score", grid_file, "--model", model_file, "--config", config, "-o", tmp_path / f"{name}.nc",
                    "--device", "cpu"]))
        with xr.open_dataset(tmp_path / f"{name}.nc") as ds:
            assert box[0] <= float(ds["lon"].min()) and float(ds["lon"].max()) <= box[1]
            assert box[2] <= float(ds["lat"].min()) and float(ds["lat"].max()) <= box[3]
    with xr.open_dataset(tmp_path / "list.nc") as a, xr.open_dataset(tmp_path / "text.nc") as b:
        assert np.array_equal(a["score"].values, b["score"].values, equal_nan=True)
    for bad in ("[1, 2, 3]", "[10, 20, 40, 30]", '"10/20/30"'):
        config = tmp_path / "bad.toml"
        config.write_text(f"[score]\nregion = {bad}\n")
        result = run_cli(["score", grid_file, "--model", model_file, "--config", config, "-o", tmp_path / "bad.nc"])
        assert result.exit_code != 0 and "bad.toml" in result.stderr and "region" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.nc").exists()


def test_a_region_scored_in_tiles_and_merged_equals_the_region_in_one_piece(tmp_path, grid_file, model_file):
    from test_cluster import assert_same_score_file

    grid = read_grid(grid_file)
    x, y = grid["x"].values, grid["y"].values
    box = f"{x[len(x) // 5]:.4f}/{x[4 * len(x) // 5]:.4f}/{y[len(y) // 8]:.4f}/{y[7 * len(y) // 8]:.4f}"
    common = ["--model", model_file, "--region", box, "--device", "cpu"]
    ok(run_cli(["score", grid_file, *common, "-o", tmp_path / "whole.nc"]))
    parts = [tmp_path / f"part{i}.nc" for i in range(2)]
    for i, part in enumerate(parts):
        ok(run_cli(["score", grid_file, *common, "--tiles", 2, "--tile-index", i, "-o", part]))
    with xr.open_dataset(parts[1]) as part:
        assert 0 < part.sizes["lat"] < 0.75 * len(y)  # a strip of the region's rows
    ok(run_cli(["merge", *parts, "-o", tmp_path / "merged.nc"]))
    assert_same_score_file(tmp_path / "whole.nc", tmp_path / "merged.nc", atol=0.0)
    with xr.open_dataset(tmp_path / "whole.nc") as a, xr.open_dataset(tmp_path / "merged.nc") as b:
        assert a.sizes["candidate"] > 0
        for name in ("candidate_row", "candidate_col", "candidate_x", "candidate_y", "candidate_score"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_a_region_scored_on_dask_workers_equals_the_region_in_one_process(tmp_path, grid_file, model_file, monkeypatch):
    """Workers cut the region themselves (the same cut, halo and indices), in blocks of the region's
    rows; to netCDF written here and to a Zarr store written by the workers, candidates included."""
    from seamountae import cluster, scorefile
    from test_cluster import _same_as_zarr, assert_same_score_file

    monkeypatch.setattr(cluster, "BLOCK_CELLS", 40 * 64)  # several blocks of rows
    monkeypatch.setattr(scorefile, "ZARR_CHUNK_ROWS", 32)
    grid = read_grid(grid_file)
    x, y = grid["x"].values, grid["y"].values
    box = f"{x[len(x) // 5]:.4f}/{x[4 * len(x) // 5]:.4f}/{y[len(y) // 8]:.4f}/{y[7 * len(y) // 8]:.4f}"
    common = ["--model", model_file, "--region", box, "--device", "cpu"]
    ok(run_cli(["score", grid_file, *common, "-o", tmp_path / "whole.nc"]))
    ok(run_cli(["score", grid_file, *common, "--scheduler", "local:2", "--threads", 1, "-o", tmp_path / "dask.nc"]))
    assert_same_score_file(tmp_path / "whole.nc", tmp_path / "dask.nc", atol=0.0)
    ok(run_cli(["score", grid_file, *common, "--scheduler", "local:2", "--threads", 1, "-o", tmp_path / "dask.zarr"]))
    _same_as_zarr(tmp_path / "whole.nc", tmp_path / "dask.zarr")
    with xr.open_dataset(tmp_path / "whole.nc") as a, xr.open_dataset(tmp_path / "dask.nc") as b, \
            xr.open_dataset(tmp_path / "dask.zarr", engine="zarr") as c:
        assert a.sizes["lon"] < len(x) and a.sizes["candidate"] > 0
        for name in ("candidate_row", "candidate_col", "candidate_x", "candidate_score"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
            np.testing.assert_array_equal(a[name].values, c[name].values, err_msg=name)


def test_dask_blocks_cover_a_region_once_on_its_files_chunk_boundaries():
    from seamountae.cluster import BLOCK_COLS, blocks

    rows, cols = slice(10, 2000), slice(7, 9000)
    found = blocks(2100, 9100, rows, cols, 32, 1024)
    covered = np.zeros((2100, 9100), int)
    for r, c in found:
        covered[r, c] += 1
        assert (r.start - rows.start) % 32 == 0 and (c.start - cols.start) % 1024 == 0  # the file's chunks, not the grid's
    assert (covered[rows, cols] == 1).all() and covered.sum() == (2000 - 10) * (9000 - 7)
    assert max(c.stop - c.start for _, c in found) <= BLOCK_COLS
