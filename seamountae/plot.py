"""Maps for people: the hillshaded bathymetry with the seamounts found, beside the autoencoder's error map.

Left, the grid as a hillshade, with each detected seamount (a judged candidate summit) circled and
numbered by its catalogue id; right, the autoencoder's view: its reconstruction error (low where the
terrain looks like the training seamounts), shaded by the same relief, with the seamounts'
footprints outlined. The map is a picture, not the detector: the catalogue comes from judging
candidate summits with the combined evidence, and no threshold on this map makes it. With a reference catalogue, the
detections it confirms, the ones it lacks and the reference seamounts missed get their own
colours, and the title gives precision and recall.

matplotlib is an optional dependency (`pip install seamountae[plot]`), imported only when a map is
drawn. The figure is drawn on a bare `matplotlib.figure.Figure` (no pyplot), so drawing never
touches a notebook's or a GUI's own figures and needs no display.

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .detection import elevation_grid
from .errors import SeamountaeError
from .geometry import GridGeometry

MAX_CELLS = 1_200_000  # cells per panel; larger grids are decimated for drawing
MAX_LABELS = 400  # above this many seamounts, ids would be an unreadable carpet: circles only
LAND = (0.80, 0.77, 0.70)
DEPTH_COLOURS = ["#0a1a35", "#133a6e", "#1d619c", "#3288b8", "#62aecb", "#a7d6df"]
COLOURS = {"found": "#ffc20a", "confirmed": "#3ddc84", "new": "#ff8c1a", "missed": "#ff3b3b", "other": "#d0d0d0"}


def require_matplotlib():
    """The matplotlib module, or a one-line error saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise SeamountaeError("drawing a map needs matplotlib, which is not installed; "
                              "install it with: pip install 'seamountae[plot]'") from None
    return matplotlib


# ----------------------------------------------------------------------------------------- reading


def _open_seamountae(path, kind: str, producer: str):
    """A seamountae netCDF output opened lazily (a score map may be larger than memory)."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise SeamountaeError(f"{path}: no such file; run `seamountae {producer}` first")
    try:
        ds = xr.open_dataset(path, engine="netcdf4")
    except Exception as exc:
        raise SeamountaeError(f"{path}: not a readable netCDF file ({type(exc).__name__}); "
                              f"give the output of `seamountae {producer}`") from None
    found = ds.attrs.get("seamountae_kind")
    if found != kind:
        ds.close()
        what = f"a seamountae {found} file" if found else "not a seamountae file"
        raise SeamountaeError(f"{path}: {what}, expected {kind}; give the output of `seamountae {producer}`")
    return ds


def _decimation(shape, max_cells: int) -> int:
    return max(1, math.ceil(math.sqrt(shape[0] * shape[1] / max_cells)))


def read_scores(path, max_cells: int = MAX_CELLS):
    """(dataset with elevation, error on dims y, x ascending — decimated to at most max_cells —, step)."""
    from .grid import from_cf_dataset

    with _open_seamountae(path, "score", "score") as ds:
        scores = from_cf_dataset(ds)
        step = _decimation((scores.sizes["y"], scores.sizes["x"]), max_cells)
        scores = scores[["elevation", "error"]].isel(y=slice(None, None, step), x=slice(None, None, step)).load()
    error = scores["error"]
    levels = 1
    if error.ndim > 2:  # one error map per patch width (a pyramid): the best fit at any width, per cell
        values = error.transpose(..., "y", "x").values
        levels = int(np.prod(values.shape[:-2]))
        best = np.fmin.reduce(values.reshape(levels, *values.shape[-2:]), axis=0)  # NaN only where every level is
        scores = scores.drop_vars("error").assign(error=(("y", "x"), best))
    scores.attrs["plot_levels"] = levels
    return scores, step


def read_detections(path, step: int = 1):
    """(table with id, x, y in grid coordinates + lon/lat, cluster map or None) from DETECTIONS.nc or a catalogue."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            netcdf = handle.read(4).startswith((b"\x89HDF", b"CDF"))
    except OSError:
        netcdf = False  # read_catalogue says what is wrong with the path
    if not netcdf:
        return _catalogue_table(path), None
    from .detection import table_from_detections

    with _open_seamountae(path, "detections", "detect") as ds:
        table = table_from_detections(ds)
        table["x"], table["y"] = ds["seamount_x"].values, ds["seamount_y"].values
        cluster = ds["cluster"][::step, ::step].values  # on the CF grid, same orientation as the score file's
        ydim = ds["cluster"].dims[0]
        if ds[ydim].values.size > 1 and ds[ydim].values[0] > ds[ydim].values[-1]:
            cluster = cluster[::-1]
    return table, cluster


