"""Writes RUN_DIR/report.md and PNG training curves from a finished demo run.

    python scripts/demo_report.py RUN_DIR

Reads what the stages wrote (dataset stats.json, the pretraining
train_log.jsonl and eval_results.json, the export's export.json, the
masked-token predictions, each fine-tuning run's metrics.json, the serving
response and the stage timings) and prints where the report is.
"""

import glob
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RUNS = (("pretrained", "our pretrained bert_tiny"), ("random", "bert_tiny, random init"),
        ("minilm", "imported all-MiniLM-L6-v2"))
RECIPE = ("The budget recipe, configs/recipes/budget_tiny.{vocab,data,pretrain}.flags: a "
          "WordPiece vocabulary of 8,192 learned on the corpus, sentence pairs with NSP and "
          "static 15% masks (5 passes), pre-LN bert_tiny without dropout, learning rate 2e-3 "
          "following a wall-clock budget (warmup 10%, linear decay to 0 when it ends), clip "
          "0.5. Why (3 fine-tuning seeds per arm, against the 2018 recipe, the same recipe "
          "without NSP and random init): docs/pretraining.md, \"Pretraining on a budget\"")


def _json(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def seeds_of(finetune_dir, key):
    """metrics.json of every seed of one arm (KEY_s1, KEY_s2, ...; or KEY alone)."""
    paths = sorted(glob.glob(os.path.join(finetune_dir, f"{key}_s*", "metrics.json"))) or \
        glob.glob(os.path.join(finetune_dir, key, "metrics.json"))
    return [_json(p) for p in paths]


def mean_sd(values):
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def plot_pretraining(log, out):
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = [r["step"] for r in log]
    ax[0].plot(steps, [r["mlm_loss"] for r in log], label="MLM loss")
    if "nsp_loss" in log[0]:
        ax[0].plot(steps, [r["nsp_loss"] for r in log], label="NSP loss")
    ax[0].set_xlabel("step")
    ax[0].set_title("bert_tiny pretraining: loss")
    ax[0].legend()
    ax[1].plot(steps, [r["mlm_accuracy"] for r in log], label="MLM accuracy")
    if "nsp_accuracy" in log[0]:
        ax[1].plot(steps, [r["nsp_accuracy"] for r in log], label="NSP accuracy")
    ax[1].set_xlabel("step")
    ax[1].set_title("accuracy (training batches)")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_finetuning(metrics, out):
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in RUNS:
        if not metrics.get(key):
            continue
        m = metrics[key][0]  # the first seed's curves
        ax[0].plot([r["step"] for r in m["loss_log"]], [r["loss"] for r in m["loss_log"]],
                   label=label)
        ax[1].plot([h["epoch"] for h in m["history"]],
                   [h["dev"]["accuracy"] for h in m["history"]], marker="o", label=label)
    ax[0].set_xlabel("step")
    ax[0].set_title("Rotten Tomatoes fine-tuning: training loss")
    ax[0].legend()
    ax[1].set_xlabel("epoch")
    ax[1].set_title("dev accuracy")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(run):
    stats = _json(os.path.join(run, "dataset", "stats.json"), {})
    generation = _json(os.path.join(run, "dataset", "info.json"), {}).get("generation", {})
    log = _jsonl(os.path.join(run, "bert_tiny", "train_log.jsonl"))
    eval_log = _jsonl(os.path.join(run, "bert_tiny", "eval_log.jsonl"))
    evals = _json(os.path.join(run, "bert_tiny", "eval_results.json"), {})
    export = _json(os.path.join(run, "export", "bert_tiny", "1", "assets.extra", "export.json"),
                   {})
    masked = _jsonl(os.path.join(run, "mlm_predictions.jsonl"))
    metrics = {k: seeds_of(os.path.join(run, "finetune"), k) for k, _ in RUNS}
    response = _json(os.path.join(run, "serving_response.json"), {})
    request = _json(os.path.join(run, "serving_request.json"), {})
    timings = []
    if os.path.exists(os.path.join(run, "timings.tsv")):
        with open(os.path.join(run, "timings.tsv")) as f:
            timings = [line.rstrip("\n").split("\t") for line in f if line.strip()]

    lines = ["# Demo report", ""]
    if timings:
        total = sum(float(t[1]) for t in timings)
        lines += ["## Stages (wall seconds on this machine)", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| {name} | {float(sec):.0f} |" for name, sec in timings]
        lines += [f"| **total** | **{total:.0f}** |", ""]
    if stats:
        lines += ["## Pretraining data", "",
                  f"{stats.get('documents', 0):,} documents, {stats.get('sentences', 0):,} "
                  f"sentences, {stats.get('tokens', 0):,} tokens -> "
                  f"{stats.get('train_instances', 0):,} training and "
                  f"{stats.get('eval_instances', 0):,} held-out instances of 128 tokens.", ""]
        if "cleaning" in generation:
            quality = sum(v for k, v in stats.items() if k.startswith("removed_quality_"))
            lines += [f"Cleaning ({generation['cleaning'].get('done', 'none')}), before "
                      f"anything was bucketed: of {stats.get('cleaning_documents_read', 0):,} "
                      f"documents read, {stats.get('removed_exact_duplicate', 0):,} exact and "
                      f"{stats.get('removed_near_duplicate', 0):,} near duplicates and "
                      f"{quality:,} by the quality rules were removed, and "
                      f"{stats.get('removed_repeated_lines', 0):,} lines repeated from other "
                      f"documents ({stats.get('cleaning_seconds', 0):.1f} s).", ""]
        contamination = generation.get("decontamination")
        if contamination:
            lines += [f"The held-out split is decontaminated: it was drawn after dedup, so "
                      f"{contamination['eval_documents_with_a_duplicate_in_train']} held-out "
                      "documents have a duplicate in training (per cluster of duplicates one "
                      "document is kept, in one split).", ""]
    lines += ["## Recipe", "", RECIPE + ".", ""]
    if log:
        plot_pretraining(log, os.path.join(run, "pretrain_curves.png"))
        first, last = log[0], log[-1]
        lines += ["## Pretraining bert_tiny", "",
                  f"{last['step']} steps of 32 in the budget: MLM loss {first['mlm_loss']:.2f} -> "
                  f"{last['mlm_loss']:.2f}" + (f", NSP loss {first['nsp_loss']:.3f} -> "
                                               f"{last['nsp_loss']:.3f}" if "nsp_loss" in last
                                               else "") + ".", ""]
        if evals:
            nsp = (f", NSP accuracy {evals['eval_nsp_accuracy']:.3f}"
                   if "eval_nsp_accuracy" in evals else "")
            lines += [f"Held-out split: MLM accuracy {evals.get('eval_mlm_accuracy', 0):.3f}, "
                      f"perplexity {evals.get('eval_mlm_perplexity', 0):,.0f}{nsp}.", ""]
        if eval_log:
            lines += ["At each checkpoint (held-out MLM accuracy; linear probe on the frozen "
                      "encoder, Rotten Tomatoes dev accuracy):", "",
                      "| step | held-out MLM accuracy | probe accuracy |", "|---|---|---|"]
            lines += [f"| {r['step']} | {r.get('eval_mlm_accuracy', float('nan')):.3f} | "
                      f"{r.get('probe_accuracy', float('nan')):.3f} |" for r in eval_log]
            lines.append("")
        lines += ["![pretraining](pretrain_curves.png)", ""]
    if export:
        v = export.get("verification", {})
        lines += ["## Export", "",
                  f"SavedModel `{export['saved_models']['serving']}` and its token_ids, TF Hub "
                  f"encoder and preprocessor siblings, run in a fresh process by TF Serving's "
                  f"session loader (every signature), tf.saved_model.load and saved_model_cli: "
                  f"max abs diff {v.get('max_abs_diff', float('nan')):.1e} vs Keras over "
                  f"{v.get('outputs_compared', 0)} outputs; tf-text ops needed: "
                  f"{', '.join(v.get('tf_text_ops_needed', []))}.", ""]
    if masked:
        lines += ["Masked-token predictions of the exported model:", ""]
        for r in masked:
            preds = "; ".join(", ".join(f"{t} ({p:.2f})" for t, p in m["predictions"][:3])
                              for m in r["masked"])
            lines.append(f"- `{r['text']}` -> {preds}")
        lines.append("")
    if any(metrics.values()):
        plot_finetuning(metrics, os.path.join(run, "finetune_curves.png"))
        lines += ["## Fine-tuning on Rotten Tomatoes sentiment, same budget", "",
                  "| start | seeds | dev accuracy, mean +- sd | test accuracy, mean +- sd | "
                  "train s per run |", "|---|---|---|---|---|"]
        dev_of = {}
        for key, label in RUNS:
            runs = metrics.get(key)
            if runs:
                dev_of[key] = [next(iter(m["dev"].values()))["accuracy"] for m in runs]
                test = [m.get("test", {}).get("accuracy", float("nan")) for m in runs]
                lines.append(f"| {label} | {len(runs)} | %.4f +- %.4f | %.4f +- %.4f | %.0f |" % (
                    *mean_sd(dev_of[key]), *mean_sd(test),
                    statistics.mean(m["train_seconds"] for m in runs)))
        if dev_of.get("pretrained") and dev_of.get("random"):
            (p, p_sd), (r, r_sd) = mean_sd(dev_of["pretrained"]), mean_sd(dev_of["random"])
            lines += ["", f"Pretraining's gain over random init: **{(p - r) * 100:+.1f} points** "
                      f"of dev accuracy (means of {len(dev_of['pretrained'])} and "
                      f"{len(dev_of['random'])} seeds; sd {p_sd * 100:.1f} and "
                      f"{r_sd * 100:.1f} points)."]
        lines += ["", "![fine-tuning](finetune_curves.png)", ""]
    if response:
        lines += ["## Serving", "", "Request (TF Serving REST body):", "", "```json",
                  json.dumps(request, ensure_ascii=False), "```", "", "Response:", "", "```json",
                  json.dumps({"predictions": [{k: v for k, v in p.items() if k != "input_ids"}
                                              for p in response["predictions"]]},
                             ensure_ascii=False), "```", ""]
    path = os.path.join(run, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"Report: {path}")
    for png in ("pretrain_curves.png", "finetune_curves.png"):
        if os.path.exists(os.path.join(run, png)):
            print(f"Plot:   {os.path.join(run, png)}")


if __name__ == "__main__":
    main(sys.argv[1])
