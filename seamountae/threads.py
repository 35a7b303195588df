"""The candidate pass on torch's CPU threads.

Its per-summit and per-candidate steps are many small numpy, scipy and torch passes, each
releasing the GIL, so a pool of threads keeps the cores busy where one Python loop would leave all
but one idle between passes.

Layer 1, foundations: imports layer 1 only.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch

# Fewer items than this per thread run in the calling thread: a pool would cost more than it saves.
MIN_ITEMS_PER_THREAD = 8


def threaded_map(func, items) -> list:
    """[func(item) for item in items], in order, on as many threads as torch's CPU pool has
    (`score --threads`). On an error or Ctrl-C the queued items are cancelled, not waited for."""
    items = list(items)
    workers = min(torch.get_num_threads(), len(items) // MIN_ITEMS_PER_THREAD)
    if workers <= 1:
        return [func(item) for item in items]
    pool = ThreadPoolExecutor(workers, thread_name_prefix="seamountae-measure")
    try:
        return list(pool.map(func, items, chunksize=1))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

