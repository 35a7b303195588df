"""Scoring on a dask cluster: `seamountae score --scheduler local:N | tcp://HOST:PORT | SCHEDULER.json`.

The grid is cut into blocks of output cells aligned to the score file's chunks. Each block is one
dask task: a worker opens the grid lazily (the path must be readable on the workers, as on a
cluster's shared file system), reads its block with half a patch of halo, and scores it on the
whole grid's lattice (lattice.iter_score with rows and cols), so blocks need no overlap to add up
to the single-piece result. The model file is read once by the client and broadcast; each worker
builds the model from it once and keeps it for all its tasks. For a netCDF output, blocks come
back to the client as they finish and go straight into the streaming writer (scorefile.write_tiles);
at most a few blocks per worker are in flight, so the client's memory stays bounded too. A Zarr
store (-o NAME.zarr) is created by the client and filled by the workers, each writing its own
blocks (whole chunks, so no two workers touch the same chunk): nothing large crosses the network.

dask and distributed are an optional extra: `pip install 'seamountae[dask]'`.

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import numpy as np

from .config import default
from .errors import SeamountaeError

# Output cells per task: large enough that reading the halo and starting a task are small costs,
# small enough that a worker holds a few blocks (8 MB of results each) without strain.
BLOCK_CELLS = 1 << 21
BLOCK_COLS = 4096
IN_FLIGHT_PER_WORKER = 2  # blocks queued per worker thread: it never waits for the next one
CONNECT_TIMEOUT_S = 30

_WORKER_MODELS: dict[tuple, object] = {}  # (model digest, device, batch size, precision) → PatchScorer, per worker


def connect(scheduler: str, threads: int | None):
    """(client, torch threads per task) for "local:N" (a LocalCluster of N processes), a scheduler
    address (tcp://HOST:PORT) or a scheduler file (*.json)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SeamountaeError(f"--scheduler {scheduler}: needs dask and distributed; install them with "
                              "pip install 'seamountae[dask]', or score without --scheduler") from None
    if scheduler.startswith("local:"):
        try:
            n = int(scheduler.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise SeamountaeError(f"--scheduler {scheduler}: give the number of workers, e.g. local:4")
        # One task at a time per worker process; torch threads share the cores out between them.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        return Client(cluster), threads or max(1, (os.cpu_count() or 1) // n)
    try:
        if scheduler.endswith(".json"):  # a scheduler file, as `dask scheduler --scheduler-file` writes
            if not os.path.isfile(scheduler):
                raise SeamountaeError(f"--scheduler {scheduler}: no such scheduler file; start `dask scheduler "
                                      f"--scheduler-file {scheduler}` first")
            return Client(scheduler_file=scheduler, timeout=f"{CONNECT_TIMEOUT_S}s"), threads
        return Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s"), threads
    except (OSError, TimeoutError, ValueError) as exc:
        raise SeamountaeError(f"--scheduler {scheduler}: cannot reach a dask scheduler there ({exc}); start one "
                              "(dask-scheduler, dask-jobqueue) or use local:N") from None


def blocks(n_rows: int, n_cols: int, rows: slice, cols: slice, chunk_rows: int, chunk_cols: int
           ) -> list[tuple[slice, slice]]:
    """Blocks of about BLOCK_CELLS covering `rows` × `cols`, their edges on the chunk boundaries of a
    file whose first cell is (rows.start, cols.start)."""
    r0, r1, _ = rows.indices(n_rows)
    c0, c1, _ = cols.indices(n_cols)
    width = c1 - c0 if c1 - c0 <= BLOCK_COLS else max(chunk_cols, BLOCK_COLS // chunk_cols * chunk_cols)
    height = max(chunk_rows, BLOCK_CELLS // width // chunk_rows * chunk_rows)
    return [(slice(a, min(a + height, r1)), slice(c, min(c + width, c1)))
            for a in range(r0, r1, height) for c in range(c0, c1, width)]


def _scorer(model_bytes: bytes, digest: str, device: str, batch_size, precision: str):
    """The worker's PatchScorer for this model, built on its first task."""
    key = (digest, device, batch_size, precision)
    if key not in _WORKER_MODELS:
        import io

        from .model import load_artifact
        from .runner import PatchScorer, return_freed_memory

        return_freed_memory()
        model, _ = load_artifact(io.BytesIO(model_bytes))
        _WORKER_MODELS.clear()  # one model at a time: a new run's model replaces the last
        _WORKER_MODELS[key] = PatchScorer(model, device, batch_size, precision)
    return _WORKER_MODELS[key]


def _worker_precision(requested: str, device: str) -> str:
    """What `requested` means on this worker's device (model.resolve_precision)."""
    from .model import resolve_device, resolve_precision

    return resolve_precision(requested, resolve_device(device))


def score_block(grid_path: str, grid_kwargs: dict, model_bytes: bytes, digest: str, meta: dict, stride_px: int,
                device: str, batch_size, precision: str, threads: int | None, window_cells: int | None, rows: slice,
                cols: slice, store: str | None = None, row0: int = 0, col0: int = 0,
                region: tuple[float, float, float, float] | None = None, halo_km: float = 0.0):
    """One task: error and relief of the block on every pyramid level, (levels, h, w) each, and the patch count.
    `rows` and `cols` index the grid, or with `region` its cut (grid.cut_region with `halo_km`),
    which the worker makes as the client did.

    With `store` (a Zarr store whose first cell is cell (`row0`, `col0`)), the worker finishes the block and
    writes it there itself, and returns (valid, scored, patches) counts instead: blocks cover whole
    chunks, so workers never write the same chunk.
    """
    import torch

    from .grid import cut_region, open_grid
    from .lattice import iter_levels, pyramid_levels
    from .scorefile import ZarrStore, write_cells
    from .model import calibration_errors

    if threads:
        torch.set_num_threads(int(threads))
    if not os.path.exists(grid_path):
        import socket

        raise SeamountaeError(f"{grid_path}: not found on dask worker {socket.gethostname()}; workers read the grid "
                              "themselves, so it must be at the same path on a file system they share")
    scorer = _scorer(model_bytes, digest, device, batch_size, precision)
    before = scorer.patches_scored
    grid = whole = open_grid(grid_path, **grid_kwargs)
    try:
        if region is not None:
            grid, _, _ = cut_region(whole, region, halo_km)
        n_levels = len(pyramid_levels(grid, meta, stride_px))
        shape = (n_levels, rows.stop - rows.start, cols.stop - cols.start)
        error, relief = np.full(shape, np.nan, np.float32), np.full(shape, np.nan, np.float32)
        for k, r, c, out in iter_levels(grid, scorer, meta, stride_px, window_cells, rows, cols):
            local = (k, slice(r.start - rows.start, r.stop - rows.start), slice(c.start - cols.start, c.stop - cols.start))
            error[local], relief[local] = out["error"], out["relief_m"]
        if store is None:
            return error, relief, scorer.patches_scored - before
        valid = scored = 0
        target = ZarrStore(store)
        for k in range(n_levels):
            v, n = write_cells(target, grid, calibration_errors(meta, precision), k, rows, cols,
                               {"error": error[k], "relief_m": relief[k]}, row0, col0)
            valid, scored = valid + v, scored + n
        return valid, scored, scorer.patches_scored - before
    finally:
        whole.close()


def write_score_on_cluster(scheduler: str, grid_path, grid_kwargs: dict, model_path, grid, meta: dict, path,
                           attrs: dict | None = None, stride_px: int = 2, device: str = "auto", batch_size="auto",
                           progress: bool = False, window_cells: int | None = None, rows: slice = slice(None),
                           threads: int | None = None, precision: str = default("score", "precision"),
                           cols: slice = slice(None), origin: tuple[int, int] | None = None,
                           region: tuple[float, float, float, float] | None = None, halo_km: float = 0.0
                           ) -> dict[str, int]:
    """scoring.write_score, with the model's work done by dask workers; the same file, the same counts.
    `grid` is the grid at `grid_path`, or with `region` its cut (grid.cut_region with `halo_km`).

    Blocks come back to this process, which writes them into the netCDF file; a Zarr store (a
    path ending in .zarr) is written by the workers themselves, in parallel.
    """
    from .outputs import is_zarr
    from .lattice import CHUNK_COLS, CHUNK_ROWS, progress_cells
    from .runner import score_precision
    from .scorefile import ZARR_CHUNK_ROWS, create_score_file, write_tiles

    client, threads = connect(scheduler, threads)
    try:
        from dask.distributed import as_completed

        with open(model_path, "rb") as handle:
            model_bytes = handle.read()
        digest = hashlib.sha256(model_bytes).hexdigest()
        shared = client.scatter(model_bytes, broadcast=True, hash=False)
        precision = score_precision(meta, precision, model_label=str(model_path),
                                    resolved=client.submit(_worker_precision, precision, device, pure=False).result())
        workers_write = is_zarr(path)
        # Blocks cover whole chunks of the output: a worker writing a Zarr store never shares a chunk.
        todo = iter(blocks(*grid.shape, rows, cols, ZARR_CHUNK_ROWS if workers_write else CHUNK_ROWS, CHUNK_COLS))
        r0, r1, _ = rows.indices(grid.sizes["y"])
        c0, c1, _ = cols.indices(grid.sizes["x"])
        store = str(Path(path).resolve()) if workers_write else None
        patches = 0

        def submit(block):
            future = client.submit(score_block, str(Path(grid_path).resolve()), grid_kwargs, shared, digest, meta,
                                   stride_px, device, batch_size, precision, threads, window_cells, *block, store, r0,
                                   c0, region, halo_km, pure=False)
            future.block = block
            return future

        def top_up(running) -> None:
            # Workers may join late (a batch job's workers start beside the client): ask as we go.
            target = IN_FLIGHT_PER_WORKER * max(1, sum(client.nthreads().values())) + 1
            while running.count() < target and (block := next(todo, None)) is not None:
                running.add(submit(block))

        running = as_completed()
        top_up(running)

        def results():
            for future in running:
                block = future.block
                try:
                    result = future.result()
                except SeamountaeError:
                    raise
                except Exception as exc:  # a worker died (memory, a killed job) or the connection dropped
                    raise SeamountaeError(f"{grid_path}: scoring rows {block[0].start}..{block[0].stop} failed on the "
                                          f"cluster ({type(exc).__name__}: {exc}); check the dask workers' logs and memory")
                future.release()
                top_up(running)
                yield block, result

        def tiles():
            nonlocal patches
            for (block_rows, block_cols), (error, relief, n) in results():
                patches += n
                for k in range(error.shape[0]):
                    yield k, block_rows, block_cols, {"error": error[k], "relief_m": relief[k]}

        if not workers_write:
            counts = write_tiles(grid, meta, stride_px, path, tiles(), attrs, rows, progress, precision, cols)
        else:
            create_score_file(path, grid, meta, stride_px, attrs, slice(r0, r1), precision, slice(c0, c1)).close()
            counts = {"cells": (r1 - r0) * (c1 - c0), "valid": 0, "scored": 0}
            done = ((0, rows_, cols_, n) for (rows_, cols_), n in results())
            for _, block_rows, block_cols, (valid, scored, n) in progress_cells(done, progress, counts["cells"]):
                counts["valid"] += valid
                counts["scored"] += scored
                patches += n
        counts["patches"] = patches
        # The candidates are few: judged here, by the model the workers got.
        from .model import load_artifact
        from .scorefile import append_candidates
        from .scoring import judged_cells

        model = load_artifact(io.BytesIO(model_bytes))[0]
        counts["candidates"] = append_candidates(path, judged_cells(grid, model, meta, rows, cols, precision, origin))
        return counts
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
