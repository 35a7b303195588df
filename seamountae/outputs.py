"""Writing output files safely and recording where they came from.

Every artifact is written to a temporary file in the destination folder and renamed into place,
so an interrupted run never leaves a half-written file under the final name, and an existing
output is replaced only when the caller says so.

Layer 2, files: imports layers 1-2 only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
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
    if path.is_dir() and not is_zarr(path):
        raise SeamountaeError(f"{path}: is a directory; give a file name with -o")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        if any(p.exists() and not p.is_dir() for p in (folder, *folder.parents)):
            raise SeamountaeError(f"{path}: {folder} is not a folder (a file is in the way); choose another -o")
        raise SeamountaeError(f"{path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise SeamountaeError(f"{path}: folder {folder} is not writable; choose another -o")
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


# SIGTERM and SIGINT become exceptions (cli.main). One can land where Python ignores exceptions (a
# finaliser run by the garbage collector), and the command would go on to commit its output; recorded
# here, it still stops the commit, so the output is discarded as the signal asked.
_SIGNALLED: list[type[BaseException]] = []


def signalled(exception: type[BaseException]) -> None:
    """Record that a signal was turned into `exception` (checked before an output is committed)."""
    _SIGNALLED.append(exception)


def _stop_if_signalled() -> None:
    if _SIGNALLED:
        raise _SIGNALLED[0]()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on any failure delete it."""
    path = check_writable(path, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    tmp = Path(tmp)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes it private (0600); an output gets the usual mode
    except (AttributeError, OSError):
        pass
    os.close(fd)
    try:
        yield tmp
        _stop_if_signalled()
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SeamountaeError(f"{path}: could not write ({exc.strerror or exc}); free space or choose another -o") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def is_zarr(path: str | os.PathLike) -> bool:
    """Outputs named *.zarr are Zarr stores (directories); everything else is a file."""
    return str(path).rstrip("/").lower().endswith(".zarr")


def require_zarr(path) -> None:
    """A one-line error, before any work, where a Zarr store is asked for without zarr installed."""
    try:
        import dask.array  # noqa: F401  (the store's empty layout is written through dask)
        import zarr  # noqa: F401
    except ImportError:
        raise SeamountaeError(f"{path}: Zarr stores need zarr and dask; install them with pip install "
                              "'seamountae[dask]', or use a .nc file") from None


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """atomic_output for a directory (a Zarr store): built beside `path`, renamed into place.

    An existing store is moved aside just before the rename and deleted after it, so the final
    name never holds a half-written store.
    """
    import shutil

    path = check_writable(path, overwrite)
    # The temporary name keeps the suffix: writers choose the format by it.
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.part.", suffix=path.suffix, dir=path.parent or "."))
    try:
        yield tmp
        _stop_if_signalled()
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent or "."))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SeamountaeError(f"{path}: could not write ({exc.strerror or exc}); free space or choose another -o") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_HASHES: dict[tuple, str] | None = None


@contextlib.contextmanager
def remembered_hashes() -> Iterator[None]:
    """Within this block, a file's SHA-256 is computed once while it is unchanged (inode, size, time).

    `run` hashes each input to check a stage and again to record it: a large grid is read once.
    """
    global _HASHES
    outer = _HASHES
    _HASHES = {} if outer is None else outer
    try:
        yield
    finally:
        _HASHES = outer


def sha256(path: str | os.PathLike) -> str:
    if os.path.isdir(path):  # a Zarr store: every file, by its name within the store, in name order
        digest = hashlib.sha256()
        root = Path(path)
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + sha256(file).encode())
        return digest.hexdigest()
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if _HASHES is not None and key in _HASHES:
            return _HASHES[key]
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if _HASHES is not None:
        _HASHES[key] = digest.hexdigest()
    return digest.hexdigest()


_COMMAND: list[str] | None = None


def set_command(args: list[str] | None) -> None:
    """Record the command line of the command being run (the CLI calls this; None: use sys.argv).

    Kept apart from sys.argv so that a command run in-process (a notebook, a test runner, `run`)
    records its own command line, not the one of the Python process around it.
    """
    global _COMMAND
    _COMMAND = None if args is None else [str(a) for a in args]


def command_line() -> str:
    args = _COMMAND if _COMMAND is not None else [Path(sys.argv[0]).name, *sys.argv[1:]]
    return " ".join(shlex.quote(a) for a in args)


