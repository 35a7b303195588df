#!/bin/bash
# Score a large grid on a dask cluster inside one SLURM allocation: a scheduler on the first node,
# one dask worker per node (srun), and `seamountae score --scheduler` as the client. Workers read
# the grid from the shared file system; the model is sent to them once. The output equals a
# single-piece run's.
#
#   sbatch configs/slurm/score_dask.sh
#
# Edit GRID, MODEL and OUT (or set them in the environment), the node count and the resources.
# (With dask-jobqueue, a SLURMCluster's `scheduler_address` goes to --scheduler the same way.)
#SBATCH --job-name=seamountae-dask
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --mem=16G
#SBATCH --time=02:00:00
#SBATCH --output=seamountae-dask-%j.log
set -euo pipefail

GRID=${GRID:-gebco_2024.nc}
MODEL=${MODEL:-model.pt}
OUT=${OUT:-score.nc}
THREADS=${SLURM_CPUS_PER_TASK:-1}
SCHEDULER_FILE=${SCHEDULER_FILE:-$PWD/dask-scheduler-${SLURM_JOB_ID:-local}.json}

rm -f "$SCHEDULER_FILE"
dask scheduler --scheduler-file "$SCHEDULER_FILE" --dashboard-address :0 &
scheduler=$!
# One worker process per node, one task at a time; torch uses the node's cores (--threads below).
srun --ntasks="${SLURM_NNODES:-1}" --ntasks-per-node=1 \
    dask worker --scheduler-file "$SCHEDULER_FILE" --nworkers 1 --nthreads 1 --death-timeout 60 &
workers=$!
trap 'kill $workers $scheduler 2>/dev/null; wait 2>/dev/null; rm -f "$SCHEDULER_FILE"' EXIT

for _ in $(seq 120); do [[ -f "$SCHEDULER_FILE" ]] && break; sleep 1; done
seamountae score "$GRID" --model "$MODEL" -o "$OUT" --scheduler "$SCHEDULER_FILE" --threads "$THREADS" --overwrite -q