def _catalogue_table(path):
    from .catalogue import read_catalogue

    table = read_catalogue(path).copy()
    table["x"], table["y"] = table["lon"], table["lat"]
    return table


def _to_grid_xy(table: pd.DataFrame, scores) -> pd.DataFrame:
    """Catalogue lon/lat into the score grid's coordinates (projected grids, and 0..360 longitudes)."""
    x, y = GridGeometry.of(scores).from_lonlat(table["lon"].to_numpy(float), table["lat"].to_numpy(float))
    return table.assign(x=x, y=y)


# ----------------------------------------------------------------------------------------- drawing


def _cell_metres(scores) -> tuple[float, float, float]:
    """(dx_m, dy_m, aspect): cell size in metres and the axes' aspect (y units per x unit on screen)."""
    geometry = GridGeometry.of(scores)
    dy_km, dx_km = geometry.cell_size_km()
    return dx_km * 1000.0, dy_km * 1000.0, (dy_km / geometry.dy) / (dx_km / geometry.dx)


def _robust_range(values: np.ndarray, low: float, high: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low, high])
    return (float(lo), float(hi)) if hi > lo else (float(lo) - 1.0, float(lo) + 1.0)


def _hillshade(elevation: np.ndarray, dx_m: float, dy_m: float):
    """(RGB of the north-up hillshaded bathymetry, intensity for shading other maps, colour norm, cmap)."""
    from matplotlib.colors import LightSource, LinearSegmentedColormap, Normalize

    from scipy import ndimage

    z = elevation[::-1]  # north up: the light comes from the north-west as on every map
    missing = ~np.isfinite(z)
    if missing.all():
        filled = np.zeros_like(z)
    elif missing.any():  # each gap takes its nearest valid value: no false cliffs around land and holes
        nearest = ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
        filled = z[tuple(nearest)]
    else:
        filled = z
    light = LightSource(azdeg=315, altdeg=40)
    cmap = LinearSegmentedColormap.from_list("seamountae_depth", DEPTH_COLOURS)
    norm = Normalize(*_robust_range(z, 1, 99.5))
    # Relief of a few km over hundreds of km: exaggerate so that seamount flanks catch the light.
    exaggeration = 15.0
    rgb = light.shade(filled, cmap=cmap, norm=norm, blend_mode="soft", vert_exag=exaggeration, dx=dx_m, dy=dy_m)[..., :3]
    intensity = light.hillshade(filled, vert_exag=exaggeration, dx=dx_m, dy=dy_m)
    rgb[missing] = LAND
    return rgb, intensity, missing, norm, cmap


def _error_image(error: np.ndarray, intensity: np.ndarray, missing: np.ndarray):
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    e = error[::-1]
    cmap = colormaps["magma_r"]
    # The error's own spread, not 0..max: a poorly fitting model still shows where it fits best.
    norm = Normalize(*_robust_range(e, 1, 99))
    rgb = cmap(norm(np.where(np.isfinite(e), e, 0.0)))[..., :3]
    # The relief's light and shadow on the error colours: the error map stays readable as terrain.
    rgb = np.clip(rgb * (0.55 + 0.6 * intensity[..., None]), 0, 1)
    rgb[~np.isfinite(e)] = 0.35
    rgb[missing] = LAND
    return rgb, norm, cmap


