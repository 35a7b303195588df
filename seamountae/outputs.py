"""Writing output files safely and recording where they came from.

Every artifact is written to a temporary file in the destination folder and renamed into place,
so an interrupted run never leaves a half-written file under the final name, and an existing
output is replaced only when the caller says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from . import __version__
from .errors import SeamountaeError


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Fail early (before any work) if `path` cannot be written as an output."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise SeamountaeError(f"{path}: output exists; pass --overwrite to replace it or choose another -o")
    if path.is_dir():
        raise SeamountaeError(f"{path}: is a directory; give a file name with -o")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        if any(p.exists() and not p.is_dir() for p in (folder, *folder.parents)):
            raise SeamountaeError(f"{path}: {folder} is not a folder (a file is in the way); choose another -o")
        raise SeamountaeError(f"{path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise SeamountaeError(f"{path}: folder {folder} is not writable; choose another -o")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on any failure delete it."""
    path = check_writable(path, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SeamountaeError(f"{path}: could not write ({exc.strerror or exc}); free space or choose another -o") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(params: dict | None = None, inputs: dict | None = None) -> dict:
    """What produced an output: version, command line, parameters and input hashes.

    `inputs` maps a role ("grid", "model") to a file path; each is recorded with its SHA-256.
    """
    record = {
        "seamountae_version": __version__,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "parameters": params or {},
        "inputs": {
            role: {"path": str(p), "sha256": sha256(p)} for role, p in (inputs or {}).items() if p is not None
        },
    }
    return record


def provenance_attrs(record: dict) -> dict:
    """Provenance flattened to netCDF-safe global attributes."""
    return {
        "seamountae_version": record["seamountae_version"],
        "history": record["command"],
        "seamountae_parameters": json.dumps(record["parameters"], sort_keys=True, default=str),
        "seamountae_inputs": json.dumps(record["inputs"], sort_keys=True),
    }


def write_netcdf(ds, path, overwrite: bool = False, record: dict | None = None) -> None:
    """Write a dataset atomically as compressed netCDF-4, with provenance attributes."""
    ds = ds.copy()
    if record is not None:
        ds.attrs.update(provenance_attrs(record))
    encoding = {
        name: {"zlib": True, "complevel": 4}
        for name, var in ds.data_vars.items()
        if var.ndim >= 1 and var.dtype.kind in "fiu"
    }
    with atomic_output(path, overwrite) as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=encoding)


def read_netcdf(path, kind: str, producer: str):
    """Open a seamountae netCDF output of `kind` ("patches", "score", "detections"), loaded into memory."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise SeamountaeError(f"{path}: no such file; run `seamountae {producer}` first")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds = ds.load()
    except Exception as exc:  # netCDF4 raises OSError/ValueError/RuntimeError for foreign files
        raise SeamountaeError(f"{path}: not a readable netCDF file ({type(exc).__name__}); give the output of `seamountae {producer}`") from None
    found = ds.attrs.get("seamountae_kind")
    if found != kind:
        what = f"a seamountae {found} file" if found else "not a seamountae file"
        raise SeamountaeError(f"{path}: {what}, expected {kind}; give the output of `seamountae {producer}`")
    return ds
