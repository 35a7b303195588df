"""The `export` stage's footprints: each detected seamount's outline, for the catalogue's polygons.

The catalogue itself is the detections table written as GeoJSON, CSV or GMT text
(catalogue.write_catalogue); `footprint_polygons` outlines each seamount's cells of the detections
file's `cluster` map, reading only the window around each, for `export --footprints`.

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import xarray as xr

from .detection import COLUMNS, footprint_window, lonlat_geometry, table_from_detections
from .grid import read_window


def footprint_polygons(ds: xr.Dataset) -> Iterator[tuple[dict, list]]:
    """The detections file's footprints, one by one, as (properties, ring): each seamount's outline (where its
    label meets the rest, half a cell out from its cells) as a closed, counter-clockwise ring of
    [lon, lat], with the seamount's catalogue row as properties.

    Each footprint reads only the window of the `cluster` map that can hold it (footprint_window),
    so a dataset opened lazily is never loaded whole. On a global grid an outline across the
    antimeridian continues past ±180° (catalogue.write_footprints cuts it there, as RFC 7946 asks).
    """
    from skimage.measure import find_contours

    table = table_from_detections(ds, COLUMNS + ["x", "y"])
    geometry = lonlat_geometry(ds)
    labels = ds["cluster"]
    rows, cols = geometry.index(table["x"].to_numpy(float), table["y"].to_numpy(float))
    for k, seamount in enumerate(table[COLUMNS].itertuples(index=False)):
        r0, r1, c0, c1 = footprint_window(geometry, int(rows[k]), int(cols[k]), seamount.basal_radius_km)
        cells = read_window(labels, r0, r1, c0, c1, geometry.wraps, dtype=np.int32) == seamount.id
        if not cells.any():
            continue
        mask = np.pad(cells, 1).astype(float)  # a margin of one cell: every outline closes
        ring = max(find_contours(mask, 0.5), key=len)
        x, y = geometry.x_of(ring[:, 1] + c0 - 1), geometry.y_of(ring[:, 0] + r0 - 1)
        lon, lat = geometry.to_lonlat(x, y)
        if np.sum(lon[:-1] * lat[1:] - lon[1:] * lat[:-1]) < 0:  # clockwise: reverse (RFC 7946 §3.1.6)
            lon, lat = lon[::-1], lat[::-1]
        points = [[float(a), float(b)] for a, b in zip(lon, lat)]
        if points[0] != points[-1]:
            points.append(points[0])
        yield seamount._asdict(), points
