"""Every parameter's one default, TOML configuration files, and the resolved configuration.

Precedence: command-line option > `--config FILE` > DEFAULTS. Option names, config keys and library
keyword arguments are the same words (`patch_km` here, `--patch-km` on the command line). The names
every stage shares (precisions, evidence) are here too, so that nothing imports a stage for them.

Layer 1, foundations: imports layer 1 only.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from .errors import SeamountaeError
from .geometry import parse_region

# The arithmetic the model's forward passes may run in (model.in_precision), fastest last.
PRECISIONS = ("fp32", "bf16", "fp16")
# The evidence a seamount score may combine ([train] evidence; evidence.evidence_table reads each
# off a candidates table): the grid's own measures, then the autoencoder's.
GRID_EVIDENCE = ("log_height", "log_steepness", "closure", "elongation")
MODEL_EVIDENCE = ("log_error", "error_contrast", "latent_distance")
EVIDENCE = GRID_EVIDENCE + MODEL_EVIDENCE
# The catalogue formats `export` and `find` write (catalogue.WRITERS).
CATALOGUE_FORMATS = ("geojson", "csv", "gmt", "kml")
# Two points this close are one seamount: matching a catalogue to a reference (`evaluate`), and
# joining catalogues that list the same edifices (`tile --catalogue A --catalogue B`).
MATCH_KM = 10.0
# How `detect` proposes seamounts (detection.py): the judged candidate summits, or the error map.
DETECT_METHODS = ("candidates", "map")

# Land up to this area is the top of a seamount: the largest single volcanic islands (Maui 1,900
# km², Oahu 1,500 km², Tahiti 1,000 km²) and every atoll lie below it; continents and large
# islands (Kyushu, Sri Lanka, Socotra at 3,600 km²) lie above and stay excluded.
ISLAND_MAX_KM2 = 2000.0

# stage → parameter → (default, comment). The comment is what `seamountae config --template` prints.
PARAMETERS: dict[str, dict[str, tuple[object, str]]] = {
    "grid": {
        "var": ("", "variable to read from a netCDF grid with several 2-D variables (empty: the only one)"),
        "depth_positive": ("auto", "true if the grid holds depth (positive down); auto reads the file's attributes"),
        "mask_land": (True, "treat cells above sea level as not seafloor"),
        "islands": (True, f"small islands (land up to {ISLAND_MAX_KM2:,.0f} km²) are the tops of seamounts that break the surface; "
                          "--no-islands: all land is missing data, and no candidate lies near it"),
        "crs": ("", "the grid's CRS (EPSG:4326, EPSG:32631…) where the file records none; empty: the file's own, or "
                    "lon/lat with a warning where its bounds can only be degrees"),
    },
    "tile": {
        "patch_km": (48.0, "reference patch width in km; the pyramid levels are multiples of it"),
        "patch_px": (32, "patch width in pixels after resampling; multiple of 8"),
        "pyramid": ([1.0], "patch widths of the score map, as multiples of patch_km (e.g. [0.5, 1, 2])"),
        "radius_ratio": (6.0, "a seamount's own patch is this many basal radii wide, within window_km (0: patch_km wide)"),
        "window_km": ([24.0, 300.0], "smallest and largest own patch width in km"),
        "min_height_m": (300.0, "a candidate summit stands at least this high above its own surroundings"),
        "separation_km": (6.0, "a candidate summit is the highest cell within this distance"),
        "missing_buffer_km": (5.0, "no candidate this close to missing cells (land, gaps): the real top may hide there"),
        "shifts_px": (1, "training patches are also cut 1..N pixels off-centre"),
        "scales": ([0.85, 1.0, 1.15], "training patches are also cut at these relative sizes"),
        "snap_km": (5.0, "move each catalogue position to the highest cell within this distance (0: keep as given)"),
    },
    "train": {
        "epochs": (40, "passes over the training patches"),
        "seed": (0, "random seed: same seed, inputs and machine give the same model"),
        "latent": (16, "size of the autoencoder's bottleneck"),
        "width": (16, "channels of the first convolution (doubled at each of the 3 levels)"),
        "batch_size": (128, "patches per optimisation step"),
        "learning_rate": (0.002, "peak learning rate of the one-cycle schedule"),
        "folds": (4, "calibration folds: each fold of the training seamounts is judged by a model trained without it"),
        "evidence": (list(GRID_EVIDENCE),
                     "the evidence the seamount score combines (see the README's evidence table); the autoencoder's: log_error, error_contrast, latent_distance"),
        "device": ("auto", "auto, cpu, cuda or cuda:N"),
        "shape_classes": (4, "shape classes the training seamounts' latent codes are grouped into (k-means; fewer than 2: none)"),
        "outlier_weight": (0.0, "outlier exposure: the weight of a second loss that pushes the training grid's background "
                                "summits to be rebuilt no better than their plane, so the model stops rebuilding the rest of "
                                "the seafloor (0: seamounts only)"),
        "outlier_margin": (1.0, "outlier exposure's target: background summits are pushed until their error (1 = rebuilt as "
                                "their plane) reaches this"),
    },
    "score": {
        "stride_px": (2, "resampled pixels between scored patch centres (never closer than the grid cells)"),
        "batch_size": ("auto", "patches per forward pass, or auto (from the device's free memory)"),
        "device": ("auto", "auto, cpu, cuda or cuda:N"),
        "precision": ("auto", "arithmetic of the model's forward passes: fp32, bf16, fp16, or auto (bf16 on CPUs with bf16 "
                              "instructions, fp16 on CUDA, else fp32); the model is calibrated at each"),
        "scheduler": ("", "score on dask: local:N, tcp://HOST:PORT or a scheduler file; empty: in this process"),
        "region": ("", "score only W/E/S/N (degrees, GMT's -R order, or in a config [lon_min, lon_max, lat_min, lat_max]; "
                       "across ±180° as W > E or E > 180), cut lazily from a larger lon/lat grid with the halo its patches "
                       "need; empty: the whole grid"),
    },
    "detect": {
        "method": ("candidates", "candidates: every candidate summit judged by the model's combined evidence; map: the seed's detector, the error map's score thresholded and clustered, one seamount per cluster"),
        "threshold": ("auto", "minimum seamount score (0..1) of a reported candidate; auto: the model's own (best F1 on its training grid), 0.5 for the map (a cell reconstructed as well as half the held-out seamounts)"),
        "min_height_m": (0.0, "report only seamounts at least this high (0: every candidate the model's rules allow)"),
        "min_separation_km": (6.0, "closest two reported summits may be; duplicates within half a basal radius merge too"),
    },
    "export": {
        "format": ("auto", "geojson, csv, gmt (whitespace columns for gmt plot) or kml (Google Earth); auto: from the output's suffix, .geojson/.json, .csv, .txt/.gmt/.xy, .kml"),
    },
    "evaluate": {
        "match_km": (10.0, "a found and a reference seamount match within this distance (km)"),
        "match_radius_factor": (0.0, "above 0: match within this factor x the reference's radius_km (at least 3 km) instead"),
        "min_height_m": (0.0, "count recall over reference seamounts at least this high (grid_relief_m, else height_m); 0: all"),
    },
}

# The [run] section of a `seamountae run` file: which files the chain reads and where it writes.
# Relative paths are relative to the config file's folder. Not part of the stage parameters.
RUN: dict[str, tuple[object, str]] = {
    "grid_train": ("", "grid holding the catalogued seamounts to learn from (tile)"),
    "catalogue": ("", "known seamounts inside grid_train: CSV, GeoJSON or GMT text"),
    "grid_search": ("", "grid to search for seamounts (score); empty: grid_train"),
    "output_dir": ("seamountae_output", "folder for every output (created if missing)"),
    "reference": ("", "optional catalogue of grid_search's seamounts: the result is evaluated against it"),
    "plot": (False, "also draw map.png (needs matplotlib: pip install seamountae[plot])"),
}


def default(stage: str, name: str):
    """One parameter's default: library functions take their keyword defaults from here."""
    value = PARAMETERS[stage][name][0]
    return tuple(value) if isinstance(value, list) else value


