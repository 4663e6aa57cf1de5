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

echo "== 1. Sample data: real Wikipedia dump excerpt, lead sections, plays, reviews, MiniLM =="
run "$PY" -m pipeline.sample_data --data_dir "$DATA"

echo
echo "== 2. A WordPiece vocabulary learned from the lead sections =="
echo "(shown for the record; the datasets below use the standard uncased BERT vocab, so"
echo " that models pretrained here and published checkpoints such as MiniLM share ids)"
run "$PY" -m pipeline.build_vocab --input_file "$DATA/wiki_leads/leads.jsonl" \
    --input_format jsonl --vocab_size 30522 --output_file "$RUN/learned_vocab.txt"

echo
echo "== 3. Pretraining data: Wikipedia dump excerpt + lead sections + plays, 5% held out =="
run "$PY" -m pipeline.create_pretraining_data \
    --input_file "wikipedia:$DATA/wikipedia/enwiki-excerpt.xml.bz2,jsonl:$DATA/wiki_leads/leads.jsonl,books:$DATA/plays/*.txt" \
    --vocab_file "$DATA/vocab/uncased_vocab.txt" --output_dir "$RUN/dataset" \
    --max_seq_length 128 --max_predictions_per_seq 20 --dupe_factor 5 \
    --num_shards 8 --eval_fraction 0.05 --overwrite

echo
echo "== 4. What the dataset holds =="
run "$PY" -m tfrecords.inspect "$RUN/dataset" --num_examples 2

echo
echo "== 5. Pretraining bert_tiny (MLM + NSP), evaluated on the held-out split =="
run "$PY" -m model.pretrain --flagfile=configs/bert_tiny.flags \
    --input_file "$RUN/dataset" --output_dir "$RUN/bert_tiny" \
    --num_train_steps "${DEMO_PRETRAIN_STEPS:-600}" --num_warmup_steps 60 --log_steps 100 \
    --save_checkpoints_steps 200 --eval_input_file "$RUN/dataset" --max_eval_steps 50

echo
echo "Demo so far: data, vocabulary, pretraining data and pretraining (in $RUN)."
echo "Rerunning step 5 resumes from its last checkpoint (delete $RUN/bert_tiny to start over)."
echo "Export and fine-tuning join this script as their issues land."