def provenance(params: dict | None = None, inputs: dict | None = None) -> dict:
    """What produced an output: version, command line, parameters and input hashes.

    `inputs` maps a role ("grid", "model") to a file path; each is recorded with its SHA-256.
    Nothing in it depends on the time or the machine, so the same command on the same inputs
    writes the same bytes (a CI regression run can compare whole files).
    """
    record = {
        "seamountae_version": __version__,
        "command": command_line(),
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


def write_netcdf(ds, path, overwrite: bool = False, record: dict | None = None, atomic: bool = True) -> None:
    """Write a dataset as compressed netCDF-4, with provenance attributes: atomically, or (atomic=False)
    straight to `path`, a temporary file the caller renames."""
    ds = ds.copy()
    if record is not None:
        ds.attrs.update(provenance_attrs(record))
    encoding = {
        name: {"zlib": True, "complevel": 4}
        for name, var in ds.data_vars.items()
        if var.ndim >= 1 and var.dtype.kind in "fiu"
    }
    if not atomic:
        ds.to_netcdf(path, format="NETCDF4", engine="netcdf4", encoding=encoding)
        return
    with atomic_output(path, overwrite) as tmp:
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=encoding)


def read_netcdf(path, kind: str, producer: str, load: bool = True):
    """Open a seamountae netCDF output (or a Zarr store) of `kind` ("patches", "score", "detections"),
    loaded into memory, or (load=False) open lazily: the caller closes it (`with`)."""
    import xarray as xr

    path = Path(path)
    if not path.exists():
        raise SeamountaeError(f"{path}: no such file; run `seamountae {producer}` first")
    if path.suffix.lower() in (".tif", ".tiff") and kind == "score":
        raise SeamountaeError(f"{path}: a GeoTIFF score is for viewing (QGIS, GDAL) and holds no candidates; "
                              "give the .nc or .zarr score file (`seamountae score -o SCORE.nc`)")
    if path.is_dir():
        require_zarr(path)
    try:
        ds = xr.open_dataset(path, engine="zarr" if path.is_dir() else "netcdf4")
        if load:
            with ds:
                ds = ds.load()
    except Exception as exc:  # netCDF4 raises OSError/ValueError/RuntimeError for foreign files
        raise SeamountaeError(f"{path}: not a readable netCDF file ({type(exc).__name__}); give the output of `seamountae {producer}`") from None
    found = ds.attrs.get("seamountae_kind")
    if found != kind:
        ds.close()
        what = f"a seamountae {found} file" if found else "not a seamountae file"
        raise SeamountaeError(f"{path}: {what}, expected {kind}; give the output of `seamountae {producer}`")
    return ds


def read_provenance(path) -> dict | None:
    """The provenance record of a seamountae output (netCDF, model, GeoJSON, CSV, GMT text, KML or PNG), or None.

    None when the file is missing, unreadable or carries no record: whatever is there was not
    written by seamountae (or not completely), so it cannot be trusted as up to date.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
        if head.startswith((b"\x89HDF", b"CDF")):
            import netCDF4

            with netCDF4.Dataset(path) as nc:
                attrs = {name: nc.getncattr(name) for name in nc.ncattrs()}
            return {
                "seamountae_version": attrs["seamountae_version"],
                "command": attrs.get("history", ""),
                "parameters": json.loads(attrs["seamountae_parameters"]),
                "inputs": json.loads(attrs["seamountae_inputs"]),
            }
        if head.startswith(b"PK"):  # a torch zip file: the model artifact carries its record
            import torch

            return torch.load(path, map_location="cpu", weights_only=True)["provenance"]  # plain data only: runs no code
        if head.startswith(b"\x89PNG"):
            from PIL import Image

            with Image.open(path) as image:
                return json.loads(image.text["seamountae"])
        text = path.read_text(encoding="utf-8")
        if text.startswith("<?xml"):  # KML: the Document's ExtendedData (catalogue.write_kml)
            from xml.etree import ElementTree as ET

            value = ET.fromstring(text.encode("utf-8")).find(
                "{*}Document/{*}ExtendedData/{*}Data[@name='seamountae']/{*}value")
            return json.loads(value.text)
        if text.startswith("# seamountae "):
            return json.loads(text.splitlines()[0][len("# seamountae "):])
        return json.loads(text)["seamountae"]
    except Exception:  # anything else: not a complete seamountae output
        return None


def canonical(value):
    """`value` as it reads back from a provenance record (JSON types: tuples become lists…)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))
