"""model.finetune on every task type, in the published file formats; exports that agree."""

import json
import os
import random

import numpy as np
import pytest
import tensorflow as tf

from model.finetune import FinetuneConfig, FinetuneError, finetune
from tests.conftest import FIXTURES, run_module

GLUE = FIXTURES / "glue"
VOCAB = str(FIXTURES / "vocab.txt")
FAST = dict(init_checkpoint="none", vocab_file=VOCAB, max_seq_length=32, train_batch_size=4,
            num_train_epochs=1, log_steps=1, early_stopping_patience=0)


@pytest.mark.parametrize("task,folder,dev,metrics", [
    ("cola", "CoLA", "dev.tsv", {"accuracy", "f1", "mcc"}),
    ("sst2", "SST-2", "dev.tsv", {"accuracy", "f1", "mcc"}),
    ("mrpc", "MRPC", "dev.tsv", {"accuracy", "f1", "mcc"}),
    ("stsb", "STS-B", "dev.tsv", {"pearson", "spearman"}),
    ("qqp", "QQP", "dev.tsv", {"accuracy", "f1", "mcc"}),
    ("mnli", "MNLI", "dev_matched.tsv,dev_mismatched.tsv", {"accuracy"}),
    ("qnli", "QNLI", "dev.tsv", {"accuracy", "f1", "mcc"}),
    ("rte", "RTE", "dev.tsv", {"accuracy", "f1", "mcc"}),
    ("wnli", "WNLI", "dev.tsv", {"accuracy", "f1", "mcc"}),
])
def test_glue_tasks(task, folder, dev, metrics, tmp_path):
    evals = ",".join(str(GLUE / folder / d) for d in dev.split(","))
    result = finetune(FinetuneConfig(task=task, train_file=str(GLUE / folder / "train.tsv"),
                                     eval_file=evals, output_dir=str(tmp_path), **FAST))
    assert len(result["dev"]) == len(dev.split(","))
    for path, scores in result["dev"].items():
        assert set(scores) == metrics, path
        # Every metric recomputed here, independently, from the predictions file and the
        # gold labels (model/tasks/metrics.py itself is checked on hand-made sets in test_metrics)
        name = os.path.splitext(os.path.basename(path))[0]
        predicted = [json.loads(line) for line in
                     (tmp_path / f"predictions_{name}.jsonl").read_text().splitlines()]
        assert scores == pytest.approx(independent_scores(task, path, predicted),
                                       abs=metric_tolerance(task, predicted))
        rows = len(open(path).read().strip().splitlines()) - (task != "cola")
        name = path.rsplit("/", 1)[1][:-4]
        assert len((tmp_path / f"predictions_{name}.jsonl").read_text().splitlines()) == rows
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["kind"] == ("regression" if task == "stsb" else "classification")
    assert config["task"]["pairs"] == (task not in ("cola", "sst2"))
    assert (tmp_path / "report.md").read_text().startswith(f"# Fine-tuning: {task}")
    if task == "stsb":  # the regression kind, exported XLA-compiled: clients run it too
        run_module("model.export", "--model_dir", tmp_path, "--export_dir", tmp_path / "x",
                   "--name", "sts", "--jit_compile")
        info = assert_served_by_every_client(tmp_path / "x", "sts", pairs=True)
        assert info["jit_compile"] and info["seq_length"] == 32
        assert sorted(info["signatures"]["serving_default"]["outputs"]) == ["input_ids", "score"]


def metric_tolerance(task, predicted) -> float:
    """How far a metric recomputed from the predictions file may be from the job's.

    The job rounds its metrics to 6 decimals (5e-7). STS-B's scores are written with 7
    significant digits, so each is off the float the job scored by at most 5e-7 of
    itself: the error vector e moves the centered scores y_c, and Pearson's r (the cosine
    of the angle between the centered gold and predicted vectors) by at most the angle's
    change, asin(|e| / |y_c|) <= 2 |e| / |y_c|. Large when the scores barely spread
    (a model trained a few steps), tiny otherwise."""
    if task != "stsb":
        return 1e-6
    y = np.array([p["score"] for p in predicted])
    e = 5e-7 * np.abs(y)
    return 1e-6 + 2 * float(np.linalg.norm(e) / np.linalg.norm(y - y.mean()))


