#!/bin/bash
# Data-parallel training on 2 nodes x 4 GPUs (8 processes): one torchrun per node, which starts
# one training process per GPU; they average their gradients after every batch.
#
#   sbatch configs/slurm/train_ddp.sh
#
# Edit PATCHES, MODEL and the training options (or set them in the environment), the
# environment activation, and the resources: keep GPUS_PER_NODE equal to --gpus-per-node, add
# your partition/account. The batch size is that of a single-process run, split over the
# processes, so the model equals a single-process one up to rounding. With --resume (below) a
# requeued or resubmitted job continues from MODEL.pt.ckpt instead of starting afresh.
#SBATCH --job-name=seamountae-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=04:00:00
#SBATCH --output=seamountae-train-%j.log
set -euo pipefail

# source "$HOME/venvs/seamountae/bin/activate"   # edit: the environment with seamountae installed

PATCHES=${PATCHES:-patches.nc}   # from `seamountae tile`, on a file system every node reads
MODEL=${MODEL:-model.pt}         # written by rank 0 only, with its checkpoint MODEL.pt.ckpt beside it
GPUS_PER_NODE=${GPUS_PER_NODE:-4}

# The rendezvous (c10d) is served from the allocation's first node; every torchrun connects to it.
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)
# CPU threads per training process: the node's cores shared among its processes (at least 1).
threads=$(( ${SLURM_CPUS_PER_TASK:-$GPUS_PER_NODE} / GPUS_PER_NODE ))
export OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 ))

srun torchrun \
    --nnodes="$SLURM_NNODES" \
    --nproc_per_node="$GPUS_PER_NODE" \
    --rdzv_id="$SLURM_JOB_ID" \
    --rdzv_backend=c10d \
    --rdzv_endpoint="$head:29500" \
    -m seamountae train "$PATCHES" -o "$MODEL" --epochs 40 --seed 0 --device cuda --resume
