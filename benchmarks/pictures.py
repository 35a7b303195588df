"""The README's pictures of edifices the candidate search proposes: an atoll and a flank cone.

    python benchmarks/pictures.py     # writes benchmarks/results/marshall_atolls.png and flank_cone.png

Both run `seamountae find` with the built-in model, then `seamountae plot`, as a user would:
- the Marshall Islands GEBCO 15″ tile (../shared/data; Kwajalein and its neighbours), with the Kim &
  Wessel census as the reference;
- a synthetic 1′ grid: a shield 3,000 m high and 30 km in basal radius with a cone 1,200 m high and
  6 km in radius on its flank, 18 km from the shield's summit, on a plain 4,500 m deep (its col
  towards the shield drops about 600 m, more than `min_height_m`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from seamountae.geometry import KM_PER_DEGREE
from seamountae.grid import WGS84_WKT, canonical_grid, write_grid
from seamountae.synth import render_seamount

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, SHARED  # noqa: E402

CLI = [sys.executable, "-m", "seamountae", "-q"]


def flank_cone_grid(path: Path) -> None:
    step = 1 / 60
    lat = 10 + step * np.arange(150)
    lon = 150 + step * np.arange(150)
    north = (lat[:, None] - lat[75]) * KM_PER_DEGREE
    east = (lon[None, :] - lon[75]) * KM_PER_DEGREE * np.cos(np.radians(lat[75]))
    z = -4500.0 + render_seamount(east, north, 3000.0, 30.0, "cone") + render_seamount(east - 18.0, north, 1200.0, 6.0, "cone")
    write_grid(canonical_grid(z.astype(np.float32), lon, lat, True, WGS84_WKT, "a shield with a flank cone"), path)


def picture(grid: Path, out: Path, folder: Path, reference: Path | None = None) -> None:
    subprocess.run([*CLI, "find", str(grid), "-o", str(folder / "found.geojson"), "--keep", str(folder), "--overwrite"], check=True)
    extra = ["--reference", str(reference), "--min-height-m", "500"] if reference else []
    subprocess.run([*CLI, "plot", str(folder / "score.nc"), "--detections", str(folder / "detections.nc"), *extra,
                    "--dpi", "90", "-o", str(out), "--overwrite"], check=True)
    print(out)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        marshall = SHARED / "gebco15s/gebco15s_9.24_167.3.tif"
        if marshall.exists():
            (tmp / "marshall").mkdir()
            picture(marshall, RESULTS / "marshall_atolls.png", tmp / "marshall", SHARED / "catalogues/KWSMTSv01.txt")
        (tmp / "cone").mkdir()
        flank_cone_grid(tmp / "cone.nc")
        picture(tmp / "cone.nc", RESULTS / "flank_cone.png", tmp / "cone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
