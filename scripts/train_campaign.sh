#!/usr/bin/env bash
# The training campaign of the bundled models ([models] issue): one model at a time on both cores,
# each from a case bank of realistic phantoms (models.bank), resumable (--resume continues from
# the run folder's checkpoint.pt), each bundled with its card after it stops.
#
#   bash scripts/train_campaign.sh [TASK ...]          (default: all four, spgr-t1 first)
#   MINUTES_spgr_t1=150 MINUTES_brain_t1t2=60 ... bash scripts/train_campaign.sh
#
# On a GPU machine add DEVICE=cuda (bf16 autocast); the cards record the device. LR=2e-4 runs a
# lower-learning-rate phase on a resumed model (Adam's lr is otherwise 1e-3, papers/000). Samples
# randomize the scanner and the field of view (models.bank.Randomization, issue [generalize]).
# This session's spgr-t1 run: INIT=1 LR=3e-4 MINUTES_spgr_t1=125 bash scripts/train_campaign.sh spgr-t1
set -euo pipefail
cd "$(dirname "$0")/.."
Q=.venv/bin/q2mri
BANK=${BANK:-out/bank}
RUNS=${RUNS:-out/train}
DEVICE=${DEVICE:-auto}
mkdir -p "$RUNS"
tasks=("$@")
[ ${#tasks[@]} -gt 0 ] || tasks=(spgr-t1 brain-t1t2 t2star fatwater-ipop)
for task in "${tasks[@]}"; do
    var="MINUTES_${task//-/_}"
    case "$task" in
        spgr-t1) minutes=${!var:-150} ;;
        brain-t1t2) minutes=${!var:-60} ;;
        *) minutes=${!var:-45} ;;
    esac
    echo "[campaign] $(date -u +%FT%TZ) $task for $minutes min" >&2
    # one model's failure must not stop the others: it is reported and the campaign goes on
    # INIT=1 starts a run without a checkpoint from the bundled weights (fine-tuning with the randomized bank)
    init=(); [ -n "${INIT:-}" ] && init=(--init "$task")
    if $Q train --task "$task" --arch physics --bank "$BANK" --bank-cases "${BANK_CASES:-40}" --workers 2 --levels 5 --width 8 \
        --batch 8 --patch 96 --steps 1000000 --max-minutes "$minutes" --seed "${SEED:-1}" --lr "${LR:-1e-3}" --device "$DEVICE" --resume --quiet "${init[@]}" \
        --out "$RUNS/$task"; then
        echo "[campaign] $(date -u +%FT%TZ) bundling $task" >&2
        # bundled only when its held-out figure is at least as good as the bundled model's (bundle_model.py says which)
        .venv/bin/python scripts/bundle_model.py "$RUNS/$task" "$task" --bank="$BANK" || echo "[campaign] $task not bundled" >&2
    else
        echo "[campaign] $(date -u +%FT%TZ) training $task failed" >&2
    fi
done
echo "[campaign] $(date -u +%FT%TZ) done" >&2