def independent_scores(task, path, predicted) -> dict:
    """GLUE's metrics from first principles: the confusion counts and numpy."""
    from model.tasks.readers import read_glue
    gold = [e.label for e in read_glue(task, path)[0]]
    assert len(gold) == len(predicted) >= 2
    if task == "stsb":
        x, y = np.array([float(g) for g in gold]), np.array([p["score"] for p in predicted])
        ranks = [np.argsort(np.argsort(v)) for v in (x, y)]  # the fixtures have no ties
        return {"pearson": float(np.corrcoef(x, y)[0, 1]),
                "spearman": float(np.corrcoef(*ranks)[0, 1])}
    labels = [p["label"] for p in predicted]
    out = {"accuracy": sum(g == p for g, p in zip(gold, labels)) / len(gold)}
    if task == "mnli":
        return out
    # the positive class is the second of the sorted training labels ("1", not_entailment)
    pos = sorted({e.label for e in read_glue(task, path.replace(
        os.path.basename(path), "train.tsv"))[0]})[1]
    tp = sum(g == pos and p == pos for g, p in zip(gold, labels))
    fp = sum(g != pos and p == pos for g, p in zip(gold, labels))
    fn = sum(g == pos and p != pos for g, p in zip(gold, labels))
    tn = len(gold) - tp - fp - fn
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    denominator = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    out["mcc"] = (tp * tn - fp * fn) / denominator if denominator else 0.0
    return out


def _sentiment_rows(n, seed):
    rng = random.Random(seed)
    good = ["warm", "fresh", "smooth", "light"]
    bad = ["cold", "faint", "hollow", "old"]
    filler = ["the", "bread", "loaf", "morning", "is", "very", "and", "town"]
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.sample(filler, 4) + [rng.choice(good if label else bad)]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def assert_served_by_every_client(export_dir, name, pairs) -> dict:
    """The export verified itself through TF Serving's session loader (every signature of
    the four SavedModels), tf.saved_model.load and saved_model_cli run, within 1e-5."""
    info = json.loads((export_dir / name / "1" / "assets.extra" / "export.json").read_text())
    check = info["verification"]
    assert check["max_abs_diff"] <= 1e-5
    assert check["session_signatures_run"] == {
        "serving": ["serving_default", "token_ids"], "token_ids_only": ["token_ids"],
        "encoder": ["serving_default"], "preprocessor": ["pair", "serving_default"]}
    assert check["hub_encoder"]["trainable_variables"] > 0
    inputs = info["signatures"]["serving_default"]["inputs"]
    assert sorted(inputs) == (["text", "text_b"] if pairs else ["text"])
    return info


def test_classification_learns_and_its_export_predicts_the_same(tmp_path):
    for split, n, seed in (("train", 96, 0), ("dev", 24, 1)):
        with open(tmp_path / f"{split}.csv", "w") as f:
            f.write("review,sentiment\n" + "".join(
                f"{t},{'pos' if y else 'neg'}\n" for t, y in _sentiment_rows(n, seed)))
    out = tmp_path / "model"
    result = finetune(FinetuneConfig(
        task="classification", train_file=str(tmp_path / "train.csv"),
        eval_file=str(tmp_path / "dev.csv"), output_dir=str(out), text_column="review",
        label_column="sentiment", **dict(FAST, num_train_epochs=6, train_batch_size=8),
        learning_rate=1e-3))
    assert result["dev"][str(tmp_path / "dev.csv")]["accuracy"] == 1.0
    assert len(result["history"]) == 6 and result["best_epoch"] >= 1
    run_module("model.export", "--model_dir", out, "--export_dir", tmp_path / "x",
               "--max_seq_length", 32)
    assert_served_by_every_client(tmp_path / "x", "model", pairs=False)
    fn = tf.saved_model.load(str(tmp_path / "x" / "model" / "1")).signatures["serving_default"]
    texts = [line.rsplit(",", 1)[0] for line in (tmp_path / "dev.csv").read_text().splitlines()[1:]]
    served = [s.decode() for s in fn(text=tf.constant(texts))["label"].numpy()]
    saved = [json.loads(line)["label"] for line in (out / "predictions_dev.jsonl").read_text()
             .splitlines()]
    assert served == saved
    proc = run_module("model.predict", "--saved_model", tmp_path / "x" / "model" / "1",
                      "--format", "json", texts[0])
    assert json.loads(proc.stdout.strip().splitlines()[-1])["label"] == saved[0]