def _classify(found: pd.DataFrame | None, reference: pd.DataFrame | None, match: dict, grid: xr.DataArray):
    """Marker groups: confirmed / new detections, missed / other reference seamounts; and the
    evaluation, whose recall counts the reference inside the searched grid (as `evaluate` does), so
    a global census can be the reference."""
    if reference is None:
        return {"found": found}, None
    from .evaluation import evaluate, match_catalogues

    found = found if found is not None else pd.DataFrame({"lon": [], "lat": [], "x": [], "y": []})
    result = evaluate(found, reference, **match, grid=grid)
    pairs = match_catalogues(found, reference, match.get("match_km"), match.get("match_radius_factor"))
    confirmed = np.zeros(len(found), bool)
    confirmed[pairs["found_index"].to_numpy()] = True
    matched_ref = np.zeros(len(reference), bool)
    matched_ref[pairs["reference_index"].to_numpy()] = True
    missed = np.zeros(len(reference), bool)
    missed[[m["index"] for m in result["misses"]]] = True
    # Of the rest of the reference, what lies on the map: a global census holds tens of thousands more.
    x, y = reference["x"].to_numpy(float), reference["y"].to_numpy(float)
    on_map = (x >= float(grid.x.min())) & (x <= float(grid.x.max())) & (y >= float(grid.y.min())) & (y <= float(grid.y.max()))
    groups = {"confirmed": found[confirmed], "new": found[~confirmed], "missed": reference[missed],
              "other": reference[~matched_ref & ~missed & on_map]}
    return groups, result


