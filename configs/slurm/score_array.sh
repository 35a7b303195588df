#!/bin/bash
# Score a large grid as a SLURM job array: each array task scores one strip of rows (with half a
# patch of halo read from its neighbours), then one dependent job merges the parts. The merged
# file equals a single `seamountae score` run's.
#
#   bash configs/slurm/score_array.sh      # submits the array and the merge job that waits for it
#   sbatch configs/slurm/score_array.sh    # the array alone; merge later with `seamountae merge`
#
# Edit GRID, MODEL and OUT (or set them in the environment), the array size (= number of tiles),
# and the resources: a task needs about 1 GB whatever the grid size.
#SBATCH --job-name=seamountae-score
#SBATCH --array=0-15
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=8
#SBATCH --mem=2G
#SBATCH --time=02:00:00
#SBATCH --output=seamountae-score-%A_%a.log
set -euo pipefail

GRID=${GRID:-gebco_2024.nc}
MODEL=${MODEL:-model.pt}
OUT=${OUT:-score}             # parts go to $OUT.parts/, the merged file to $OUT.nc

if [[ -z "${SLURM_ARRAY_TASK_ID:-}" ]]; then   # run by hand: submit the array, then the merge after it
    array=$(sbatch --parsable --export=ALL,GRID="$GRID",MODEL="$MODEL",OUT="$OUT" "$0")
    sbatch --dependency=afterok:"$array" --job-name=seamountae-merge --time=01:00:00 --mem=2G \
        --output=seamountae-merge-%j.log \
        --wrap="seamountae merge '$OUT'.parts/part_*.nc -o '$OUT.nc' --overwrite"
    echo "submitted array $array and its merge into $OUT.nc"
    exit 0
fi

TILES=${SLURM_ARRAY_TASK_COUNT:-$((SLURM_ARRAY_TASK_MAX + 1))}
mkdir -p "$OUT.parts"
seamountae score "$GRID" --model "$MODEL" -o "$OUT.parts/part_$(printf %05d "$SLURM_ARRAY_TASK_ID").nc" \
    --tiles "$TILES" --tile-index "$SLURM_ARRAY_TASK_ID" --threads "${SLURM_CPUS_PER_TASK:-1}" --overwrite -q
