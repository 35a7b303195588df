"""The few torch.distributed helpers multi-process training needs (launched by torchrun).

`torchrun --nproc_per_node=N -m seamountae train ...` starts N copies of the command with
WORLD_SIZE, RANK, LOCAL_RANK and MASTER_ADDR/MASTER_PORT in their environment. Training then runs
data-parallel: each process computes the gradient of its share of every batch and
DistributedDataParallel averages them. Everything else here is small: who is rank 0 (the one that
writes files and shows progress), gathering per-process results, waiting for each other.
Without torchrun (or with one process) none of it does anything, and training is the
single-process code path unchanged.

Layer 3, arithmetic: imports layers 1-3 only.
"""

from __future__ import annotations

import gc
import os

import numpy as np
import torch
import torch.distributed as dist

from .errors import SeamountaeError

_LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")


def launched() -> bool:
    """True in a process started by torchrun (or an equivalent launcher) with more than one process."""
    if not all(os.environ.get(name) for name in _LAUNCH_VARIABLES):
        return False
    try:
        return int(os.environ["WORLD_SIZE"]) > 1
    except ValueError:
        return False


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank: 0 alone. From the environment once the group is gone, so the caller of
    `train` (which tears the group down) still knows whether it is the one to write the model."""
    if is_distributed():
        return dist.get_rank()
    return int(os.environ["RANK"]) if launched() else 0


def world_size() -> int:
    if is_distributed():
        return dist.get_world_size()
    return int(os.environ["WORLD_SIZE"]) if launched() else 1


def is_main() -> bool:
    return rank() == 0


def device_for(dev: torch.device) -> torch.device:
    """The device this process trains on: with CUDA, the GPU torchrun assigned it (cuda:LOCAL_RANK).

    Two processes on one GPU would share it at half speed, and NCCL refuses it outright, so an
    explicit cuda:N (one GPU for all) is refused too.
    """
    if dev.type != "cuda":
        return dev
    local, count = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
    if dev.index is not None:
        raise SeamountaeError(f"--device {dev}: names one GPU for all {world_size()} processes torchrun started; "
                              "use --device cuda (each process takes cuda:LOCAL_RANK)")
    if local >= count:
        raise SeamountaeError(f"torchrun started process {local} on this node, which has {count} CUDA device(s); "
                              f"use --nproc_per_node={count} (one process per GPU) or --device cpu")
    return torch.device("cuda", local)


def init(dev: torch.device) -> bool:
    """Join the process group torchrun set up (NCCL for CUDA, gloo for the CPU); True if this call
    created it, so that only its creator tears it down. A one-line SeamountaeError if it cannot."""
    if dist.is_initialized():
        return False
    backend = "nccl" if dev.type == "cuda" else "gloo"
    env = os.environ
    where = f"rank {env['RANK']} of {env['WORLD_SIZE']}, {env['MASTER_ADDR']}:{env.get('MASTER_PORT', '?')}"
    if backend == "nccl" and not (torch.cuda.is_available() and dist.is_nccl_available()):
        raise SeamountaeError(f"distributed training on CUDA needs NCCL, which this torch build or machine lacks "
                              f"({where}); install a CUDA build of torch, or train with --device cpu (gloo)")
    if backend == "gloo" and not dist.is_gloo_available():
        raise SeamountaeError(f"distributed training on the CPU needs gloo, which this torch build lacks ({where}); "
                              "install the standard torch build")
    try:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)  # NCCL and all_gather_object use the current device
        dist.init_process_group(backend, device_id=dev if dev.type == "cuda" else None)
    except Exception as exc:  # refused connection, timeout, a port in use: torch's messages run to pages
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise SeamountaeError(f"could not start distributed training with {backend} ({where}): {first}; "
                              "check that every node reaches the head node's address and port "
                              "(or use torchrun --standalone on one machine)") from None
    return True


def teardown(created: bool) -> None:
    if created and dist.is_initialized():
        # A DistributedDataParallel wrapper still alive (its reference cycles wait for the garbage
        # collector) when the group goes makes the process abort at exit, now and then: free it first.
        gc.collect()
        dist.destroy_process_group()


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum over processes (a copy; the argument is left alone)."""
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def all_gather_array(part: np.ndarray) -> np.ndarray:
    """Every process's array (of any length), concatenated in rank order, on every process.

    Each rank contributes a contiguous slice (`shard`), so the result is in the single-process order.
    """
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, np.asarray(part))
    return np.concatenate(parts)


def shard(n: int) -> slice:
    """This process's contiguous share of n items (sizes differ by at most one)."""
    r, w = rank(), world_size()
    return slice(n * r // w, n * (r + 1) // w)


def barrier() -> None:
    if is_distributed():
        dist.barrier()