def draw_map(score_path, detections_path=None, reference_path=None, match_km: float | None = None,
             match_radius_factor: float | None = None, min_height_m: float | None = None,
             max_cells: int = MAX_CELLS, dpi: int = 150):
    """The map as a matplotlib Figure (see the module's description)."""
    require_matplotlib()
    import matplotlib.patheffects as effects
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    scores, step = read_scores(score_path, max_cells)
    found, cluster = read_detections(detections_path, step) if detections_path is not None else (None, None)
    if found is not None and cluster is None:
        found = _to_grid_xy(found, scores)
    reference = _to_grid_xy(_catalogue_table(reference_path), scores) if reference_path is not None else None
    match = {"match_km": match_km, "match_radius_factor": match_radius_factor, "min_height_m": min_height_m}
    groups, result = _classify(found, reference, match, elevation_grid(scores))

    x, y = scores.x.values, scores.y.values
    half_x = (x[1] - x[0]) / 2 if x.size > 1 else 0.5
    half_y = (y[1] - y[0]) / 2 if y.size > 1 else 0.5
    extent = (x[0] - half_x, x[-1] + half_x, y[0] - half_y, y[-1] + half_y)
    dx_m, dy_m, aspect = _cell_metres(scores)
    elevation = scores["elevation"].values.astype(np.float64)
    shaded, intensity, missing, depth_norm, depth_cmap = _hillshade(elevation, dx_m * step, dy_m * step)
    error_rgb, error_norm, error_cmap = _error_image(scores["error"].values.astype(np.float64), intensity, missing)

    # Panel shape on paper: the grid's extent in km; side by side when tall, stacked when wide.
    ratio = (extent[3] - extent[2]) * aspect / max(extent[1] - extent[0], 1e-12)  # height / width
    stacked = ratio < 0.75
    # Room around the panels (inches): labels and ticks on the left, colour bars, legend and title.
    if stacked:
        panel_w = min(11.0, 6.0 / ratio)
        figsize = (panel_w + 1.0, 2 * panel_w * ratio + 3.4)
    else:
        panel_h = min(9.0, 6.5 * ratio)
        figsize = (2 * panel_h / ratio + 2.0, panel_h + 2.3)
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    axes = fig.subplots(2, 1) if stacked else fig.subplots(1, 2)
    geographic = bool(int(scores.attrs.get("geographic", 0)))

    # Smooth when a cell covers several screen pixels, filtered when many cells share one.
    smooth = "bilinear" if max(elevation.shape) < 1000 else "antialiased"
    axes[0].imshow(shaded, extent=extent, origin="upper", interpolation=smooth)
    axes[0].set_title("Bathymetry and the seamounts found (judged candidate summits)", fontsize=11, loc="left")
    axes[1].imshow(error_rgb, extent=extent, origin="upper", interpolation=smooth)
    levels = int(scores.attrs.get("plot_levels", 1))
    axes[1].set_title("The autoencoder's view: reconstruction error (low = seamount-like to it" +
                      (f"; the best of {levels} patch widths)" if levels > 1 else ")"), fontsize=11, loc="left")
    if cluster is not None and cluster.shape == elevation.shape and (cluster > 0).any():
        axes[1].contour(x, y, (cluster > 0).astype(float), levels=[0.5], colors=["#29d3ff"], linewidths=0.5, alpha=0.85)
    from matplotlib.cm import ScalarMappable

    bar = fig.colorbar(ScalarMappable(depth_norm, depth_cmap), ax=axes[0], orientation="horizontal",
                       shrink=0.8, pad=0.01, aspect=40)
    bar.set_label("elevation (m)")
    bar = fig.colorbar(ScalarMappable(error_norm, error_cmap), ax=axes[1], orientation="horizontal",
                       shrink=0.8, pad=0.01, aspect=40)
    bar.set_label("fraction of patch variance the model cannot reconstruct")

    n_markers = sum(len(g) for g in groups.values() if g is not None)
    size = 34 if n_markers < 150 else 22
    outline = [effects.withStroke(linewidth=1.6, foreground="black")]
    legend = []
    styles = {
        "found": dict(marker="o", facecolors="none", linewidths=1.1, label="seamount found (id)"),
        "confirmed": dict(marker="o", facecolors="none", linewidths=1.1, label="found, in the reference (id)"),
        "new": dict(marker="o", facecolors="none", linewidths=1.1, label="found, not in the reference (id)"),
        "missed": dict(marker="^", facecolors="none", linewidths=1.1, label="reference seamount missed"),
        "other": dict(marker="^", facecolors="none", linewidths=0.7, label="reference, below the height counted"),
    }
    for name, group in groups.items():
        if group is None or not len(group):
            continue
        style = dict(styles[name])
        label = style.pop("label")
        for k, ax in enumerate(axes):
            ax.scatter(group["x"], group["y"], s=size, edgecolors=COLOURS[name], zorder=3, **style)
            if k == 0 and name in ("found", "confirmed", "new") and "id" in group and len(group) <= MAX_LABELS:
                for gx, gy, gid in zip(group["x"], group["y"], group["id"]):
                    ax.annotate(str(gid), (gx, gy), xytext=(3, 3), textcoords="offset points", fontsize=5.5,
                                color="white", path_effects=outline, zorder=4, annotation_clip=True)
        legend.append(Line2D([], [], marker=style["marker"], linestyle="none", markerfacecolor="none",
                             markeredgecolor=COLOURS[name], markersize=7, label=f"{label}: {len(group)}"))
    if cluster is not None and (cluster > 0).any():
        legend.append(Line2D([], [], color="#29d3ff", linewidth=1.0, label="footprint of each seamount found"))
    if missing.any():
        from matplotlib.patches import Patch

        legend.append(Patch(facecolor=LAND, edgecolor="none", label="land or no data"))
    for ax in axes:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect(aspect)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("longitude (°E)" if geographic else "x (m)", fontsize=9)
        ax.set_ylabel("latitude (°N)" if geographic else "y (m)", fontsize=9)
    if legend:
        fig.legend(handles=legend, loc="outside lower center", ncol=min(3, len(legend)), fontsize=8, frameon=False)
    title = Path(score_path).name
    if found is not None:
        title += f" — {len(found)} seamounts found"
    if result is not None:
        target = f"reference ≥ {min_height_m:g} m" if min_height_m else "every reference seamount"
        title += (f" — precision {result['precision']:.2f}, recall {result['recall']:.2f} "
                  f"({target}, {result['parameters']['match_km'] or result['parameters']['match_radius_factor']:g}"
                  f"{' km' if result['parameters']['match_km'] else ' × radius'} match)")
    if step > 1:
        title += f" — drawn at 1/{step} resolution"
    fig.suptitle(title, fontsize=11)
    # What each layer is, in words, for the PNG's Description (plot_file): the figure read without eyes.
    fig.description = "; ".join([f"left: {axes[0].get_title(loc='left')}", f"right: {axes[1].get_title(loc='left')}",
                                 *(f"legend: {item.get_label()}" for item in legend)])
    return fig
