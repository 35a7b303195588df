"""Seamount catalogues: reading CSV / GeoJSON / GMT text, selecting by region, writing GeoJSON / CSV / GMT / KML.

A catalogue is a pandas DataFrame whose first two columns are float64 `lon`, `lat` (for a projected
grid they hold x/y in the grid's CRS; nothing here cares), followed by every other column of the
source with lower-cased names.

Layer 2, files: imports layers 1-2 only.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .config import CATALOGUE_FORMATS
from .errors import SeamountaeError
from .geometry import EARTH_RADIUS_KM, chord_km, longitude_near, unit_vectors
from .outputs import atomic_output

log = logging.getLogger("seamountae")

LON_NAMES = ("lon", "long", "lng", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")
COORD_DECIMALS = 7  # 1e-7 degree is about 1 cm: finer digits are noise
OTHER_DECIMALS = 3
NO_COLUMNS = (
    "no longitude/latitude columns found (looked for lon, longitude, x / lat, latitude, y); "
    "rename the columns or use GMT text with lon lat first"
)


def wrap_lon(lon):
    """Longitudes to -180..180; +180 stays +180 (not -180) so a box ending at the dateline keeps it."""
    values = np.asarray(lon, dtype=float)
    wrapped = (values + 180.0) % 360.0 - 180.0
    wrapped = np.where((wrapped == -180.0) & (values > 0), 180.0, wrapped)
    if isinstance(lon, pd.Series):
        return pd.Series(wrapped, index=lon.index, name=lon.name)
    return wrapped if wrapped.ndim else float(wrapped)


# ----------------------------------------------------------------------------------------- reading


def read_catalogue(path) -> pd.DataFrame:
    """Read a catalogue from CSV (header naming lon/lat), GeoJSON Points, or GMT lon-lat text."""
    path = Path(path)
    if not path.exists():
        raise SeamountaeError(f"{path}: catalogue file not found; check the path")
    if path.is_dir():
        raise SeamountaeError(f"{path}: is a folder, not a catalogue file; give the CSV/GeoJSON file inside it")
    text = _read_text(path)
    if not text.strip():
        raise SeamountaeError(f"{path}: catalogue file is empty; give a file with lon/lat rows")
    if path.suffix.lower() in (".geojson", ".json") or text.lstrip().startswith("{"):
        return _read_geojson(path, text)
    # Comments (#), GMT segment headers (>) and blank lines carry no rows; keep line numbers for errors.
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith(("#", ">"))
    ]
    if not lines:
        raise SeamountaeError(f"{path}: catalogue file is empty (only comments); give a file with lon/lat rows")
    first = re.split(r"[\s,;]+", lines[0][1].strip())[0]
    if _is_number(first):
        return _census_columns(_read_gmt(path, lines))
    start = _header_line(lines)
    if start:
        log.debug("%s: skipped %d lines of text before the header", path, start)
    return _census_columns(_read_csv(path, lines[start:]))


def _header_line(lines: list[tuple[int, str]]) -> int:
    """Index of the header in `lines`: census files as distributed (Kim & Wessel's) open with free
    text; the header is the first line naming a longitude and a latitude column with a data row
    after it (0 if none is: the first line is then the header, and its error says what is missing)."""
    for i, (_, line) in enumerate(lines[:-1]):
        names = {t.lower() for t in re.split(r"[\s,;]+", line.strip())}
        following = re.split(r"[\s,;]+", lines[i + 1][1].strip())[0]
        if names & set(LON_NAMES) and names & set(LAT_NAMES) and _is_number(following):
            return i
    return 0


def _census_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The columns the rest of seamountae reads, from a census file's own: `height_m` from `height`
    (metres in the Kim & Wessel and Yesson et al. catalogues), `radius_km` from the basal ellipse's
    `major` and `minor` axes (km; the radius of a disc of the ellipse's area)."""
    if "height" in table.columns and "height_m" not in table.columns:
        table["height_m"] = pd.to_numeric(table["height"], errors="coerce")
    if {"major", "minor"} <= set(table.columns) and "radius_km" not in table.columns:
        axes = table[["major", "minor"]].apply(pd.to_numeric, errors="coerce")
        table["radius_km"] = 0.5 * np.sqrt(axes["major"] * axes["minor"])
    return table


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SeamountaeError(f"{path}: cannot read ({exc.strerror or exc}); check its permissions") from None
    # NUL bytes never occur in text; a grid or zip handed over by mistake is caught here.
    if b"\0" in data[:65536]:
        raise SeamountaeError(
            f"{path}: looks like a binary file (a grid?), not a catalogue; give a CSV, GeoJSON or GMT text file"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # old census files are often Latin-1; that is still text
        controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\t\r\n" or 127 <= ord(ch) < 160)
        if controls > 0.01 * min(len(text), 65536):
            raise SeamountaeError(
                f"{path}: looks like a binary file, not a catalogue; give a CSV, GeoJSON or GMT text file"
            ) from None
        return text


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_csv(path: Path, lines: list[tuple[int, str]]) -> pd.DataFrame:
    header = lines[0][1]
    # Sniff the delimiter from the header: names never contain separators, data may (quoted text).
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    sep = max(counts, key=counts.get)
    sep = sep if counts[sep] else r"\s+"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            table = pd.read_csv(
                io.StringIO("\n".join(line for _, line in lines)),
                sep=sep,
                skipinitialspace=True,
                index_col=False,  # a short header must not turn the first column into the index
                engine="python" if sep == r"\s+" else "c",
            )
        for warning in caught:  # e.g. rows longer than the header: say so through our logger
            log.warning("%s: %s", path, " ".join(str(warning.message).split()))
    except (pd.errors.ParserError, ValueError) as exc:
        message = " ".join(str(exc).split())
        raise SeamountaeError(
            f"{path}: cannot parse as CSV ({message}); fix the file or save it as plain CSV"
        ) from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    repeated = sorted({c for c in table.columns if list(table.columns).count(c) > 1})
    if repeated:
        raise SeamountaeError(f"{path}: column name(s) {', '.join(repeated)} appear more than once (case is ignored); "
                              "rename the columns so each is unique")
    lon_col = next((c for c in LON_NAMES if c in table.columns), None)
    lat_col = next((c for c in LAT_NAMES if c in table.columns), None)
    if lon_col is None or lat_col is None:
        raise SeamountaeError(f"{path}: {NO_COLUMNS}")
    rows = [number for number, _ in lines[1:]]
    named_geographic = lon_col != "x"
    return _finish(path, table, lon_col, lat_col, rows, named_geographic)


def _read_gmt(path: Path, lines: list[tuple[int, str]]) -> pd.DataFrame:
    # GMT text is whitespace separated (commas are allowed too); rows may have ragged trailing text.
    first = lines[0][1]
    sep = "," if "," in first else ";" if ";" in first else None
    rows = [[token.strip() for token in line.strip().split(sep)] for _, line in lines]
    width = max(len(r) for r in rows)
    if width < 2:
        raise SeamountaeError(f"{path}: {NO_COLUMNS}")
    names = ["lon", "lat"] + [f"col{i}" for i in range(3, width + 1)]
    table = pd.DataFrame([r + [None] * (width - len(r)) for r in rows], columns=names)
    for name in names[2:]:
        converted = pd.to_numeric(table[name], errors="coerce")
        if converted.notna().sum() == table[name].notna().sum():  # numeric only where every value is
            table[name] = converted
    return _finish(path, table, "lon", "lat", [number for number, _ in lines], False)


def _finish(path, table, lon_col, lat_col, line_numbers, named_geographic) -> pd.DataFrame:
    """Validate coordinates and put float64 lon, lat first."""
    coords = {}
    for col in (lon_col, lat_col):
        raw = table[col]
        if raw.dtype.kind not in "fiu":
            raw = raw.astype("string").str.strip()
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = np.flatnonzero(~np.isfinite(values.to_numpy()))
        if bad.size:
            i = int(bad[0])
            where = f"row {i + 1}" + (f" (line {line_numbers[i]})" if i < len(line_numbers) else "")
            shown = table[col].iloc[i]
            raise SeamountaeError(
                f"{path}: {where} has a missing or non-numeric {col!r} value {shown!r}"
                f"{f' ({bad.size} such rows)' if bad.size > 1 else ''}; fix or delete those rows"
            )
        coords[col] = values.to_numpy()
    lon, lat = coords[lon_col], coords[lat_col]
    # Projected x/y can be anything; only check latitude when the numbers look like degrees.
    geographic = named_geographic or bool(lon.size and np.all(np.abs(lon) <= 360.0))
    if geographic and lon.size:
        bad = np.flatnonzero(np.abs(lat) > 90.0)
        if bad.size:
            i = int(bad[0])
            where = f"row {i + 1}" + (f" (line {line_numbers[i]})" if i < len(line_numbers) else "")
            raise SeamountaeError(
                f"{path}: {where} has latitude {lat[i]:g} outside -90..90; "
                "check the columns are longitude then latitude (or x/y for projected grids)"
            )
        if named_geographic and np.any(np.abs(lon) > 360.0):
            i = int(np.flatnonzero(np.abs(lon) > 360.0)[0])
            raise SeamountaeError(
                f"{path}: row {i + 1} has longitude {lon[i]:g} outside -360..360; "
                "name projected coordinates x/y instead of lon/lat"
            )
    rest = table.drop(columns=[lon_col, lat_col])
    result = pd.DataFrame({"lon": lon, "lat": lat})
    for col in rest.columns:
        if col not in result.columns:
            result[col] = rest[col].to_numpy()
    return result


def _read_geojson(path: Path, text: str) -> pd.DataFrame:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeamountaeError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
            "fix the file or export the catalogue as GeoJSON or CSV"
        ) from None
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection":
        features = doc.get("features") or []
    elif kind == "Feature":
        features = [doc]
    elif kind in ("Point", "MultiPoint"):
        features = [{"type": "Feature", "geometry": doc, "properties": {}}]
    else:
        raise SeamountaeError(
            f"{path}: JSON is not a GeoJSON FeatureCollection or Feature (type {kind!r}); "
            "export the catalogue as GeoJSON points or CSV"
        )
    records, skipped = [], 0
    for number, feature in enumerate(features, start=1):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        gtype = geometry.get("type") if isinstance(geometry, dict) else None
        if gtype == "Point":
            points = [geometry.get("coordinates")]
        elif gtype == "MultiPoint":
            points = geometry.get("coordinates") or []
        else:
            skipped += 1
            continue
        properties = feature.get("properties") or {}
        base = {str(k).strip().lower(): v for k, v in properties.items()}
        # The geometry is authoritative: property lon/lat (ours may be 0..360) would contradict it.
        for name in ("lon", "lat"):
            base.pop(name, None)
        if "id" in feature and "id" not in base:
            base["id"] = feature["id"]
        for point in points:
            ok = isinstance(point, list) and len(point) >= 2
            ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point[:2])
            if not ok or not all(math.isfinite(v) for v in point[:2]):
                raise SeamountaeError(
                    f"{path}: feature {number} has invalid Point coordinates {point!r}; "
                    "give [longitude, latitude] numbers"
                )
            records.append({"lon": float(point[0]), "lat": float(point[1]), **base})
    if skipped:
        log.warning("%s: skipped %d non-Point feature(s); only Points are catalogue entries", path, skipped)
    if features and not records:
        raise SeamountaeError(
            f"{path}: GeoJSON has no Point features ({skipped} other geometries); give seamounts as Points"
        )
    table = pd.DataFrame.from_records(records) if records else pd.DataFrame({"lon": [], "lat": []})
    # RFC 7946 GeoJSON is WGS84 degrees; only an old-style `crs` member may carry projected x/y.
    return _finish(path, table, "lon", "lat", [], "crs" not in doc)


