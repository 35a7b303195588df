"""Rebuild sample_data/ from the real Azores grid and catalogue (see README.md for provenance).

Splits at 28°W: the western half and its catalogued seamounts train the demo model, the eastern
half is searched and its catalogue is the reference. Run from the repository root:
    python sample_data/make_sample_data.py ../shared/data/azores
"""

import sys
from pathlib import Path

import pandas as pd
import xarray as xr

SPLIT_LON = -28.0


def main(source: str) -> None:
    source, here = Path(source), Path(__file__).parent
    with xr.open_dataset(source / "azores_bathy_1m.nc") as grid:
        grid = grid.load()
    catalogue = pd.read_csv(source / "azores_catalogue.csv")
    for half, keep_grid, keep_cat in (
        ("west", grid.x <= SPLIT_LON, catalogue.lon < SPLIT_LON),
        ("east", grid.x >= SPLIT_LON, catalogue.lon >= SPLIT_LON),
    ):
        part = grid.sel(x=keep_grid)
        part.attrs["history"] = f"{grid.attrs.get('history', '')}; seamountae sample_data: {half} of {SPLIT_LON}"
        part.to_netcdf(here / f"azores_{half}.nc", encoding={"z": {"zlib": True, "complevel": 6}})
        catalogue[keep_cat].to_csv(here / f"azores_{half}_seamounts.csv", index=False)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/azores")
