#!/usr/bin/env bash
# The whole pipeline on the real sample data, stage by stage. Every command is
# printed before it runs, so any stage can be rerun alone.
# Usage: scripts/demo.sh PYTHON DATA_DIR RUN_DIR   (make demo passes them)
set -euo pipefail
PY=${1:-.venv/bin/python}
DATA=${2:-data}
RUN=${3:-runs/demo}
mkdir -p "$RUN"

run() { printf '\n$ %s\n' "$*"; "$@"; }

echo "== 1. sample data (real Wikipedia dump excerpt, lead sections, plays, reviews, MiniLM) =="
run "$PY" -m pipeline.sample_data --data_dir "$DATA"

echo
echo "Demo so far: the data stage. Pretraining-data generation, training, export"
echo "and fine-tuning join this script as their issues land (see README.md)."
