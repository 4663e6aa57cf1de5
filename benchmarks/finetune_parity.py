"""Step-for-step parity of model.finetune with Hugging Face transformers, per task family.

    .venv/bin/python benchmarks/finetune_parity.py [--steps 20] [--families ner,squad]
        [--output benchmarks/results/finetune_parity.json]

For every task family that transformers has a BERT head for (classification, sentence
pairs, regression, token classification, question answering, multiple choice):

1. ours: the real all-MiniLM-L6-v2 (DATA.md), imported by model.import_checkpoint, is
   fine-tuned by our Finetuner (the real file reader, features, input pipeline, engine
   and optimizer) for --steps steps, dropout 0, float32, logging every step;
2. the exact batches our input pipeline gave those steps (Finetuner._dataset_fn, the
   function the engine distributes: the same shuffle, padding rows and trimming) and
   our head's initial weights go to benchmarks/peer_hf_steps.py (in .venv-bench), which
   trains transformers' class for the family from the original safetensors with the
   loop of transformers' Trainer (torch AdamW, linear warmup/decay, clip_grad_norm_);
3. compared: the loss and the gradient norm (before the clip) of every step, and the
   update of every weight after the last step, ||ours - peer|| / ||peer|| over all
   weights (encoder via model.import_checkpoint's name mapping, and the head) but those
   whose gradient is rounding noise (shift_invariant()).

Data, small and real: Rotten Tomatoes sentences (classification; pairs labelled
"same sentiment"; regression on 5 x label), data/ner sentences, the SQuAD v2 and
multiple-choice fixtures of tests/fixtures. tests/model/training/test_finetune_parity.py runs
this and derives its tolerances; see there.
"""

import argparse
import csv
import dataclasses
import functools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.bench_finetune import DATA, import_minilm  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
BENCH_PYTHON = os.path.join(ROOT, ".venv-bench", "bin", "python")

FAMILIES = ("classification", "pair", "regression", "ner", "squad", "multiple_choice")
HEAD_LAYERS = {"classification": "classifier", "pair": "classifier", "regression": "regressor",
               "ner": "tagger", "squad": "span", "multiple_choice": "choice_scorer"}


def _rotten_tomatoes(n):
    with open(os.path.join(DATA, "rotten_tomatoes", "train.tsv"), encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:n + 1]


def _write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerow(header)
        w.writerows(rows)
    return path


def family_data(family, work):
    """(FinetuneConfig fields naming the task and its files) of a family's small real data."""
    if family == "classification":
        path = _write_tsv(os.path.join(work, "sst.tsv"), ["sentence", "label"],
                          _rotten_tomatoes(60))
        return dict(task="sst2", train_file=path, eval_file=path)
    if family == "pair":
        rows = _rotten_tomatoes(61)
        pairs = [[a[0], b[0], "same" if a[1] == b[1] else "different"]
                 for a, b in zip(rows, rows[1:])]
        path = _write_tsv(os.path.join(work, "pairs.tsv"), ["text", "text_b", "label"], pairs)
        return dict(task="classification", train_file=path, eval_file=path,
                    text_b_column="text_b")
    if family == "regression":
        rows = [[s, f"{5.0 * int(label):.1f}"] for s, label in _rotten_tomatoes(60)]
        path = _write_tsv(os.path.join(work, "scores.tsv"), ["text", "label"], rows)
        return dict(task="regression", train_file=path, eval_file=path)
    if family == "ner":
        with open(os.path.join(DATA, "ner", "train.txt"), encoding="utf-8") as f:
            sentences = f.read().strip().split("\n\n")[:60]
        path = os.path.join(work, "ner.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n\n".join(sentences) + "\n")
        return dict(task="ner", train_file=path, eval_file=path)
    if family == "squad":
        path = os.path.join(FIXTURES, "squad", "train-v2.0.json")
        return dict(task="squad", train_file=path, eval_file=path)
    if family == "multiple_choice":
        path = os.path.join(FIXTURES, "multiple_choice", "train.jsonl")
        return dict(task="multiple_choice", train_file=path, eval_file=path)
    raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")


