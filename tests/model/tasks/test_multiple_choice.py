"""The multiple-choice task (SWAG / COPA style) on a hand-written fixture, and its export."""

import json

import numpy as np
import tensorflow as tf

from model.tasks import finetune_task
from model.tasks.base import TaskData
from model.tasks.multiple_choice import read_choices
from model.training.finetuning_run import FinetuneConfig, finetune
from tests.conftest import FIXTURES, run_module

MC = FIXTURES / "multiple_choice"


def test_accuracy_by_hand():
    task = finetune_task("multiple_choice")
    examples = [{"question": "q", "choices": ["a", "b", "c"], "label": y} for y in (1, 0, 2, 2)]
    task.fit(examples, "x")
    logits = np.array([[0.1, 0.9, 0.0],   # picks 1: right
                       [2.0, 1.0, 3.0],   # picks 2: wrong
                       [0.0, 0.0, 5.0],   # picks 2: right
                       [9.0, 0.0, 1.0]])  # picks 0: wrong
    data = TaskData("x", examples, {"input_ids": np.zeros((4, 3, 8))})
    scores, records = task.score({"logits": logits}, data)
    assert scores == {"accuracy": 0.5}
    assert records == [{"choice": 1}, {"choice": 2}, {"choice": 2}, {"choice": 0}]


def test_reader_counts_what_it_skips(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([
        json.dumps({"question": "q", "choices": ["a", "b"], "label": 1}),
        "not json",
        json.dumps({"question": "q", "choices": ["a", "b", "c"], "label": 0}),
        json.dumps({"question": "", "choices": ["a", "b"], "label": 0}),
        json.dumps({"question": "q", "choices": ["a", "b"], "label": 2}),
        json.dumps({"question": "q", "choices": ["a", "b"]})]) + "\n")
    examples, stats = read_choices(str(path), "question", "label")
    assert [e["label"] for e in examples] == [1, None]
    assert stats.read == 6 and stats.skipped == 4
    assert stats.reasons == {"not JSON": 1, "not 2 choices (the file's first line has 2)": 1,
                             "no text in 'question'": 1, "label not a choice index 0..1": 1}


def test_learns_the_fixture_and_its_export_serves_the_same(tmp_path):
    out = tmp_path / "mc"
    result = finetune(FinetuneConfig(
        task="multiple_choice", train_file=str(MC / "train.jsonl"),
        eval_file=str(MC / "dev.jsonl"), output_dir=str(out), init_checkpoint="none",
        vocab_file=str(FIXTURES / "vocab.txt"), max_seq_length=24, train_batch_size=6,
        num_train_epochs=8, learning_rate=2e-3, log_steps=6, early_stopping_patience=0))
    dev = [json.loads(line) for line in (MC / "dev.jsonl").read_text().splitlines()]
    predicted = [json.loads(line)["choice"]
                 for line in (out / "predictions_dev.jsonl").read_text().splitlines()]
    by_hand = sum(p == d["label"] for p, d in zip(predicted, dev)) / len(dev)
    accuracy = result["dev"][str(MC / "dev.jsonl")]["accuracy"]
    assert accuracy == by_hand
    assert accuracy >= 7 / 9, result["history"]  # the cue: right endings are warm/smooth/light
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "multiple_choice" and config["task"]["labels"] == ["0", "1", "2"]
    assert config["inputs"]["max_seq_length"] == 24

    run_module("model.export", "--model_dir", out, "--export_dir", tmp_path / "x")
    info = json.loads((tmp_path / "x" / "mc" / "1" / "assets.extra" / "export.json").read_text())
    check = info["verification"]
    assert check["max_abs_diff"] <= 1e-5 and info["seq_length"] == 24
    assert check["session_signatures_run"]["serving"] == ["serving_default", "token_ids"]
    assert sorted(info["signatures"]["serving_default"]["inputs"]) == ["choices", "text"]
    fn = tf.saved_model.load(str(tmp_path / "x" / "mc" / "1")).signatures["serving_default"]
    got = fn(text=tf.constant([d["question"] for d in dev]),
             choices=tf.constant([d["choices"] for d in dev]))
    assert got["probabilities"].shape == (len(dev), 3)
    assert got["choice_id"].numpy().tolist() == predicted
    proc = run_module("model.predict", "--saved_model", tmp_path / "x" / "mc" / "1", "--format",
                      "json", dev[0]["question"], *dev[0]["choices"])
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["choice"] == predicted[0] and row["choices"] == dev[0]["choices"]
