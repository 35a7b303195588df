"""The model that ships with seamountae, for grids that come without a catalogue to train on.

`builtin.pt` is rebuilt, byte for byte on the same kind of machine, by `make builtin-model` from
configs/builtin.toml: the Azores of sample_data/ (both halves), 12 real GEBCO 15″ grids of the real
data folder with the Kim & Wessel and Yesson catalogues, and two synthetic grids. Its model card is
in the README and in `seamountae models`.

Layer 3, arithmetic: imports layers 1-3 only.
"""

from __future__ import annotations

import math

from pathlib import Path

BUILTIN = Path(__file__).with_name("builtin.pt")
BUILTIN_NAME = "built-in"


def resolve_model(path) -> tuple[Path, bool]:
    """(the model file to use, whether it is the built-in one): `path`, or the built-in model if None."""
    if path is None:
        return BUILTIN, True
    return Path(path), False


def card(meta: dict, path) -> str:
    """What a model is and where to trust it, from its own metadata (the model card)."""
    from ..model import calibrated_precisions
    from ..patches import MIN_PATCH_CELLS

    rules, t, training = meta["candidates"], meta["threshold"], meta["training"]
    inputs = meta.get("provenance", {}).get("inputs", {})
    smallest = min([float(meta["patch_km"]) * min(meta.get("pyramid", [1.0])), *rules["window_km"]])
    coarsest_km = smallest / MIN_PATCH_CELLS
    lines = [
        f"{path}",
        f"  trained on: {training['n_seamounts']} catalogued seamounts ({training['n_patches']} patches) of "
        f"{len(inputs) or '?'} patch file(s)" + (":" if training.get("sources") else
                                                 f": {', '.join(v['path'] for v in inputs.values()) or 'unrecorded'}"),
        *(f"    {s['grid']}: {s['n_seamounts']} seamount{'s' * (s['n_seamounts'] != 1)}, {s['n_patches']} patches"
          for s in training.get("sources", [])),
        "  outlier exposure: " + (f"{training['n_outliers']} background candidates pushed towards an error of "
                                  f"{training.get('outlier_margin', 1.0):g}, weight {training['outlier_weight']:g}"
                                  if training.get("outlier_weight", 0) > 0 else "none (seamounts only)"),
        f"  calibrated on: {meta['calibration']['n_seamounts']} seamount and {meta['calibration']['n_background']} "
        f"background candidates, {training['folds']}-fold cross-fitted; map calibrated at "
        f"{', '.join(calibrated_precisions(meta))}",
        f"  evidence combined: {', '.join(meta['combiner']['names'])}",
        f"  threshold auto = {t['value']:.3f}: {t['rule']}; calibration F1 {t['f1']:.3f} (precision {t['precision']:.3f}, "
        f"recall {t['recall']:.3f}); with the autoencoder's evidence {t['f1_with_model_evidence']:.3f}, without "
        f"{t['f1_without_model_evidence']:.3f}",
        f"  candidates: summits at least {rules['min_height_m']:g} m high, {rules['separation_km']:g} km apart, "
        f"{rules['missing_buffer_km']:g} km from missing cells, judged in windows of {rules['radius_ratio']:g} basal radii "
        f"within {rules['window_km'][0]:g}-{rules['window_km'][1]:g} km; map patches {meta['patch_km']:g} km, "
        f"{meta['patch_px']} px",
        f"  grids: cells up to {coarsest_km:.1f} km (patches of {MIN_PATCH_CELLS} cells or more: about "
        f"{coarsest_km / 1.852:.1f}′ and finer); seamounts narrower than about {rules['window_km'][0] / 6:.0f} km are "
        "judged in a wider window than their own",
        "  not to be trusted: on grids coarser than that; for edifices wider than "
        f"{rules['window_km'][1] / 6:.0f} km (guyots, shields: measured in a window too small for them); next to large land "
        "and data gaps (no candidate there; small islands are seamount tops); far from the seafloor it was trained on "
        "(its score is calibrated there)",
        f"  seamountae {meta.get('seamountae_version', '?')}",
    ]
    terrain = meta.get("terrain")
    if terrain:  # older models carry no record: score then does not check
        lines.insert(-1, f"  training terrain ({terrain['n_grids']} grids): lag-1 autocorrelation "
                         f"{terrain['lag1'][0]:.3f}–{terrain['lag1'][1]:.3f}, median slope "
                         f"{math.exp(terrain['log_slope'][0]):.3g}–{math.exp(terrain['log_slope'][1]):.3g} m/km; "
                         "score warns on a grid far outside (noise, a constant, heights in km)")
    classes = meta.get("shape_classes")
    if classes:  # older models have none: their catalogues carry shape class 0
        lines.insert(-1, f"  shape classes ({len(classes['centroids'])}, silhouette {classes['silhouette']:.2f}; "
                         "medians of their training seamounts):")
        for c in classes["classes"]:
            lines.insert(-1, f"    class {c['class']}: {c['n']} seamounts, height {_g(c['median_height_m'])} m, basal radius "
                             f"{_g(c['median_basal_radius_km'])} km, closure {_g(c['median_closure'])}, elongation "
                             f"{_g(c['median_elongation'])}")
    return "\n".join(lines)


def _g(value) -> str:
    """Three significant digits, whole numbers in full (1000, not 1e+03)."""
    return "?" if value is None else f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