def run_ours(family, work, steps, batch, seq_length, learning_rate, seed=1):
    """Trains our side; returns (per-step log, initial head, batches, final weights, config).

    Weights are {path relative to the encoder or head layer: array}."""
    import tensorflow as tf
    from model.training.finetuning_run import FinetuneConfig, Finetuner

    out = os.path.join(work, f"ours_{family}")
    config = FinetuneConfig(
        **family_data(family, work), output_dir=out, init_checkpoint=import_minilm(work),
        max_seq_length=seq_length, train_batch_size=batch, learning_rate=learning_rate,
        warmup_proportion=0.1, weight_decay=0.01, clip_norm=1.0, dropout=0.0,
        mixed_precision="float32", log_steps=1, early_stopping_patience=0, seed=seed,
        max_query_length=16, doc_stride=32, save_checkpoints_steps=steps)
    f = Finetuner(config)
    per_epoch = -(-len(f.train) // batch)
    f.c = dataclasses.replace(config, num_train_epochs=steps / per_epoch)
    assert f.schedule()[1] == steps, (f.schedule(), steps)
    initial_head, batches, settings = _peer_inputs(f, family)
    model, encoder = f.model, f.task.encoder
    head = model.get_layer(HEAD_LAYERS[family])
    f.run()
    with open(os.path.join(out, "train_log.jsonl")) as fh:
        log = [json.loads(line) for line in fh]
    # The weights after the last step (train_state), not the best epoch's that run() kept.
    tf.train.Checkpoint(model=model).restore(
        tf.train.latest_checkpoint(os.path.join(out, "train_state"))).expect_partial()

    def rel(w):
        parts = w.path.split("/")
        return "/".join(parts[1:]) if parts[0] in ("backbone", encoder.name) else w.path

    final = {"encoder/" + rel(w): w.numpy() for w in encoder.weights}
    final.update({"head/" + w.path.rsplit("/", 1)[1]: w.numpy() for w in head.weights})
    return log, initial_head, batches, final, settings


def _peer_inputs(f, family, **settings):
    """(our initial head, every batch of the run as our input pipeline yields it, the peer's
    settings) of a Finetuner, its model built but not trained."""
    import tensorflow as tf

    steps_per_epoch, total, epochs = f.schedule()
    head = f.build().get_layer(HEAD_LAYERS[family])
    initial_head = {w.path.rsplit("/", 1)[1]: w.numpy() for w in head.weights}
    dataset = f._dataset_fn(steps_per_epoch, epochs, 0)(tf.distribute.InputContext())
    batches = [{k: v.numpy() for k, v in b.items()} for b in dataset.take(total)]
    opt = f.engine.config.optimizer
    settings.update(family=family, steps=total, num_labels=len(f.task.labels or []) or 1,
                    learning_rate=opt.learning_rate, num_train_steps=opt.num_train_steps,
                    num_warmup_steps=opt.num_warmup_steps, weight_decay=opt.weight_decay,
                    beta_1=opt.beta_1, beta_2=opt.beta_2, epsilon=opt.epsilon,
                    clip_norm=opt.clip_norm)
    return initial_head, batches, settings


def run_peer(work, family, initial_head, batches, settings, extra=None):
    arrays = {"settings": json.dumps(settings), "head/kernel": initial_head["kernel"],
              "head/bias": initial_head["bias"], **(extra or {})}
    for i, b in enumerate(batches):
        arrays.update({f"step{i}/{k}": v for k, v in b.items()})
    in_path, out_path = (os.path.join(work, f"peer_{family}_{x}.npz") for x in ("in", "out"))
    np.savez(in_path, **arrays)
    proc = subprocess.run([BENCH_PYTHON, os.path.join(ROOT, "benchmarks", "peer_hf_steps.py"),
                           os.path.join(DATA, "minilm"), in_path, out_path], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"peer_hf_steps.py failed:\n{proc.stderr[-3000:]}")
    with np.load(out_path) as data:
        return {k: data[k] for k in data.files}


@functools.lru_cache(maxsize=1)
def _original():
    """(config.json, weights) of the original all-MiniLM-L6-v2, read once per process."""
    from safetensors.numpy import load_file
    with open(os.path.join(DATA, "minilm", "config.json")) as f:
        config = json.load(f)
    return config, load_file(os.path.join(DATA, "minilm", "model.safetensors"))


def _peer_head(family):
    return "qa_outputs" if family == "squad" else "classifier"  # as peer_hf_steps.HEADS


def peer_weights(family, peer):
    """The peer's final weights under our names (model.import_checkpoint's mapping)."""
    from model.import_checkpoint import _model_config, HF_ACTIVATIONS, keras_weights
    config, original = _original()
    cfg = _model_config(config, HF_ACTIVATIONS, "config.json")
    hf = {}
    for name, value in peer.items():
        if name.startswith("weight/"):
            name = name[len("weight/"):]
            hf[name[len("bert."):] if name.startswith("bert.") else name] = value
    head = _peer_head(family)
    if "pooler.dense.weight" not in hf:  # token heads have no pooler (ours is not trained)
        hf["pooler.dense.weight"] = np.asarray(original["pooler.dense.weight"])
        hf["pooler.dense.bias"] = np.asarray(original["pooler.dense.bias"])
    encoder, _ = keras_weights(hf, cfg)
    out = {"encoder/" + k: v for k, v in encoder.items()}
    out["head/kernel"], out["head/bias"] = hf[f"{head}.weight"].T, hf[f"{head}.bias"]
    return out


def shift_invariant(family, name, last_layer) -> bool:
    """A weight whose gradient is 0 in exact arithmetic: adding a constant to every logit
    of a softmax changes nothing, so the attention's key bias (one constant per query),
    the bias of a head that scores positions or choices (SQuAD's span, multiple choice's
    scorer) and, under SQuAD's span head, the last layer norm's beta (it adds W.beta to
    every position's logit) get a gradient of rounding noise, which Adam turns into
    steps of up to lr in random directions on either side. Left out of the weights'
    comparison."""
    return name.endswith("self_attention_layer/key/bias") or (
        family in ("squad", "multiple_choice") and name == "head/bias") or (
        family == "squad" and name == f"encoder/{last_layer}/feedforward_layer_norm/beta")


def compare(family, work, steps=20, batch=8, seq_length=64, learning_rate=5e-5):
    """One family's comparison: per-step figures of both sides and the weights' agreement."""
    log, initial_head, batches, ours_final, settings = run_ours(
        family, work, steps, batch, seq_length, learning_rate)
    peer = run_peer(work, family, initial_head, batches, settings)
    theirs_final = peer_weights(family, peer)
    # The initial weights: the original checkpoint (the peer's mapping of it) and our head.
    initial = peer_weights(family, {"weight/" + k: v for k, v in _original()[1].items()} | {
        f"weight/{_peer_head(family)}.{n}":
            (initial_head["kernel"].T if n == "weight" else initial_head["bias"])
        for n in ("weight", "bias")})
    missing = sorted(set(ours_final) ^ set(theirs_final))
    if missing:
        raise RuntimeError(f"weights on one side only: {missing[:5]}")
    with open(os.path.join(DATA, "minilm", "vocab.txt"), encoding="utf-8") as f:
        pad_id = [line.rstrip("\n") for line in f].index("[PAD]")
    diff = peer_norm = 0.0
    worst = (0.0, "")
    last_layer = max((n.split("/")[1] for n in ours_final if "transformer_layer_" in n),
                     key=lambda n: int(n.rsplit("_", 1)[1]))
    for name, ours in ours_final.items():
        if shift_invariant(family, name, last_layer):
            continue
        d_ours = ours.astype(np.float64) - initial[name].reshape(ours.shape)
        d_peer = theirs_final[name].reshape(ours.shape).astype(np.float64) - \
            initial[name].reshape(ours.shape)
        if name == "encoder/token_embedding/embeddings":
            # transformers' nn.Embedding(padding_idx=pad_token_id) never updates the [PAD]
            # row; ours, as google-research/bert's, does when padding reaches the loss
            # (SQuAD's softmax over all positions, padding included, on both sides).
            d_ours, d_peer = (np.delete(d, pad_id, axis=0) for d in (d_ours, d_peer))
        e, p = float(np.sum((d_ours - d_peer) ** 2)), float(np.sum(d_peer ** 2))
        diff, peer_norm = diff + e, peer_norm + p
        if p > 0 and (e / p) ** 0.5 > worst[0]:
            worst = ((e / p) ** 0.5, name)
    widest_layer = _original()[0]["intermediate_size"]
    return {
        "family": family, "steps": steps, "batch": batch, "max_seq_length": seq_length,
        "ours_loss": [r["loss"] for r in log], "peer_loss": peer["loss"].tolist(),
        "ours_grad_norm": [r["grad_norm"] for r in log],
        "peer_grad_norm": peer["grad_norm"].tolist(),
        "ours_learning_rate": [r["learning_rate"] for r in log],
        "peer_learning_rate": peer["learning_rate"].tolist(),
        "update_difference": (diff / max(peer_norm, 1e-30)) ** 0.5,
        "widest_reduction": max(max(int(b["input_mask"][b["weight"] > 0].sum())
                                    for b in batches), widest_layer),
        "worst_tensor": {"name": worst[1], "update_difference": worst[0]},
        "tokens_per_step": [int(b["input_mask"][b["weight"] > 0].sum()) for b in batches],
    }


def cross_run(family, work, seed, epochs=3.0, batch=32, seq_length=128,
              learning_rate=5e-5):
    """A whole fine-tuning run of the peer on our run's data order and initial head.

    Our Finetuner (the family's data/ner or Rotten Tomatoes files, dropout as the model's)
    builds the model and yields every batch of the run; the peer trains on them with
    dropout, and its logits on our dev features are scored by our task. Two sides that
    compute the same steps then differ only in their dropout masks: a seed that learns
    nothing on ours and something on the peer's order is the framework; one that learns
    nothing on both is the order and the initial head."""
    from model.training.finetuning_run import FinetuneConfig, Finetuner

    files = {"ner": ("ner", os.path.join(DATA, "ner", "train.txt"),
                     os.path.join(DATA, "ner", "dev.txt"))}
    task, train, dev = files[family]
    f = Finetuner(FinetuneConfig(
        task=task, train_file=train, eval_file=dev, output_dir=os.path.join(work, f"x{seed}"),
        init_checkpoint=import_minilm(work), max_seq_length=seq_length,
        train_batch_size=batch, num_train_epochs=epochs, learning_rate=learning_rate,
        mixed_precision="float32", seed=seed))
    steps_per_epoch, total, _ = f.schedule()
    initial_head, batches, settings = _peer_inputs(f, family, dropout=f.model_config.dropout)
    evals = {f"eval/{k}": f.evals[0].arrays[k] for k in ("input_ids", "input_mask",
                                                          "segment_ids")}
    peer = run_peer(work, f"{family}_cross{seed}", initial_head, batches, settings, evals)
    scores, _ = f.task.score({"logits": peer["eval_logits"]}, f.evals[0])
    return {"seed": seed, "peer_on_our_order": scores[f.task.primary_metric],
            "peer_loss_per_epoch": [float(np.mean(peer["loss"][i:i + steps_per_epoch]))
                                    for i in range(0, total, steps_per_epoch)]}


def summary(r):
    o, p = np.array(r["ours_loss"]), np.array(r["peer_loss"])
    go, gp = np.array(r["ours_grad_norm"]), np.array(r["peer_grad_norm"])
    return (f"{r['family']:16s} loss step 1 {o[0]:.5f} / {p[0]:.5f}, step {len(o)} "
            f"{o[-1]:.5f} / {p[-1]:.5f}; max |rel diff| loss {np.max(np.abs(o - p) / p):.2e}, "
            f"grad norm {np.max(np.abs(go - gp) / gp):.2e}; update diff "
            f"{r['update_difference']:.2e} (worst {r['worst_tensor']['name']} "
            f"{r['worst_tensor']['update_difference']:.2e})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--cross_seeds", default="",
                        help="instead: NER, whole runs of the peer on our order (cross_run)")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results",
                                                         "finetune_parity.json"))
    args = parser.parse_args()
    results = []
    if args.cross_seeds:
        with tempfile.TemporaryDirectory() as work:
            for seed in args.cross_seeds.split(","):
                results.append(cross_run("ner", work, int(seed)))
                print(json.dumps(results[-1]), flush=True)
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)
        return
    with tempfile.TemporaryDirectory() as work:
        for family in args.families.split(","):
            r = compare(family, work, args.steps, args.batch, args.max_seq_length,
                        args.learning_rate)
            print(summary(r), flush=True)
            results.append(r)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