# --------------------------------------------------------------------------------------- selecting


def points_inside(catalogue, x_min, x_max, y_min, y_max, geographic=True) -> tuple[pd.DataFrame, int]:
    """Rows inside the box (edges included) and how many were left out.

    The y bounds (and projected x bounds) may come in either order. Geographic boxes and points are
    compared on wrapped longitudes, so a 0..360 catalogue matches a -180..180 grid and a box may
    straddle the dateline; returned longitudes are within 180° of the box's centre (the grid's own
    convention, geometry.GridGeometry.grid_longitude): -175 is 185 for a grid spanning 170..190.
    """
    lon = catalogue["lon"].to_numpy(dtype=float)
    lat = catalogue["lat"].to_numpy(dtype=float)
    # Callers pass a grid's first/last coordinates, and north-up grids have y descending.
    y_min, y_max = sorted((y_min, y_max))
    if not geographic:
        x_min, x_max = sorted((x_min, x_max))
    inside_y = (lat >= y_min) & (lat <= y_max)
    if not geographic:
        inside = (lon >= x_min) & (lon <= x_max) & inside_y
    elif x_max - x_min >= 360.0:
        inside = np.isfinite(lon) & inside_y
    else:
        lo, hi = wrap_lon(x_min), wrap_lon(x_max)
        wrapped = wrap_lon(lon)

        def in_box(v):
            return (v >= lo) & (v <= hi) if lo <= hi else (v >= lo) | (v <= hi)  # else: crosses dateline

        twin = np.where(wrapped == 180.0, -180.0, np.where(wrapped == -180.0, 180.0, wrapped))  # same meridian
        inside = (in_box(wrapped) | in_box(twin)) & inside_y
    result = catalogue.loc[inside].reset_index(drop=True)
    if geographic:
        result["lon"] = longitude_near(result["lon"].to_numpy(dtype=float), (x_min + x_max) / 2)
    return result, int(len(catalogue) - len(result))


