"""Fine-tuning quality and time: our model.finetune against transformers' Trainer.

    .venv/bin/python benchmarks/bench_finetune.py [--epochs 3] [--lr 2e-5]

all-MiniLM-L6-v2 (DATA.md) imported by model.import_checkpoint, fine-tuned on
the Rotten Tomatoes train split (make data: split by movie), max_seq_length
64, batch 32, warmup 10%, weight decay 0.01, the best epoch on dev kept; the
peer is BertForSequenceClassification + Trainer from the same weights and
tokenizer (benchmarks/peer_hf_finetune.py, in .venv-bench), run in the same
invocation, one after the other. Wall time is the whole process (start-up,
tokenization, training, evaluation). Writes benchmarks/results/finetune.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")


def import_minilm(work):
    """all-MiniLM-L6-v2 imported into WORK/minilm (once)."""
    model = os.path.join(work, "minilm")
    if not os.path.exists(os.path.join(model, "config.json")):
        subprocess.run([sys.executable, "-m", "model.import_checkpoint", "--format", "hf",
                        "--checkpoint_dir", os.path.join(DATA, "minilm"), "--output_dir", model],
                       check=True, cwd=ROOT, capture_output=True)
    return model


def ours(work, epochs, lr, seed, init=None, name="ours"):
    """model.finetune from `init` (default: the imported MiniLM), README's MiniLM row."""
    model = init or import_minilm(work)
    out = os.path.join(work, f"{name}_{seed}")
    rt = os.path.join(DATA, "rotten_tomatoes")
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "model.finetune", "--task", "sst2", "--init_checkpoint",
                    model, "--train_file", f"{rt}/train.tsv", "--eval_file", f"{rt}/dev.tsv",
                    "--test_file", f"{rt}/test.tsv", "--output_dir", out, "--max_seq_length", "64",
                    "--train_batch_size", "32", "--num_train_epochs", str(epochs),
                    "--learning_rate", str(lr), "--early_stopping_patience", "0",
                    "--seed", str(seed), "--log_steps", "100"], check=True, cwd=ROOT,
                   capture_output=True)
    wall = time.time() - t0
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    dev = next(iter(m["dev"].values()))
    return {"dev_accuracy": dev["accuracy"], "test_accuracy": m["test"]["accuracy"],
            "train_seconds": m["train_seconds"], "wall_seconds": wall,
            "best_epoch": m["best_epoch"]}


def peer(work, epochs, lr, seed):
    python = os.path.join(ROOT, ".venv-bench", "bin", "python")
    proc = subprocess.run([python, os.path.join(ROOT, "benchmarks", "peer_hf_finetune.py"),
                           os.path.join(DATA, "minilm"), os.path.join(DATA, "rotten_tomatoes"),
                           os.path.join(work, f"peer_{seed}"), str(epochs), str(lr), "64", "32",
                           str(seed)], check=True, cwd=ROOT, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    results = {"load_average_at_start": os.getloadavg(), "epochs": args.epochs, "lr": args.lr,
               "max_seq_length": 64, "batch": 32, "seed": args.seed}
    with tempfile.TemporaryDirectory() as work:
        results["ours"] = ours(work, args.epochs, args.lr, args.seed)
        print("ours", results["ours"], flush=True)
        results["peer"] = peer(work, args.epochs, args.lr, args.seed)
        print("peer", results["peer"], flush=True)
    o, p = results["ours"], results["peer"]
    results["dev_accuracy_points_vs_peer"] = 100 * (o["dev_accuracy"] - p["dev_accuracy"])
    results["wall_time_ratio_ours_over_peer"] = o["wall_seconds"] / p["wall_seconds"]
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "finetune.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"dev accuracy: ours {o['dev_accuracy']:.4f}, peer {p['dev_accuracy']:.4f} "
          f"({results['dev_accuracy_points_vs_peer']:+.2f} points); test: ours "
          f"{o['test_accuracy']:.4f}, peer {p['test_accuracy']:.4f}; wall: ours "
          f"{o['wall_seconds']:.0f} s, peer {p['wall_seconds']:.0f} s "
          f"({results['wall_time_ratio_ours_over_peer']:.2f}x)")


if __name__ == "__main__":
    main()
