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
# Stage timings for the report: stage NAME starts a stage, the next one (or done) ends it.
: > "$RUN/timings.tsv"
STAGE=""; STAGE_T0=$(date +%s)
stage() {
  local now; now=$(date +%s)
  [ -n "$STAGE" ] && printf '%s\t%s\n' "$STAGE" "$((now - STAGE_T0))" >> "$RUN/timings.tsv"
  STAGE="$1"; STAGE_T0=$now
  [ -n "$1" ] && printf '\n== %s ==\n' "$1"
  return 0
}

stage "1. Sample data: real Wikipedia dump excerpt, lead sections, plays, reviews, MiniLM"
run "$PY" -m pipeline.sample_data --data_dir "$DATA"

CORPUS="wikipedia:$DATA/wikipedia/enwiki-excerpt.xml.bz2,jsonl:$DATA/wiki_leads/leads.jsonl,books:$DATA/plays/*.txt"
# The recipe: configs/recipes/budget_tiny.{vocab,data,pretrain}.flags (docs/pretraining.md, "Pretraining
# on a budget", has the seed-averaged comparison that chose it). Rerun it on your corpus by
# passing the same flagfiles.
stage "2. A WordPiece vocabulary learned on the corpus (8,192 pieces, sized for bert_tiny)"
run "$PY" -m pipeline.build_vocab --flagfile=configs/recipes/budget_tiny.vocab.flags \
    --input_file "$CORPUS" --output_file "$RUN/vocab.txt"

# Deduplicated (exact, near and repeated lines) and quality-filtered before anything is
# bucketed; the 5% held out is drawn from the kept documents (docs/pipeline.md, "Cleaning").
stage "3. Pretraining data: Wikipedia dump excerpt + lead sections + plays, deduplicated, 5% held out"
run "$PY" -m pipeline.create_pretraining_data --flagfile=configs/recipes/budget_tiny.data.flags \
    --input_file "$CORPUS" --vocab_file "$RUN/vocab.txt" --output_dir "$RUN/dataset" \
    --num_shards 8 --eval_fraction 0.05 --dedup near --quality_filter --overwrite

stage "4. What the dataset holds"
run "$PY" -m tfrecords.inspect "$RUN/dataset" --num_examples 2

stage "5. Pretraining bert_tiny for ${DEMO_PRETRAIN_MINUTES:-5} minutes, held-out MLM and a probe at each checkpoint"
rm -rf "$RUN/bert_tiny"
run "$PY" -m model.pretrain --flagfile=configs/recipes/budget_tiny.pretrain.flags \
    --train_budget_minutes "${DEMO_PRETRAIN_MINUTES:-5}" \
    --input_file "$RUN/dataset" --output_dir "$RUN/bert_tiny" --log_steps 100 \
    --save_checkpoints_steps 1000 \
    --eval_input_file "$RUN/dataset" --max_eval_steps 50 \
    --probe_file "$DATA/rotten_tomatoes/train.tsv,$DATA/rotten_tomatoes/dev.tsv"

stage "6. Export for TF Serving, reload the SavedModel, predict masked tokens"
rm -rf "$RUN/export"
run "$PY" -m model.export --model_dir "$RUN/bert_tiny" --export_dir "$RUN/export"
printf '%s\n' "The capital of France is [MASK]." "He played the [MASK] in a rock band." \
    "The river flows into the [MASK] sea." "Hamlet is a [MASK] by William Shakespeare." \
    > "$RUN/masked_sentences.txt"
printf '\n$ %s\n' "$PY -m model.predict --saved_model $RUN/export/bert_tiny/1 --input_file $RUN/masked_sentences.txt --format json"
"$PY" -m model.predict --saved_model "$RUN/export/bert_tiny/1" \
    --input_file "$RUN/masked_sentences.txt" --format json | tee "$RUN/mlm_predictions.jsonl"