def defaults(stage: str) -> dict:
    return {name: value for name, (value, _) in PARAMETERS[stage].items()}


def load(path: str | Path | None) -> dict:
    """Read a TOML configuration, checking every section and key against PARAMETERS."""
    if path is None:
        return {}
    path = Path(path)
    try:
        content = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SeamountaeError(f"{path}: no such config file; print a template with `seamountae config --template`") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SeamountaeError(f"{path}: not valid TOML ({exc}); fix the file or start from `seamountae config --template`") from None
    for section, values in content.items():
        if section == "run":
            continue
        if section not in PARAMETERS or not isinstance(values, dict):
            raise SeamountaeError(f"{path}: unknown section [{section}]; known: {', '.join(PARAMETERS)}")
        unknown = set(values) - set(PARAMETERS[section])
        if unknown:
            raise SeamountaeError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} in [{section}]; see `seamountae config --template`")
        for key, value in values.items():
            problem = check(section, key, value)
            if problem:
                raise SeamountaeError(f"{path}: [{section}] {key} = {toml_value(value)}: {problem}; fix the file (see `seamountae config --template`)")
    return content


# Allowed values beyond the default's type: (test, what the user is told).
_POSITIVE = (lambda v: v > 0, "must be greater than 0")
_AT_LEAST_1 = (lambda v: v >= 1, "must be 1 or more")
_RULES: dict[tuple[str, str], tuple] = {
    ("grid", "depth_positive"): (lambda v: isinstance(v, bool) or v == "auto", "must be true, false or \"auto\""),
    ("tile", "patch_km"): _POSITIVE,
    ("tile", "patch_px"): (lambda v: v >= 8 and v % 8 == 0, "must be a multiple of 8, at least 8 (e.g. 32)"),
    ("tile", "shifts_px"): (lambda v: v >= 0, "must be 0 or more"),
    ("tile", "scales"): (lambda v: len(v) > 0 and all(s > 0 for s in v), "must be a non-empty list of positive numbers"),
    ("tile", "pyramid"): (lambda v: len(v) > 0 and all(s > 0 for s in v), "must be a non-empty list of positive numbers"),
    ("tile", "radius_ratio"): (lambda v: v >= 0, "must be 0 (off) or more"),
    ("tile", "window_km"): (lambda v: len(v) == 2 and 0 < v[0] <= v[1], "must be [smallest, largest], both positive (e.g. [24, 300])"),
    ("tile", "min_height_m"): (lambda v: v > 0, "must be greater than 0"),
    ("tile", "separation_km"): _POSITIVE,
    ("tile", "missing_buffer_km"): (lambda v: v >= 0, "must be 0 or more"),
    ("detect", "method"): (lambda v: v in DETECT_METHODS, "must be " + " or ".join(DETECT_METHODS)),
    ("detect", "min_height_m"): (lambda v: v >= 0, "must be 0 (all) or more"),
    ("detect", "min_separation_km"): (lambda v: v >= 0, "must be 0 or more"),
    ("train", "epochs"): _AT_LEAST_1,
    ("train", "latent"): _AT_LEAST_1,
    ("train", "width"): _AT_LEAST_1,
    ("train", "batch_size"): _AT_LEAST_1,
    ("train", "learning_rate"): _POSITIVE,
    ("train", "shape_classes"): (lambda v: v >= 0, "must be 0 (none) or more"),
    ("train", "outlier_weight"): (lambda v: v >= 0, "must be 0 (off) or more"),
    ("train", "outlier_margin"): _POSITIVE,
    ("train", "folds"): (lambda v: v >= 2, "must be 2 or more"),
    ("train", "evidence"): (lambda v: len(v) > 0 and len(set(v)) == len(v) and set(v) <= set(EVIDENCE),
                            "must be a non-empty list of distinct evidence names (see the README's evidence table)"),
    ("train", "device"): (lambda v: v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()),
                          "must be auto, cpu, cuda or cuda:N"),
    ("score", "stride_px"): _AT_LEAST_1,
    ("score", "batch_size"): (lambda v: v == "auto" or v >= 1, "must be \"auto\" or 1 or more"),
    ("score", "precision"): (lambda v: v == "auto" or v in PRECISIONS, "must be auto, " + ", ".join(PRECISIONS)),
    ("export", "format"): (lambda v: v in ("auto", *CATALOGUE_FORMATS), "must be auto, " + ", ".join(CATALOGUE_FORMATS[:-1]) + " or " + CATALOGUE_FORMATS[-1]),
    ("evaluate", "match_km"): _POSITIVE,
    ("evaluate", "match_radius_factor"): (lambda v: v >= 0, "must be 0 (off) or more"),
    ("evaluate", "min_height_m"): (lambda v: v >= 0, "must be 0 (all) or more"),
}
_RULES[("score", "device")] = _RULES[("train", "device")]
_RULES[("score", "scheduler")] = (
    lambda v: v == "" or (v.startswith("local:") and v[6:].isdigit() and int(v[6:]) > 0) or "://" in v or v.endswith(".json"),
    "must be empty, local:N (N ≥ 1), an address like tcp://HOST:PORT or a scheduler file *.json")


