"""Fine-tuning quality and time: our model.finetune against transformers, per task, over seeds.

    .venv/bin/python benchmarks/bench_finetune.py [--tasks rt,ner] [--seeds 1,2,3]
        [--epochs 3] [--table FILE]

all-MiniLM-L6-v2 (DATA.md), imported by model.import_checkpoint for ours, the original
files for the peer (benchmarks/peer_hf_finetune.py, in .venv-bench), the same settings
on both sides, run one after the other in the same invocation, each seed on both:

- rt: Rotten Tomatoes (make data: split by movie), sentence classification, lr 2e-5,
  max_seq_length 64; the peer is BertForSequenceClassification + Trainer.
- ner: data/ner (1,910 / 220 / 264 tweets, BIO tags), first-subword token
  classification, lr 5e-5, max_seq_length 128; the peer is BertForTokenClassification
  in Trainer's loop. Both sides' word tags are scored here by the same entity F1
  (model.tasks.metrics, seqeval's micro average).

Batch 32 (--batch), warmup 10%, weight decay 0.01, AdamW epsilon 1e-6, clip 1.0; the dev set scored
every epoch and the best epoch kept (dev accuracy / entity F1), its test score reported.
Wall time is the whole process. Writes benchmarks/results/finetune.json; --table writes
the markdown table of docs/finetuning.md.
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
sys.path.insert(0, ROOT)
DATA = os.path.join(ROOT, "data")

# task -> (our --task, data dir, files, lr, max_seq_length, metric)
TASKS = {
    "rt": ("sst2", "rotten_tomatoes", "{}.tsv", 2e-5, 64, "accuracy"),
    "ner": ("ner", "ner", "{}.txt", 5e-5, 128, "f1"),
}


def import_minilm(work):
    """all-MiniLM-L6-v2 imported into WORK/minilm (once)."""
    model = os.path.join(work, "minilm")
    if not os.path.exists(os.path.join(model, "config.json")):
        subprocess.run([sys.executable, "-m", "model.import_checkpoint", "--format", "hf",
                        "--checkpoint_dir", os.path.join(DATA, "minilm"), "--output_dir", model],
                       check=True, cwd=ROOT, capture_output=True)
    return model


def ours(work, task, epochs, seed, lr=None, init=None, name="ours", batch=32):
    """model.finetune from `init` (default: the imported MiniLM)."""
    flag, folder, files, default_lr, length, metric = TASKS[task]
    model = init or import_minilm(work)
    out = os.path.join(work, f"{name}_{task}_{seed}")
    d = os.path.join(DATA, folder)
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "model.finetune", "--task", flag, "--init_checkpoint", model,
         "--train_file", os.path.join(d, files.format("train")),
         "--eval_file", os.path.join(d, files.format("dev")),
         "--test_file", os.path.join(d, files.format("test")), "--output_dir", out,
         "--max_seq_length", str(length), "--train_batch_size", str(batch),
         "--num_train_epochs", str(epochs), "--learning_rate", str(lr or default_lr),
         "--early_stopping_patience", "0", "--seed", str(seed), "--log_steps", "100"],
        cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"model.finetune failed:\n{proc.stderr[-3000:]}")
    wall = time.time() - t0
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    return {"dev": next(iter(m["dev"].values()))[metric], "test": m["test"][metric],
            "dev_per_epoch": [h["dev"][metric] for h in m["history"]],
            "best_epoch": m["best_epoch"], "train_seconds": m["train_seconds"],
            "wall_seconds": wall}


def peer(work, task, epochs, seed, lr=None, batch=32):
    _, folder, _, default_lr, length, metric = TASKS[task]
    python = os.path.join(ROOT, ".venv-bench", "bin", "python")
    out = os.path.join(work, f"peer_{task}_{seed}")
    t0 = time.time()
    proc = subprocess.run([python, os.path.join(ROOT, "benchmarks", "peer_hf_finetune.py"),
                           "--task", task, os.path.join(DATA, "minilm"),
                           os.path.join(DATA, folder), out, str(epochs), str(lr or default_lr),
                           str(length), str(batch), str(seed)], cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode:
        raise RuntimeError(f"peer_hf_finetune.py failed:\n{proc.stderr[-3000:]}")
    wall = time.time() - t0
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if task == "rt":
        return {"dev": r["dev_accuracy"], "test": r["test_accuracy"],
                "train_seconds": r["train_seconds"], "wall_seconds": wall}
    from model.tasks import metrics as M
    from model.tasks.readers import read_conll
    gold = {s: [e.tags for e in read_conll(os.path.join(DATA, folder, f"{s}.txt"))[0]]
            for s in ("dev", "test")}
    with open(r["predictions"]) as f:
        epochs_predicted = json.load(f)
    dev = [M.entity_scores(gold["dev"], p["dev"])["f1"] for p in epochs_predicted]
    best = max(range(len(dev)), key=lambda i: (dev[i], -i))  # the first best, as ours
    return {"dev": dev[best], "test": M.entity_scores(gold["test"],
                                                       epochs_predicted[best]["test"])["f1"],
            "dev_per_epoch": dev, "best_epoch": best + 1,
            "train_seconds": r["train_seconds"], "wall_seconds": wall}


def mean_sd(values):
    return (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def table(results) -> str:
    lines = ["| task (metric) | side | dev, mean +- sd | test, mean +- sd | per seed (dev) | "
             "wall s, mean |", "|---|---|---|---|---|---|"]
    for task, by_side in results["tasks"].items():
        metric = TASKS[task][5]
        for side, runs in by_side.items():
            dev, test = mean_sd([r["dev"] for r in runs]), mean_sd([r["test"] for r in runs])
            wall = statistics.mean(r["wall_seconds"] for r in runs)
            seeds = ", ".join(f"{r['dev']:.3f}" for r in runs)
            lines.append(f"| {task} ({metric}) | {side} | {dev[0]:.4f} +- {dev[1]:.4f} | "
                         f"{test[0]:.4f} +- {test[1]:.4f} | {seeds} | {wall:.0f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="rt,ner")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--lr", type=float, default=0.0, help="0: each task's (see TASKS)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sides", default="ours,peer")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results",
                                                         "finetune.json"))
    parser.add_argument("--table", default="", help="also write the markdown table here")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"--tasks: unknown {unknown}; known: {', '.join(TASKS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {"load_average_at_start": os.getloadavg(), "epochs": args.epochs, "batch": args.batch,
               "seeds": seeds, "tasks": {}}
    with tempfile.TemporaryDirectory() as work:
        for task in tasks:
            sides = args.sides.split(",")
            by_side = results["tasks"][task] = {side: [] for side in sides}
            for seed in seeds:
                for side in sides:
                    run = {"ours": ours, "peer": peer}[side]
                    r = run(work, task, args.epochs, seed, lr=args.lr or None, batch=args.batch)
                    by_side[side].append(dict(r, seed=seed))
                    print(f"{task} seed {seed} {side}: dev {r['dev']:.4f} test {r['test']:.4f} "
                          f"wall {r['wall_seconds']:.0f} s", flush=True)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    text = table(results)
    print(text)
    if args.table:
        with open(args.table, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
