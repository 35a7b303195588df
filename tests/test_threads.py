"""The candidate pass on torch's CPU threads: the same numbers on any number of them, and a failure
that stops the queued work instead of waiting for it."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch

from seamountae.candidates import CandidateRules, find_candidates
from seamountae.patches import sample_patches
from seamountae.synth import synthesize
from seamountae.threads import MIN_ITEMS_PER_THREAD, threaded_map
from test_patches import _rough_grid_with_a_gap


@pytest.fixture
def cpu_threads():
    """Runs a test's body on a given number of torch threads, restoring the count afterwards."""
    before = torch.get_num_threads()

    def on(n, func, *args, **kwargs):
        torch.set_num_threads(n)
        try:
            return func(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return on


def test_candidates_are_the_same_on_one_thread_and_on_three(cpu_threads):
    grid, _ = synthesize(seed=5, scenario="fabric", shape=(240, 300), n_seamounts=30)
    rules = CandidateRules(patch_km=24.0, window_km=(16.0, 80.0), radius_ratio=6.0, min_height_m=200.0)
    one = cpu_threads(1, find_candidates, grid, rules)
    three = cpu_threads(3, find_candidates, grid, rules)
    assert len(one) >= 3 * MIN_ITEMS_PER_THREAD  # enough summits for three threads to share them
    pd.testing.assert_frame_equal(one, three, check_exact=True)


@pytest.mark.parametrize("share", [1, 17])
def test_patches_are_the_same_on_one_thread_and_on_three(cpu_threads, share):
    grid, x, y, scale = _rough_grid_with_a_gap(True)
    x, y, scale = np.tile(x, 8), np.tile(y, 8), np.tile(scale, 8)  # 272 patches: 16 windows of 17 at share=17
    one = cpu_threads(1, sample_patches, grid, x, y, 24.0, 16, scale, share)
    three = cpu_threads(3, sample_patches, grid, x, y, 24.0, 16, scale, share)
    assert np.isnan(one).any()
    np.testing.assert_array_equal(one, three)


def test_threaded_map_keeps_the_order(cpu_threads):
    items = list(range(5 * MIN_ITEMS_PER_THREAD))
    assert cpu_threads(3, threaded_map, lambda i: i * i, items) == [i * i for i in items]


def test_a_failure_cancels_the_queued_items(cpu_threads):
    """The first item fails while the others wait: the error reaches the caller, and the queued
    items never run (Ctrl-C in the middle of a candidate pass ends it, not after every summit)."""
    started, release = [], threading.Event()

    def item(i):
        started.append(i)
        if i == 0:
            raise ValueError("bad summit")
        release.wait(5)

    items = list(range(20 * MIN_ITEMS_PER_THREAD))
    timer = threading.Timer(0.5, release.set)
    timer.start()
    with pytest.raises(ValueError, match="bad summit"):
        cpu_threads(2, threaded_map, item, items)
    timer.cancel()
    assert len(started) < len(items) // 2