def test_ner_and_its_export(tmp_path):
    out = tmp_path / "ner"
    result = finetune(FinetuneConfig(
        task="ner", train_file=str(FIXTURES / "ner" / "train.txt"),
        eval_file=str(FIXTURES / "ner" / "dev.txt"), output_dir=str(out),
        **dict(FAST, num_train_epochs=3)))
    dev = result["dev"][str(FIXTURES / "ner" / "dev.txt")]
    assert set(dev) == {"precision", "recall", "f1", "f1_per_type"}
    config = json.loads((out / "config.json").read_text())
    assert config["task"]["labels"] == ["B-facility", "B-loc", "B-person", "I-facility", "I-loc",
                                        "I-person", "O"]
    run_module("model.export", "--model_dir", out, "--export_dir", tmp_path / "x",
               "--max_seq_length", 32)
    assert_served_by_every_client(tmp_path / "x", "ner", pairs=False)
    fn = tf.saved_model.load(str(tmp_path / "x" / "ner" / "1")).signatures["serving_default"]
    saved = [json.loads(line) for line in (out / "predictions_dev.jsonl").read_text().splitlines()]
    got = fn(text=tf.constant([" ".join(r["words"]) for r in saved]))
    for row, r in enumerate(saved):
        n = int(got["num_words"][row])
        assert n == len(r["words"])
        assert [t.decode() for t in got["token_labels"][row][:n].numpy()] == r["tags"]


def test_squad_v2(tmp_path):
    out = tmp_path / "qa"
    squad = FIXTURES / "squad"
    result = finetune(FinetuneConfig(
        task="squad", train_file=str(squad / "train-v2.0.json"),
        eval_file=str(squad / "dev-v2.0.json"), output_dir=str(out),
        **dict(FAST, max_seq_length=24, num_train_epochs=2), doc_stride=8, max_query_length=8))
    dev = result["dev"][str(squad / "dev-v2.0.json")]
    assert {"exact_match", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact"} <= set(dev)
    answers = [json.loads(line) for line in (out / "predictions_dev-v2.0.jsonl").read_text()
               .splitlines()]
    assert [a["id"] for a in answers] == ["q1", "q2", "q3"]
    context = json.loads((squad / "dev-v2.0.json").read_text())["data"][0]["paragraphs"][0][
        "context"]
    assert all(a["answer"] == "" or a["answer"] in context for a in answers)
    assert json.loads((out / "config.json").read_text())["task"]["version_2"] is True
    # No --max_seq_length: the SQuAD model exports at the 24 it was fine-tuned at.
    run_module("model.export", "--model_dir", out, "--export_dir", tmp_path / "x")
    info = assert_served_by_every_client(tmp_path / "x", "qa", pairs=True)
    assert info["seq_length"] == info["trained_seq_length"] == 24
    proc = run_module("model.predict", "--saved_model", tmp_path / "x" / "qa" / "1",
                      "--format", "json", "What do farmers grow?", context)
    assert "answer" in json.loads(proc.stdout.strip().splitlines()[-1])


def test_starts_from_a_pretrained_encoder(pretrained_tiny, tmp_path):
    from model.networks.model_dir import open_model_dir
    from model.tasks import load_model

    finetune(FinetuneConfig(task="sst2", train_file=str(GLUE / "SST-2" / "train.tsv"),
                            eval_file=str(GLUE / "SST-2" / "dev.tsv"), output_dir=str(tmp_path),
                            **dict(FAST, init_checkpoint=str(pretrained_tiny),
                                   learning_rate=0.0)))
    _, before, _ = load_model(open_model_dir(str(pretrained_tiny)))
    _, after, _ = load_model(open_model_dir(str(tmp_path)))
    for a, b in zip(before.weights, after.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # lr 0: the pretrained weights


def test_errors_name_the_file_or_flag(tmp_path):
    with pytest.raises(FinetuneError, match="needs --vocab_file"):
        finetune(FinetuneConfig(task="sst2", train_file="x", eval_file="y",
                                output_dir=str(tmp_path)))
    with pytest.raises(FinetuneError, match="missing.tsv not found"):
        finetune(FinetuneConfig(task="sst2", train_file=str(tmp_path / "missing.tsv"),
                                eval_file="y", output_dir=str(tmp_path), vocab_file=VOCAB))
    proc = run_module("model.finetune", "--task", "rte", "--init_checkpoint", tmp_path,
                      "--train_file", GLUE / "RTE" / "train.tsv", "--eval_file", "x",
                      "--output_dir", tmp_path / "o", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith(
        f"finetune: --init_checkpoint: {tmp_path} is not a model directory")