def _region_problem(value) -> str | None:
    try:
        value == "" or parse_region(value)
    except SeamountaeError as exc:
        return str(exc).split(": ", 1)[1]
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check(stage: str, key: str, value: object) -> str | None:
    """Why `value` is not allowed for parameter `stage.key` (None if it is)."""
    default = PARAMETERS[stage][key][0]
    if (stage, key) == ("detect", "threshold"):
        ok_type = isinstance(value, str) or _is_number(value)  # "auto" or a score; detection checks the range
    elif (stage, key) == ("score", "batch_size"):
        ok_type = value == "auto" or (isinstance(value, int) and not isinstance(value, bool))
    elif (stage, key) == ("grid", "depth_positive"):
        ok_type = isinstance(value, (bool, str))
    elif (stage, key) == ("score", "region"):
        ok_type = isinstance(value, str) or (isinstance(value, list) and len(value) == 4 and all(map(_is_number, value)))
        if not ok_type:
            return 'must be "W/E/S/N" or [lon_min, lon_max, lat_min, lat_max]'
        return _region_problem(value)
    elif isinstance(default, bool):
        ok_type = isinstance(value, bool)
    elif isinstance(default, int):
        ok_type = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok_type = _is_number(value)
    elif isinstance(default, list) and default and isinstance(default[0], str):
        ok_type = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif isinstance(default, list):
        ok_type = isinstance(value, list) and all(_is_number(v) for v in value)
    else:
        ok_type = isinstance(value, type(default))
    if not ok_type:
        kind = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
                list: "a list of names" if isinstance(default, list) and isinstance(default[0], str) else "a list of numbers"}
        return f"must be {kind.get(type(default), type(default).__name__)}"
    rule = _RULES.get((stage, key))
    if rule and not rule[0](value):
        return rule[1]
    return None