def union(tables: Iterable[pd.DataFrame], same_km: float, geographic: bool = True) -> pd.DataFrame:
    """Several catalogues as one: an entry within `same_km` of an earlier table's entry is that
    seamount, kept once as the earlier table gives it. Census catalogues overlap (Kim & Wessel and
    Yesson et al. list many of the same edifices); training on both unjoined would count them twice.
    Projected coordinates are taken in metres."""
    from scipy.spatial import cKDTree

    def points(table):
        lon, lat = table["lon"].to_numpy(float), table["lat"].to_numpy(float)
        return unit_vectors(lon, lat) * EARTH_RADIUS_KM if geographic else np.column_stack([lon, lat]) / 1000.0

    tables = list(tables)
    reach = float(chord_km(same_km)) if geographic else float(same_km)
    kept: list[pd.DataFrame] = []
    for table in (t for t in tables if len(t)):
        if kept:
            distance, _ = cKDTree(points(pd.concat(kept))).query(points(table), distance_upper_bound=reach)
            table = table[distance > reach]
        kept.append(table)
    return pd.concat(kept, ignore_index=True) if kept else tables[0].iloc[:0].reset_index(drop=True)


# ----------------------------------------------------------------------------------------- writing


def _json_value(value, coordinate=False):
    """A table cell as a plain JSON value: numpy scalars unwrapped, NaN/NaT/inf -> null."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return None
        if coordinate:
            return round(value, COORD_DECIMALS)
        if abs(value) >= 1 or value == 0:
            return round(value, OTHER_DECIMALS)
        return float(f"{value:.6g}")  # small quantities (probabilities, slopes) keep 6 significant digits
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    return value if isinstance(value, str) else str(value)


def write_geojson(table, path, provenance=None, overwrite=False):
    """Write an RFC 7946 FeatureCollection of Points, flat properties, no `crs` member."""
    columns = [str(c) for c in table.columns]
    features = []
    for row in table.itertuples(index=False, name=None):
        properties = {c: _json_value(v, c in ("lon", "lat")) for c, v in zip(columns, row)}
        lon, lat = properties.get("lon"), properties.get("lat")
        feature = {"type": "Feature"}
        if properties.get("id") is not None:
            feature["id"] = properties["id"]
        # RFC 7946 wants -180..180 longitudes (the properties keep the table's own values); a row
        # without coordinates becomes an unlocated feature (null geometry) rather than invalid JSON.
        located = lon is not None and lat is not None
        feature["geometry"] = (
            {"type": "Point", "coordinates": [round(wrap_lon(lon), COORD_DECIMALS), lat]} if located else None
        )
        feature["properties"] = properties
        features.append(feature)
    doc = {"type": "FeatureCollection"}
    if provenance is not None:
        doc["seamountae"] = provenance
    doc["features"] = features
    with atomic_output(path, overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, allow_nan=False, default=str, ensure_ascii=False)
            handle.write("\n")


def write_csv(table, path, provenance=None, overwrite=False):
    """Write CSV preceded by a `# seamountae {provenance json}` comment line; read_catalogue reads it back."""
    out = table.copy()
    for col in ("lon", "lat"):
        if col in out.columns:
            out[col] = out[col].astype(float).round(COORD_DECIMALS)
    with atomic_output(path, overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            if provenance is not None:
                handle.write(f"# seamountae {json.dumps(provenance, default=str, ensure_ascii=False)}\n")
            out.to_csv(handle, index=False, lineterminator="\n")


def write_gmt(table, path, provenance=None, overwrite=False):
    """Write whitespace-separated columns, lon lat first, after a `#` header naming them (and a
    `# seamountae {provenance}` line): what `gmt plot` and `gmt text` read, and read_catalogue too."""
    out = table.copy()
    columns = ["lon", "lat"] + [c for c in out.columns if c not in ("lon", "lat")]
    out = out[columns]
    for col in ("lon", "lat"):
        out[col] = out[col].astype(float).round(COORD_DECIMALS)
    with atomic_output(path, overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            if provenance is not None:
                handle.write(f"# seamountae {json.dumps(provenance, default=str, ensure_ascii=False)}\n")
            handle.write("# " + " ".join(columns) + "\n")
            for row in out.itertuples(index=False, name=None):
                handle.write(" ".join(_gmt_value(v) for v in row) + "\n")


def _gmt_value(value) -> str:
    value = _json_value(value)
    if value is None:
        return "NaN"
    text = str(value)
    return text.replace(" ", "_") or "-"  # one token per column, whatever the text holds


KML_NAMESPACE = "http://www.opengis.net/kml/2.2"
# The columns a KML placemark shows in its description table, in this order, when the table has them.
KML_COLUMNS = ("id", "lon", "lat", "summit_depth_m", "height_m", "basal_radius_km", "area_km2", "score")


def write_kml(table, path, provenance=None, overwrite=False):
    """Write OGC KML 2.2 Point placemarks (Google Earth): each named by its id, with its height and score
    in the name's description table and every column as ExtendedData; the provenance is the Document's
    ExtendedData `seamountae` (JSON), so read_provenance reads it back."""
    from xml.etree import ElementTree as ET

    ET.register_namespace("", KML_NAMESPACE)

    def element(parent, tag, text=None, **attrs):
        node = ET.SubElement(parent, f"{{{KML_NAMESPACE}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    root = ET.Element(f"{{{KML_NAMESPACE}}}kml")
    document = element(root, "Document")
    element(document, "name", Path(path).stem)
    if provenance is not None:
        data = element(element(document, "ExtendedData"), "Data", name="seamountae")
        element(data, "value", json.dumps(provenance, default=str, ensure_ascii=False, sort_keys=True))
    columns = [str(c) for c in table.columns]
    shown = [c for c in KML_COLUMNS if c in columns]
    for number, row in enumerate(table.itertuples(index=False, name=None), start=1):
        values = {c: _json_value(v, c in ("lon", "lat")) for c, v in zip(columns, row)}
        if values.get("lon") is None or values.get("lat") is None:
            continue  # KML has no unlocated placemark
        placemark = element(document, "Placemark")
        label = values.get("id", number)
        element(placemark, "name", f"seamount {label}")
        # KML's order: name, description, ExtendedData, then the geometry (OGC 07-147r2 §9.1).
        cells = "".join(f"<tr><th>{c}</th><td>{'' if values[c] is None else values[c]}</td></tr>" for c in shown)
        element(placemark, "description", f"<table>{cells}</table>")
        extended = element(placemark, "ExtendedData")
        for c in columns:
            element(element(extended, "Data", name=c), "value", "" if values[c] is None else str(values[c]))
        point = element(placemark, "Point")
        # KML wants lon,lat in -180..180 (the ExtendedData keep the table's own longitude).
        element(point, "coordinates", f"{round(wrap_lon(values['lon']), COORD_DECIMALS)!r},{values['lat']!r}")
    tree = ET.ElementTree(root)
    ET.indent(tree, space=" ")
    with atomic_output(path, overwrite) as tmp:
        tree.write(tmp, encoding="UTF-8", xml_declaration=True)


# Output format by file name; any other suffix needs `fmt` (no silent fallback: a .kml file of GeoJSON
# opens nowhere).
FORMATS = {".geojson": "geojson", ".json": "geojson", ".csv": "csv", ".txt": "gmt", ".gmt": "gmt", ".xy": "gmt",
           ".kml": "kml"}
WRITERS = {"geojson": write_geojson, "csv": write_csv, "gmt": write_gmt, "kml": write_kml}
assert tuple(WRITERS) == CATALOGUE_FORMATS


def format_of(path, fmt: str | None = None) -> str:
    """The catalogue format: `fmt` if given, else the one the file name's suffix says; else a one-line error."""
    if fmt is not None:
        if fmt.lower() not in WRITERS:
            raise SeamountaeError(f"{path}: unknown catalogue format {fmt!r}; use {', '.join(WRITERS)}")
        return fmt.lower()
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SeamountaeError(f"{path}: cannot tell the catalogue format from the suffix {suffix or '(none)'!r}; "
                              f"name the output {', '.join(FORMATS)}, or give --format {'|'.join(WRITERS)}")
    return FORMATS[suffix]