stage "7. Import the published all-MiniLM-L6-v2 (Hugging Face layout)"
rm -rf "$RUN/minilm"
run "$PY" -m model.import_checkpoint --format hf --checkpoint_dir "$DATA/minilm" \
    --output_dir "$RUN/minilm"

# One budget for all three: the same data, epochs, batch, length and learning rate; the two
# bert_tiny arms with DEMO_FINETUNE_SEEDS seeds each (one seed's gap is noise-sized).
EPOCHS=${DEMO_FINETUNE_EPOCHS:-2}
SEEDS=${DEMO_FINETUNE_SEEDS:-3}
FT=(--task sst2 --train_file "$DATA/rotten_tomatoes/train.tsv"
    --eval_file "$DATA/rotten_tomatoes/dev.tsv" --test_file "$DATA/rotten_tomatoes/test.tsv"
    --max_seq_length 64 --train_batch_size 32 --num_train_epochs "$EPOCHS"
    --learning_rate 1e-4 --log_steps 100)
stage "8a. Fine-tune Rotten Tomatoes sentiment from our pretrained bert_tiny ($SEEDS seeds)"
rm -rf "$RUN/finetune"
for seed in $(seq 1 "$SEEDS"); do
  run "$PY" -m model.finetune "${FT[@]}" --init_checkpoint "$RUN/bert_tiny" --seed "$seed" \
      --output_dir "$RUN/finetune/pretrained_s$seed"
done
stage "8b. ... from a randomly initialized bert_tiny, same vocabulary ($SEEDS seeds)"
for seed in $(seq 1 "$SEEDS"); do
  run "$PY" -m model.finetune "${FT[@]}" --init_checkpoint none --preset bert_tiny \
      --vocab_file "$RUN/vocab.txt" --seed "$seed" --output_dir "$RUN/finetune/random_s$seed"
done
stage "8c. ... from the imported MiniLM (one seed, ${DEMO_MINILM_EPOCHS:-1} epoch: 15x bert_tiny's step)"
run "$PY" -m model.finetune "${FT[@]}" --num_train_epochs "${DEMO_MINILM_EPOCHS:-1}" \
    --init_checkpoint "$RUN/minilm" \
    --output_dir "$RUN/finetune/minilm"

BEST=$("$PY" - "$RUN/finetune" <<'PYEOF'
import json, os, sys
scores = {}
for name in sorted(os.listdir(sys.argv[1])):
    m = json.load(open(os.path.join(sys.argv[1], name, "metrics.json")))
    scores[name] = next(iter(m["dev"].values()))["accuracy"]
print("\nRotten Tomatoes dev accuracy, same budget:", file=sys.stderr)
for name, acc in scores.items():
    print(f"  {name:<14} {acc:.4f}", file=sys.stderr)
print(max(scores, key=scores.get))
PYEOF
)

stage "9. Export the best classifier ($BEST) and answer a raw-text request as TF Serving would"
run "$PY" -m model.export --model_dir "$RUN/finetune/$BEST" --export_dir "$RUN/export" \
    --name sentiment
cat > "$RUN/serving_request.json" <<'JSON'
{"signature_name": "serving_default", "instances": [{"text": "A gripping, funny and beautifully acted film."}, {"text": "A dull, lifeless mess that goes on far too long."}]}
JSON
printf '\n$ %s\n' "$PY scripts/serve_request.py $RUN/export/sentiment/1 $RUN/serving_request.json"
"$PY" scripts/serve_request.py "$RUN/export/sentiment/1" "$RUN/serving_request.json" \
    | tee "$RUN/serving_response.json"
echo "(with TF Serving: docker run -p 8501:8501 -v \$PWD/$RUN/export/sentiment:/models/sentiment"
echo " -e MODEL_NAME=sentiment tensorflow/serving, then POST that body to"
echo " http://localhost:8501/v1/models/sentiment:predict; see WORKSPACE.md)"

stage ""
run "$PY" scripts/demo_report.py "$RUN"
