"""Quality per compute: the 2018 BERT recipe against the modern one, with an ablation.

    .venv/bin/python benchmarks/bench_recipes.py [--budget_minutes 15] [--arms A,B,...]
        [--preset bert_tiny --learning_rate 2e-3]   (the demo's model and rate)

The demo's corpus (the Wikipedia dump excerpt, the lead sections, the plays;
uncased BERT vocabulary, length 128), bert_mini, the same wall-clock
pretraining budget for every arm, run back to back on this machine. The
budget becomes a step count per arm from a short calibration run of that arm
(so each schedule warms up and decays over the budget, as a budget-aware
schedule does). 5% of the documents are held out by hash, the same ones for
every arm; every model is scored on one evaluation set made from them:
single segments with static masks at 15% (so the recipes are scored alike).
Then each model is fine-tuned as the demo does (Rotten Tomatoes, 2 epochs,
learning rate 1e-4, length 64, batch 32, best epoch on dev).

Arms (configs/recipes/ flagfiles, plus the one change an ablation makes):
    bert2018         NSP pairs, static 15% masks, dupe 5, dropout 0.1, fp32
    modern           packed, no NSP, dynamic 30%, dropout 0, bf16 where native (auto)
    no_nsp           bert2018 with single segments (one document per sequence)
    packing          no_nsp with packed sequences
    mask30           bert2018 with static 30% masks (39 per sequence)
    modern_bf16      modern in mixed_bfloat16 for modern's step count (bf16's quality
                     check; on a CPU without native bf16 it takes longer than the budget)

Real tokens/s counts non-padding positions: examples/s (the median of the
logged windows after the first) x 128 x the dataset's non-padding fraction.
Writes benchmarks/results/recipes.json and prints a Markdown table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")
RECIPES = os.path.join(ROOT, "configs", "recipes")
SEQ = 128

ARMS = {
    "bert2018": ("bert2018_mini", [], []),
    "modern": ("modern_mini", [], []),
    "no_nsp": ("bert2018_mini", ["--nonext_sentence_prediction"], []),
    "packing": ("bert2018_mini", ["--nonext_sentence_prediction", "--packing"], []),
    "mask30": ("bert2018_mini", ["--masked_lm_prob=0.3", "--max_predictions_per_seq=39"], []),
    "modern_bf16": ("modern_mini", [], ["--mixed_precision=mixed_bfloat16"]),
}


def run(*args):
    proc = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode:
        sys.exit(f"{args[0]} failed:\n{proc.stderr[-3000:]}")
    return proc


def corpus_args():
    return ["--input_file", f"wikipedia:{DATA}/wikipedia/enwiki-excerpt.xml.bz2,"
            f"jsonl:{DATA}/wiki_leads/leads.jsonl,books:{DATA}/plays/*.txt",
            "--vocab_file", f"{DATA}/vocab/uncased_vocab.txt", "--eval_fraction", 0.05]


def make_dataset(work, name, recipe, extra):
    out = os.path.join(work, f"data_{name}")
    if not os.path.exists(out):
        proc = run("pipeline.create_pretraining_data", f"--flagfile={RECIPES}/{recipe}.data.flags",
                   *corpus_args(), *extra, "--output_dir", out)
        wrote = next(line for line in proc.stderr.splitlines() if line.startswith("Wrote"))
        stats = json.loads(wrote.split("stats: ", 1)[1])
        with open(os.path.join(out, "bench_stats.json"), "w") as f:
            json.dump(stats, f)
    with open(os.path.join(out, "bench_stats.json")) as f:
        stats = json.load(f)
    real = 1.0 - stats["padding_positions"] / (stats["instances"] * SEQ)
    return out, real


def train_log(model_dir):
    with open(os.path.join(model_dir, "train_log.jsonl")) as f:
        return [json.loads(line) for line in f]


def pretrain(work, name, recipe, data, extra, steps, log_steps, evalset=None):
    out = os.path.join(work, name)
    args = ["model.pretrain", f"--flagfile={RECIPES}/{recipe}.pretrain.flags", *extra,
            "--input_file", data, "--output_dir", out, "--num_train_steps", steps,
            "--num_warmup_steps", max(steps // 10, 1), "--log_steps", log_steps,
            "--save_checkpoints_steps", steps]
    if evalset:
        args += ["--eval_input_file", evalset]
    t0 = time.time()
    run(*args)
    return out, time.time() - t0


def rate(model_dir):
    """Examples/s: the median of the logged windows after the first (start-up, tracing)."""
    windows = [r["examples_per_second"] for r in train_log(model_dir)]
    return statistics.median(windows[1:] or windows)


def finetune(work, name, model_dir, epochs):
    rt = os.path.join(DATA, "rotten_tomatoes")
    out = os.path.join(work, f"ft_{name}")
    run("model.finetune", "--task", "sst2", "--init_checkpoint", model_dir,
        "--train_file", f"{rt}/train.tsv", "--eval_file", f"{rt}/dev.tsv",
        "--test_file", f"{rt}/test.tsv", "--output_dir", out, "--max_seq_length", 64,
        "--train_batch_size", 32, "--num_train_epochs", epochs, "--learning_rate", 1e-4,
        "--log_steps", 100, "--seed", 42)
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    return next(iter(m["dev"].values()))["accuracy"], m["test"]["accuracy"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget_minutes", type=float, default=15)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--calibration_steps", type=int, default=40)
    parser.add_argument("--finetune_epochs", type=float, default=2)
    parser.add_argument("--preset", default="",
                        help="another model size than the recipes' bert_mini (the demo's: "
                        "bert_tiny)")
    parser.add_argument("--learning_rate", type=float, default=0,
                        help="another peak learning rate than the recipes' 5e-4")
    args = parser.parse_args()
    arms = args.arms.split(",")
    unknown = set(arms) - set(ARMS)
    if unknown:
        sys.exit(f"unknown arms {sorted(unknown)}; known: {', '.join(ARMS)}")
    budget = args.budget_minutes * 60
    common = ([f"--preset={args.preset}"] if args.preset else []) + (
        [f"--learning_rate={args.learning_rate}"] if args.learning_rate else [])
    model_name = args.preset or "bert_mini"
    results = {"load_average_at_start": os.getloadavg(), "budget_minutes": args.budget_minutes,
               "model": model_name, "learning_rate": args.learning_rate or 5e-4,
               "max_seq_length": SEQ, "arms": {}}
    with tempfile.TemporaryDirectory() as work:
        # One evaluation set: the held-out documents, single segments, static 15% masks.
        evalset = os.path.join(work, "evalset")
        run("pipeline.create_pretraining_data", *corpus_args(), "--output_dir", evalset,
            "--max_seq_length", SEQ, "--max_predictions_per_seq", 20,
            "--nonext_sentence_prediction", "--dupe_factor", 1)
        steps_of = {}
        for name in arms:
            recipe, data_extra, train_extra = ARMS[name]
            train_extra = common + train_extra
            data, real = make_dataset(work, name, recipe, data_extra)
            if name == "modern_bf16" and "modern" in steps_of:
                steps = steps_of["modern"]  # bf16's check: the same steps as modern
            else:
                calib, _ = pretrain(work, f"calibrate_{name}", recipe, data, train_extra,
                                    args.calibration_steps, max(args.calibration_steps // 4, 1))
                steps = max(int(budget * rate(calib) / 32), 10)
            steps_of[name] = steps
            model, seconds = pretrain(work, name, recipe, data, train_extra, steps,
                                      max(steps // 20, 1), evalset)
            with open(os.path.join(model, "eval_results.json")) as f:
                evaluation = json.load(f)
            eps = rate(model)
            log = train_log(model)
            dev, test = finetune(work, name, model, args.finetune_epochs)
            results["arms"][name] = {
                "steps": steps, "pretrain_wall_seconds": round(seconds, 1),
                "examples_per_second": round(eps, 1), "non_padding_fraction": round(real, 4),
                "real_tokens_per_second": round(eps * SEQ * real),
                "final_mlm_loss": log[-1]["mlm_loss"],
                "heldout_mlm_accuracy": evaluation["eval_mlm_accuracy"],
                "heldout_mlm_loss": evaluation["eval_mlm_loss"],
                "rt_dev_accuracy": dev, "rt_test_accuracy": test}
            print(name, results["arms"][name], flush=True)
            os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
            with open(os.path.join(ROOT, "benchmarks", "results", "recipes.json"), "w") as f:
                json.dump(results, f, indent=2)
    print(f"\nbudget {args.budget_minutes:g} min of pretraining per arm, {model_name}, "
          f"learning rate {results['learning_rate']:g}, length {SEQ}\n")
    print("| arm | steps | real tokens/s | non-pad | held-out MLM acc | RT dev | RT test |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results["arms"].items():
        print(f"| {name} | {r['steps']} | {r['real_tokens_per_second']:,} | "
              f"{r['non_padding_fraction']:.1%} | {r['heldout_mlm_accuracy']:.4f} | "
              f"{r['rt_dev_accuracy']:.4f} | {r['rt_test_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