def write_catalogue(table, path, fmt=None, provenance=None, overwrite=False):
    """Write as GeoJSON, CSV, GMT text or KML, chosen by `fmt` or else by the file extension."""
    WRITERS[format_of(path, fmt)](table, path, provenance=provenance, overwrite=overwrite)


def antimeridian_parts(ring: list) -> list[list]:
    """A closed ring of [lon, lat] with continuous longitudes, as RFC 7946 (§3.1.9) wants it: moved
    into -180..180, and where it crosses the antimeridian cut there into a western and an eastern
    ring (each clipped to its side of the meridian, the eastern one moved by -360)."""
    lon = np.array([p[0] for p in ring], float)
    lat = np.array([p[1] for p in ring], float)
    lon += 360.0 * np.ceil((-180.0 - lon.min()) / 360.0)  # the westernmost vertex in [-180, 180)
    if lon.max() <= 180.0:
        return [np.column_stack([lon, lat]).tolist()]
    return [part for part in (_clip_side(lon, lat, -1.0), _clip_side(lon - 360.0, lat, 1.0)) if len(part) >= 4]


def _clip_side(lon: np.ndarray, lat: np.ndarray, side: float) -> list:
    """Sutherland–Hodgman: the ring's part on one side of the meridian ±180 (side -1: lon ≤ 180;
    side +1: lon ≥ -180), closed."""
    edge = 180.0 * -side
    inside = side * (lon - edge) >= 0
    out = []
    for i in range(len(lon) - 1):  # the ring is closed: its last vertex repeats the first
        j = i + 1
        if inside[i]:
            out.append([float(lon[i]), float(lat[i])])
        if inside[i] != inside[j]:
            t = (edge - lon[i]) / (lon[j] - lon[i])
            out.append([edge, float(lat[i] + t * (lat[j] - lat[i]))])
    if out and out[0] != out[-1]:
        out.append(out[0])
    return out