def resolve(stage: str, config_file: str | Path | None, given: dict) -> dict:
    """Defaults, overridden by the config file's [stage] section, overridden by options given (not None).

    Every value is checked (type and range); a bad one raises SeamountaeError naming the option or
    the config file's key.
    """
    resolved = defaults(stage)
    resolved.update(load(config_file).get(stage, {}))
    for key, value in given.items():
        if value is None or key not in resolved:
            continue
        problem = check(stage, key, value)
        if problem:
            raise SeamountaeError(f"--{key.replace('_', '-')} {toml_value(value)}: {problem}")
        resolved[key] = value
    for key, value in resolved.items():
        if isinstance(PARAMETERS[stage][key][0], float) and _is_number(value):
            resolved[key] = float(value)  # TOML's `48` for a float parameter
    return resolved


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def template() -> str:
    """The defaults as a commented TOML file (configs/default.toml is this text)."""
    lines = ["# seamountae configuration: every parameter with its default.",
             "# Use with `--config FILE` on any command; command-line options override the file.", ""]
    for stage, params in PARAMETERS.items():
        lines.append(f"[{stage}]")
        for name, (value, comment) in params.items():
            lines.append(f"# {comment}")
            lines.append(f"{name} = {toml_value(value)}")
        lines.append("")
    lines += ["# `seamountae run FILE` runs the whole chain (tile, train, score, detect, export, evaluate) on",
              "# the files named in a [run] section; relative paths are relative to FILE's folder. Example:",
              "# [run]"]
    for name, (value, comment) in RUN.items():
        lines.append(f"# # {comment}")
        example = {"grid_train": "train_grid.nc", "catalogue": "train_seamounts.csv", "grid_search": "search_grid.nc"}
        lines.append(f"# {name} = {toml_value(example.get(name, value))}")
    lines.append("")
    return "\n".join(lines)
