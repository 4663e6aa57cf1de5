"""Task-adaptive pretraining (TAPT, Gururangan et al. 2020): does continued MLM on the
task's own unlabelled text help fine-tuning? Measured on this machine.

    .venv/bin/python benchmarks/bench_adaptation.py [--tapt_steps 600] [--seeds 42]
        [--domain_vocab]

all-MiniLM-L6-v2 (DATA.md) imported by model.import_checkpoint; the
Rotten Tomatoes train reviews without their labels, one review per document,
through pipeline.create_pretraining_data (MLM only, --nonext_sentence_prediction,
dynamic masking, length 64); model.pretrain --init_checkpoint MiniLM for a
fixed budget of optimizer steps (batch 32, peak learning rate 5e-5, 10%
warmup, 15% masking); then docs/finetuning.md's MiniLM fine-tuning (bench_finetune.py:
3 epochs, learning rate 2e-5, length 64, batch 32, best epoch on dev) from
the adapted model and from MiniLM directly, with the same seeds. With
--domain_vocab, a third arm adapts with a domain vocabulary
(pipeline.build_vocab --base_vocab_file: MiniLM's [unused*] slots filled by
review words, started at the mean of their pieces). The budget is given in
steps, so that the result does not depend on the machine's load; the wall
time of the adaptation is reported beside it. Writes
benchmarks/results/adaptation.json and prints a Markdown table.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_finetune import DATA, ROOT, import_minilm, ours  # noqa: E402

SEQ = 64


def run(*args):
    proc = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(map(str, args[:1]))} failed:\n{proc.stderr[-3000:]}")
    return proc


def unlabelled_reviews(work):
    """The train split's texts, one JSON document per review, labels dropped."""
    path = os.path.join(work, "rt_train_texts.jsonl")
    with open(os.path.join(DATA, "rotten_tomatoes", "train.tsv"), encoding="utf-8") as f, \
            open(path, "w", encoding="utf-8") as out:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            out.write(json.dumps({"text": row["sentence"]}) + "\n")
    return path


def adapt(work, name, minilm, texts, vocab_file, steps, seed):
    """MLM-only dataset in `vocab_file`, then model.pretrain --init_checkpoint MiniLM."""
    dataset = os.path.join(work, f"{name}_data")
    made = run("pipeline.create_pretraining_data", "--input_file", texts, "--input_format", "jsonl",
        "--vocab_file", vocab_file, "--output_dir", dataset, "--max_seq_length", SEQ,
        "--nonext_sentence_prediction", "--masking", "dynamic", "--dupe_factor", 1,
        "--random_seed", seed)
    out = os.path.join(work, name)
    t0 = time.time()
    proc = run("model.pretrain", "--input_file", dataset, "--output_dir", out,
               "--init_checkpoint", minilm, "--num_train_steps", steps,
               "--num_warmup_steps", steps // 10, "--learning_rate", 5e-5,
               "--train_batch_size", 32, "--masked_lm_prob", 0.15,
               "--max_predictions_per_seq", 10, "--save_checkpoints_steps", steps,
               "--log_steps", max(steps // 10, 1), "--seed", seed)
    wall = time.time() - t0
    loaded = next(line for line in proc.stderr.splitlines() if line.startswith("Initialized"))
    with open(os.path.join(out, "train_log.jsonl")) as f:
        log = [json.loads(line) for line in f]
    wrote = next(line for line in made.stderr.splitlines() if line.startswith("Wrote"))
    tokens = json.loads(wrote.split("stats: ", 1)[1])["tokens"]
    return out, {"steps": steps, "wall_seconds": round(wall, 1), "loaded": loaded,
                 "mlm_loss_first_log": log[0]["mlm_loss"], "mlm_loss_last": log[-1]["mlm_loss"],
                 "mlm_accuracy_last": log[-1]["mlm_accuracy"], "corpus_wordpieces": tokens}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tapt_steps", type=int, default=600,
                        help="adaptation budget in optimizer steps of 32 reviews")
    parser.add_argument("--seeds", default="42", help="comma-separated fine-tuning seeds")
    parser.add_argument("--domain_vocab", action="store_true", help="add the domain-vocab arm")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {"load_average_at_start": os.getloadavg(), "tapt_steps": args.tapt_steps,
               "tapt_batch": 32, "tapt_learning_rate": 5e-5, "max_seq_length": SEQ,
               "finetune": {"epochs": 3, "lr": 2e-5, "batch": 32}, "seeds": seeds, "arms": {}}
    with tempfile.TemporaryDirectory() as work:
        minilm = import_minilm(work)
        texts = unlabelled_reviews(work)
        inits = {"minilm": (minilm, None)}
        out, info = adapt(work, "tapt", minilm, texts, os.path.join(minilm, "vocab.txt"),
                          args.tapt_steps, seeds[0])
        inits["minilm+tapt"] = (out, info)
        print("tapt", info, flush=True)
        if args.domain_vocab:
            vocab = os.path.join(work, "domain_vocab.txt")
            run("pipeline.build_vocab", "--input_file", texts, "--input_format", "jsonl",
                "--base_vocab_file", os.path.join(minilm, "vocab.txt"), "--output_file", vocab)
            out, info = adapt(work, "tapt_vocab", minilm, texts, vocab, args.tapt_steps,
                              seeds[0])
            inits["minilm+tapt+domain_vocab"] = (out, info)
            print("tapt+domain vocab", info, flush=True)
        for name, (init, info) in inits.items():
            runs = {}
            for seed in seeds:
                runs[seed] = ours(work, "rt", 3, seed, lr=2e-5, init=init, name=name)
                print(name, seed, runs[seed], flush=True)
            results["arms"][name] = {"adaptation": info, "finetune": runs}
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "adaptation.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nadaptation budget: {args.tapt_steps} steps x 32 reviews, length {SEQ}\n")
    print("| start of fine-tuning | adaptation wall time | seed | dev accuracy | test accuracy |")
    print("|---|---|---|---|---|")
    for name, arm in results["arms"].items():
        wall = f"{arm['adaptation']['wall_seconds']:.0f} s" if arm["adaptation"] else "-"
        for seed, r in arm["finetune"].items():
            print(f"| {name} | {wall} | {seed} | {r['dev']:.4f} | "
                  f"{r['test']:.4f} |")


if __name__ == "__main__":
    main()