def write_footprints(polygons: Iterable[tuple[dict, list]], path, provenance=None, overwrite=False):
    """Write seamount footprints as an RFC 7946 FeatureCollection of Polygons: [(properties, ring)],
    each ring a closed list of [lon, lat], counter-clockwise (the right-hand rule). Features are
    written as `polygons` yields them (a generator: memory holds one footprint at a time)."""
    dump = functools.partial(json.dumps, allow_nan=False, default=str, ensure_ascii=False)
    head = {"type": "FeatureCollection", **({"seamountae": provenance} if provenance is not None else {})}
    with atomic_output(path, overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(dump(head)[:-1] + ', "features": [')
            for i, (properties, ring) in enumerate(polygons):
                props = {k: _json_value(v, k in ("lon", "lat")) for k, v in properties.items()}
                parts = [[[[round(x, COORD_DECIMALS), round(y, COORD_DECIMALS)] for x, y in part]]
                         for part in antimeridian_parts(ring)]
                geometry = ({"type": "Polygon", "coordinates": parts[0]} if len(parts) == 1
                            else {"type": "MultiPolygon", "coordinates": parts})
                feature = {"type": "Feature", "id": props.get("id"), "geometry": geometry, "properties": props}
                handle.write((", " if i else "") + dump(feature))
            handle.write("]}\n")
