"""Pretraining recipes at one wall-clock budget, scored over seeds against random init.

    .venv/bin/python benchmarks/bench_recipes.py [--budget_minutes 5] [--preset bert_tiny]
        [--arms budget,bert2018,...] [--finetune_seeds 3] [--pretrain_seeds 1]
        [--corpus SPEC] [--finetune_train_file F --finetune_eval_file F ...]

Every arm pretrains for the same wall-clock budget (`model.pretrain
--train_budget_minutes`: the schedule follows the time spent and ends at zero
when it ends; the steps are what fits) on the same corpus, back to back on this
machine. 5% of the documents are held out by hash, the same ones for every arm,
and every model is scored on one evaluation set per vocabulary made from them
(single segments, static masks at 15%), plus the linear probe of model/training/probe.py
on the fine-tuning data. Then each model is fine-tuned with --finetune_seeds
seeds, and so is a randomly initialized model of the same size for every
vocabulary in the table ("random"): accuracy is reported as mean +- sd over the
seeds, and the gain over random init of the same vocabulary with it.

Arms (flagfiles in configs/recipes/, and the one change an ablation makes):
    budget            the budget recipe (budget_tiny.*.flags): vocabulary learned on the
                      corpus (8,192), NSP pairs with static 15% masks x5, pre-LN, no
                      dropout, learning rate 2e-3, clip 0.5
    budget_packed     budget on packed single segments without NSP, 15% dynamic masks
                      (modern_mini.data.flags)
    bert2018_vocab    the 2018 recipe on the learned vocabulary
    bert2018          the 2018 recipe (bert2018_mini.*.flags): uncased BERT vocabulary, NSP
                      pairs, static 15% masks x5, dropout 0.1, post-LN, learning rate 5e-4
    modern            packed, no NSP, dynamic 30%, dropout 0 (modern_mini.*.flags)
    budget_post_ln    budget with BERT's post-LN blocks
    budget_bert_vocab budget on the uncased BERT vocabulary (30,522)
    budget_mask30     budget with 30% masks (39 per sequence)
    budget_lr5e-4     budget at the 2018 recipe's learning rate
    budget_b16        budget at batch 16 (twice the updates of the same tokens)
--preset replaces every recipe's model size (the demo's: bert_tiny).

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
DEMO_CORPUS = (f"wikipedia:{DATA}/wikipedia/enwiki-excerpt.xml.bz2,"
               f"jsonl:{DATA}/wiki_leads/leads.jsonl,books:{DATA}/plays/*.txt")
BERT_VOCAB = os.path.join(DATA, "vocab", "uncased_vocab.txt")

# name: (data flagfile, pretraining flagfile, data flags, pretraining flags,
#        vocabulary: "learned" or a file)
ARMS = {
    "budget": ("budget_tiny", "budget_tiny", [], [], "learned"),
    "bert2018": ("bert2018_mini", "bert2018_mini", [], [], BERT_VOCAB),
    "modern": ("modern_mini", "modern_mini", [], [], BERT_VOCAB),
    "budget_packed": ("modern_mini", "budget_tiny", [], [], "learned"),
    "budget_post_ln": ("budget_tiny", "budget_tiny", [], ["--model_override=norm_first=false"],
                       "learned"),
    "budget_bert_vocab": ("budget_tiny", "budget_tiny", [], [], BERT_VOCAB),
    "budget_mask30": ("budget_tiny", "budget_tiny",
                      ["--masked_lm_prob=0.3", "--max_predictions_per_seq=39"], [], "learned"),
    "budget_lr5e-4": ("budget_tiny", "budget_tiny", [], ["--learning_rate=5e-4"], "learned"),
    "budget_b16": ("budget_tiny", "budget_tiny", [], ["--train_batch_size=16"], "learned"),
    "bert2018_vocab": ("bert2018_mini", "bert2018_mini", [], [], "learned"),
}


def run(*args):
    proc = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode:
        sys.exit(f"{args[0]} failed:\n{proc.stderr[-3000:]}")
    return proc


def read_flagfile(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


class Bench:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.vocabs, self.evalsets = {}, {}

    def vocab(self, which):
        """The vocabulary file of an arm: a learned one (made once) or a given file."""
        if which != "learned":
            return which
        if which not in self.vocabs:
            out = os.path.join(self.work, "learned_vocab.txt")
            run("pipeline.build_vocab", f"--flagfile={RECIPES}/budget_tiny.vocab.flags",
                "--input_file", self.args.corpus, "--output_file", out)
            self.vocabs[which] = out
        return self.vocabs[which]

    def evalset(self, vocab):
        """The held-out documents as single segments with static 15% masks (per vocabulary)."""
        if vocab not in self.evalsets:
            out = os.path.join(self.work, f"evalset_{len(self.evalsets)}")
            run("pipeline.create_pretraining_data", "--input_file", self.args.corpus,
                "--vocab_file", vocab, "--eval_fraction", 0.05, "--output_dir", out,
                "--max_seq_length", SEQ, "--max_predictions_per_seq", 20,
                "--nonext_sentence_prediction", "--dupe_factor", 1)
            self.evalsets[vocab] = out
        return self.evalsets[vocab]

    def dataset(self, name, recipe, extra, vocab):
        out = os.path.join(self.work, f"data_{name}")
        proc = run("pipeline.create_pretraining_data", f"--flagfile={RECIPES}/{recipe}.data.flags",
                   "--input_file", self.args.corpus, "--vocab_file", vocab,
                   "--eval_fraction", 0.05, *extra, "--output_dir", out)
        with open(os.path.join(out, "stats.json")) as f:
            stats = json.load(f)
        stats = stats.get("totals", stats)
        real = 1.0 - stats.get("padding_positions", 0) / max(stats.get("instances", 1) * SEQ, 1)
        return out, real

    def pretrain(self, name, recipe, data, extra, vocab, seed):
        out = os.path.join(self.work, f"{name}_s{seed}")
        a = self.args
        args = ["model.pretrain", f"--flagfile={RECIPES}/{recipe}.pretrain.flags", *extra,
                "--input_file", data, "--output_dir", out, "--seed", seed,
                "--train_budget_minutes", a.budget_minutes, "--num_train_steps", 10_000_000,
                "--save_checkpoints_steps", 10_000_000, "--log_steps", 100,
                "--eval_input_file", self.evalset(vocab), "--probe_file",
                f"{a.finetune_train_file},{a.finetune_eval_file}"]
        if "--warmup_fraction" not in " ".join(read_flagfile(
                f"{RECIPES}/{recipe}.pretrain.flags") + extra):
            args += ["--warmup_fraction", 0.1]  # the recipes' num_warmup_steps, as a fraction
        if a.preset:
            args += [f"--preset={a.preset}"]
        t0 = time.time()
        run(*args)
        return out, time.time() - t0

    def finetune(self, name, init, seed, vocab=None):
        a = self.args
        out = os.path.join(self.work, f"ft_{name}_s{seed}")
        extra = ["--preset", a.preset or "bert_tiny", "--vocab_file", vocab] if vocab else []
        run("model.finetune", "--task", a.finetune_task, "--init_checkpoint", init, *extra,
            "--train_file", a.finetune_train_file, "--eval_file", a.finetune_eval_file,
            "--output_dir", out, "--max_seq_length", a.finetune_max_seq_length,
            "--train_batch_size", 32, "--num_train_epochs", a.finetune_epochs,
            "--learning_rate", a.finetune_learning_rate, "--log_steps", 1000, "--seed", seed)
        with open(os.path.join(out, "metrics.json")) as f:
            m = json.load(f)
        return next(iter(m["dev"].values()))["accuracy"]


def mean_sd(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def train_log(model_dir):
    with open(os.path.join(model_dir, "train_log.jsonl")) as f:
        return [json.loads(line) for line in f]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget_minutes", type=float, default=5)
    parser.add_argument("--arms", default="budget,bert2018")
    parser.add_argument("--preset", default="bert_tiny",
                        help="the model size of every arm ('' keeps each recipe's)")
    parser.add_argument("--pretrain_seeds", type=int, default=1)
    parser.add_argument("--finetune_seeds", type=int, default=3)
    parser.add_argument("--corpus", default=DEMO_CORPUS,
                        help="create_pretraining_data --input_file spec")
    parser.add_argument("--finetune_task", default="sst2")
    parser.add_argument("--finetune_train_file", default=f"{DATA}/rotten_tomatoes/train.tsv")
    parser.add_argument("--finetune_eval_file", default=f"{DATA}/rotten_tomatoes/dev.tsv")
    parser.add_argument("--finetune_epochs", type=float, default=2)
    parser.add_argument("--finetune_learning_rate", type=float, default=1e-4)
    parser.add_argument("--finetune_max_seq_length", type=int, default=64)
    parser.add_argument("--no_random", action="store_true", help="skip the random-init rows")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results",
                                                         "recipes.json"))
    args = parser.parse_args()
    arms = args.arms.split(",")
    unknown = set(arms) - set(ARMS)
    if unknown:
        sys.exit(f"unknown arms {sorted(unknown)}; known: {', '.join(ARMS)}")
    results = {"load_average_at_start": os.getloadavg(), "args": vars(args), "arms": {},
               "random": {}}
    seeds = range(1, args.finetune_seeds + 1)

    def save():
        os.makedirs(os.path.dirname(args.output), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)

    with tempfile.TemporaryDirectory() as work:
        bench = Bench(args, work)
        for name in arms:
            data_recipe, recipe, data_extra, train_extra, which = ARMS[name]
            vocab = bench.vocab(which)
            data, real = bench.dataset(name, data_recipe, data_extra, vocab)
            for pseed in range(1, args.pretrain_seeds + 1):
                model, seconds = bench.pretrain(name, recipe, data, train_extra, vocab, pseed)
                with open(os.path.join(model, "eval_results.json")) as f:
                    evaluation = json.load(f)
                log = [r for r in train_log(model) if "examples_per_second" in r]
                eps = statistics.median(r["examples_per_second"] for r in log[1:] or log)
                dev = [bench.finetune(f"{name}_p{pseed}", model, s) for s in seeds]
                results["arms"][f"{name}" + (f" (pretrain seed {pseed})"
                                             if args.pretrain_seeds > 1 else "")] = {
                    "vocab": os.path.basename(vocab) if which != "learned" else "learned",
                    "vocab_size": sum(1 for _ in open(vocab)),
                    "steps": log[-1]["step"], "pretrain_wall_seconds": round(seconds, 1),
                    "examples_per_second": round(eps, 1),
                    "real_tokens_per_second": round(eps * SEQ * real),
                    "heldout_mlm_accuracy": evaluation["eval_mlm_accuracy"],
                    "heldout_mlm_loss": evaluation["eval_mlm_loss"],
                    "probe_accuracy": evaluation["probe_accuracy"],
                    "finetune_dev_accuracy": dev}
                print(name, json.dumps(list(results["arms"].values())[-1]), flush=True)
                save()
        if not args.no_random:
            for vocab in sorted(set(ARMS[n][4] for n in arms)):
                path = bench.vocab(vocab)
                label = "learned" if vocab == "learned" else os.path.basename(vocab)
                results["random"][label] = [bench.finetune(f"random_{label}", "none", s, path)
                                            for s in seeds]
                save()
    print_table(results)


def print_table(results):
    a = results["args"]
    print(f"\n{a['preset'] or 'each recipe size'}, {a['budget_minutes']:g} minutes of "
          f"pretraining per arm, then {a['finetune_task']} fine-tuning ({a['finetune_epochs']:g} "
          f"epochs at {a['finetune_learning_rate']:g}, best epoch on dev), "
          f"{a['finetune_seeds']} seeds: mean +- sd\n")
    print("| arm | vocabulary | steps | real tokens/s | held-out MLM acc | probe acc | "
          "dev accuracy | vs random |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results["arms"].items():
        m, sd = mean_sd(r["finetune_dev_accuracy"])
        rnd = results["random"].get(r["vocab"])
        gain = f"{(m - mean_sd(rnd)[0]) * 100:+.1f} pts" if rnd else ""
        print(f"| {name} | {r['vocab']} ({r['vocab_size']:,}) | {r['steps']:,} | "
              f"{r['real_tokens_per_second']:,} | {r['heldout_mlm_accuracy']:.3f} | "
              f"{r['probe_accuracy']:.3f} | {m:.3f} +- {sd:.3f} | {gain} |")
    for vocab, dev in results["random"].items():
        m, sd = mean_sd(dev)
        print(f"| random init | {vocab} | 0 | | | | {m:.3f} +- {sd:.3f} | |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        with open(sys.argv[2]) as f:
            print_table(json.load(f))
    else:
        main()
