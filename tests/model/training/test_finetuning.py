"""Fine-tuning on the training engine: strategies, mixed precision, kill -9 and resume."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from model.training.engine import EXIT_PREEMPTED
from model.training.finetuning_run import FinetuneConfig, finetune
from tests.conftest import FIXTURES, ROOT, kill_when_written, run_module, signal_at
from tests.model.equivalence import assert_same_training
from tests.model.test_finetune import _sentiment_rows
from tests.model.training.test_training import _free_ports

VOCAB = str(FIXTURES / "vocab.txt")


def sentiment_files(folder):
    """A learnable two-class table: one sentiment word decides the label."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", 96, 0), ("dev", 24, 1)):
        with open(folder / f"{split}.csv", "w") as f:
            f.write("review,sentiment\n" + "".join(
                f"{t},{'pos' if y else 'neg'}\n" for t, y in _sentiment_rows(n, seed)))
    return folder / "train.csv", folder / "dev.csv"


def args(data, out, *extra):
    train, dev = data
    return ["--task", "classification", "--init_checkpoint", "none", "--vocab_file", VOCAB,
            "--train_file", train, "--eval_file", dev, "--output_dir", out,
            "--text_column", "review", "--label_column", "sentiment", "--max_seq_length", 16,
            "--train_batch_size", 8, "--learning_rate", 1e-3, "--log_steps", 1,
            "--early_stopping_patience", 0, *extra]


def best_weights(model_dir):
    """The variables of the best epoch's checkpoint (what export reads)."""
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith(("model/", "encoder/")) and "VARIABLE_VALUE" in name}


# 2 epochs of 96 / 8 = 12 steps; batch 8 x sequence 16 (at most): the sums whose order two
# replicas change
SAME_TRAINING = dict(checkpoints="train_state", steps=24, tokens=8 * 16)


def assert_same_weights(a, b):
    """A resumed run replays the same float operations: equal up to a few round-offs."""
    one, other = best_weights(a), best_weights(b)
    assert one.keys() == other.keys() and len(one) > 20
    for name in one:
        np.testing.assert_allclose(other[name], one[name], atol=2e-5, rtol=1e-4, err_msg=name)


@pytest.mark.multiprocess
def test_mirrored_multi_worker_and_accumulation_match_one_device(tmp_path):
    data = sentiment_files(tmp_path / "data")
    # float32 pinned (auto is bfloat16 on CPUs with AVX512_BF16); saved at every step
    common = ["--num_train_epochs", 2, "--dropout", 0, "--mixed_precision", "float32",
              "--save_checkpoints_steps", 1, "--keep_checkpoint_max", 24]
    run_module("model.finetune", *args(data, tmp_path / "one", "--strategy", "one_device",
                                       *common))
    proc = run_module("model.finetune", *args(data, tmp_path / "two", "--strategy", "mirrored",
                                              "--num_cpu_devices", 2, *common))
    assert "on 2 replica(s)" in proc.stderr
    assert_same_training(tmp_path / "one", tmp_path / "two", **SAME_TRAINING)
    # Two accumulated micro-batches of 4 train as one batch of 8 (classification weighs
    # every example alike, so the mean of the two micro-batches' mean losses is the
    # batch's). The clip is on the accumulated gradient, as BERT's: each micro-step's
    # clipped separately, step 1 differed by half the gradient's norm (measured).
    run_module("model.finetune", *args(data, tmp_path / "accumulated", "--strategy",
                                       "one_device", "--gradient_accumulation_steps", 2,
                                       *common))
    assert_same_training(tmp_path / "one", tmp_path / "accumulated", **SAME_TRAINING)

    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "model.finetune", *map(str, args(
                data, tmp_path / "multi", "--strategy", "multi_worker", *common))],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert "on 2 replica(s)" in outputs[0][1]
    metrics = json.loads((tmp_path / "multi" / "metrics.json").read_text())
    assert len(metrics["history"]) == 2
    assert_same_training(tmp_path / "one", tmp_path / "multi", **SAME_TRAINING)


def test_mixed_bfloat16_reaches_the_float32_accuracy(tmp_path):
    train, dev = sentiment_files(tmp_path / "data")
    results = {}
    for precision in ("float32", "mixed_bfloat16"):
        out = tmp_path / precision
        result = finetune(FinetuneConfig(
            task="classification", train_file=str(train), eval_file=str(dev),
            output_dir=str(out), init_checkpoint="none", vocab_file=VOCAB, max_seq_length=16,
            text_column="review", label_column="sentiment", train_batch_size=8,
            num_train_epochs=6, learning_rate=1e-3, log_steps=10, early_stopping_patience=0,
            mixed_precision=precision))
        results[precision] = result["dev"][str(dev)]["accuracy"]
    assert results["float32"] >= 0.9, results
    assert abs(results["mixed_bfloat16"] - results["float32"]) <= 0.1, results
    # the policy was the run's, not the process's: later models build in float32
    import keras
    assert keras.mixed_precision.dtype_policy().name == "float32"


@pytest.mark.multiprocess
def test_kill_minus_9_or_sigint_then_rerun_ends_with_the_uninterrupted_runs_best_epoch(tmp_path):
    data = sentiment_files(tmp_path / "data")
    common = ["--num_train_epochs", 4, "--save_checkpoints_steps", 2]
    run_module("model.finetune", *args(data, tmp_path / "whole", *common))
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # 96 examples / 8 = 12 steps an epoch: step 16 is in the second epoch
    command = kill_when_written("model.finetune", args(data, tmp_path / "killed", *common),
                                tmp_path / "killed" / "train_state" / "ckpt-16.index")
    assert not (tmp_path / "killed" / "metrics.json").exists()
    # Ctrl-C (SIGINT) in the third epoch: a checkpoint at that step, one line, status 75
    stopped = [sys.executable, "-m", "model.finetune", *map(str, args(
        data, tmp_path / "stopped", *common))]
    [(code, err)] = signal_at([stopped], "step 27/", sig=signal.SIGINT, tmp=tmp_path)
    assert code == EXIT_PREEMPTED, err[-3000:]
    found = re.fullmatch(r"finetune: preempted at step (\d+) \(SIGINT\): checkpoint saved; "
                         r"rerun the same command to resume", err.strip().splitlines()[-1])
    assert found and int(found.group(1)) >= 27, err[-2000:]
    assert tf.train.latest_checkpoint(str(tmp_path / "stopped" / "train_state")).endswith(
        f"ckpt-{found.group(1)}")
    for name, rerun_command in (("killed", command), ("stopped", stopped)):
        rerun = subprocess.run(rerun_command, cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert "Resuming from" in rerun.stderr
        resumed = json.loads((tmp_path / name / "metrics.json").read_text())
        assert resumed["best_epoch"] == whole["best_epoch"]
        assert [h["step"] for h in resumed["history"]] == [h["step"] for h in whole["history"]]
        for a, b in zip(whole["history"], resumed["history"]):
            for k, v in a["dev"].items():
                assert b["dev"][k] == pytest.approx(v, abs=1e-4), (a, b)
        assert_same_weights(tmp_path / "whole", tmp_path / name)
        assert [r["step"] for r in resumed["loss_log"]] == list(range(1, 49))


def test_an_epoch_checkpointed_but_not_yet_scored_is_scored_on_rerun(tmp_path):
    """kill -9 between the epoch-end checkpoint and the epoch's evaluation: the rerun scores
    that epoch instead of skipping it."""
    train, dev = sentiment_files(tmp_path / "data")
    config = FinetuneConfig(
        task="classification", train_file=str(train), eval_file=str(dev),
        output_dir=str(tmp_path / "m"), init_checkpoint="none", vocab_file=VOCAB, max_seq_length=16, text_column="review",
        label_column="sentiment", train_batch_size=8, num_train_epochs=2, learning_rate=1e-3,
        early_stopping_patience=0, save_checkpoints_steps=12)
    whole = finetune(config)
    history = tmp_path / "m" / "history.json"
    history.write_text(json.dumps(json.loads(history.read_text())[:1]))  # epoch 2 unscored
    rerun = finetune(config)
    assert [h["step"] for h in rerun["history"]] == [12, 24]
    assert rerun["history"][1]["dev"] == whole["history"][1]["dev"]


def test_early_stopping_keeps_the_best_epochs_weights_not_the_last(tmp_path):
    """A dev set whose labels are the training rule reversed: the better the model learns,
    the worse dev gets, so the first epoch is the best. Patience 2 stops after epoch 3 of
    6; the kept weights (checkpoints/) are epoch 1's, and the final dev metrics are
    computed with them (they equal epoch 1's, not epoch 3's); without that checkpoint
    the run is an error."""
    train, dev = sentiment_files(tmp_path / "data")
    flipped = tmp_path / "data" / "flipped.csv"
    lines = dev.read_text().splitlines()
    flipped.write_text("\n".join([lines[0]] + [
        line.rsplit(",", 1)[0] + ("," + ("neg" if line.endswith("pos") else "pos"))
        for line in lines[1:]]) + "\n")
    out = tmp_path / "m"
    config = FinetuneConfig(
        task="classification", train_file=str(train), eval_file=str(flipped), output_dir=str(out),
        init_checkpoint="none", vocab_file=VOCAB, max_seq_length=16, text_column="review",
        label_column="sentiment", train_batch_size=8, num_train_epochs=6, learning_rate=1e-3,
        log_steps=12, early_stopping_patience=2, save_checkpoints_steps=12,
        mixed_precision="float32")
    result = finetune(config)
    accuracies = [h["dev"]["accuracy"] for h in result["history"]]
    assert result["best_epoch"] == 1 and result["stopped_early"], accuracies
    assert len(accuracies) == 3 and accuracies[2] < accuracies[0], accuracies
    assert result["dev"][str(flipped)]["accuracy"] == accuracies[0]
    assert result["train_steps"] == 36
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith("ckpt-12")
    kept = tf.train.load_checkpoint(str(out / "checkpoints"))
    kept = [kept.get_tensor(n) for n in kept.get_variable_to_shape_map()
            if n.startswith(("model/", "encoder/")) and "VARIABLE_VALUE" in n]
    assert len(kept) > 20

    def holds_all(state):  # the loop's checkpoint names the variables by other paths
        reader = tf.train.load_checkpoint(str(out / "train_state" / state))
        tensors = [reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
                   if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
        return all(any(t.shape == k.shape and np.array_equal(t, k) for t in tensors)
                   for k in kept)

    assert holds_all("ckpt-12") and not holds_all("ckpt-36")
    # without that checkpoint the rerun fails naming it (it never scores the last weights)
    from model.training.finetuning_run import FinetuneError
    shutil.rmtree(out / "checkpoints")
    with pytest.raises(FinetuneError, match=r"the best epoch's checkpoint \(.*/checkpoints/"
                                            r"ckpt-12, epoch 1 in history.json\) is missing"):
        finetune(config)


def test_unset_hyperparameters_take_the_tasks_defaults(tmp_path):
    """--learning_rate, --num_train_epochs, --train_batch_size left unset: the task's
    (FinetuneTask.defaults; NER's batch is 16), recorded in config.json; set: the flag's."""
    from model.training.finetuning_run import Finetuner

    ner = dict(task="ner", train_file=str(FIXTURES / "ner" / "train.txt"),
               eval_file=str(FIXTURES / "ner" / "dev.txt"), init_checkpoint="none",
               vocab_file=VOCAB, max_seq_length=32, mixed_precision="float32")
    f = Finetuner(FinetuneConfig(output_dir=str(tmp_path / "a"), **ner))
    assert (f.c.train_batch_size, f.c.learning_rate, f.c.num_train_epochs) == (16, 5e-5, 3.0)
    assert f.engine.config.train_batch_size == 16
    glue = FIXTURES / "glue" / "SST-2"
    f = Finetuner(FinetuneConfig(task="sst2", train_file=str(glue / "train.tsv"),
                                 eval_file=str(glue / "dev.tsv"), output_dir=str(tmp_path / "b"),
                                 init_checkpoint="none", vocab_file=VOCAB))
    assert (f.c.train_batch_size, f.c.learning_rate, f.c.num_train_epochs) == (32, 5e-5, 3.0)
    # Set values win, and config.json records what the run used.
    result = finetune(FinetuneConfig(output_dir=str(tmp_path / "c"), train_batch_size=4,
                                     learning_rate=1e-3, num_train_epochs=1, **ner))
    used = json.loads((tmp_path / "c" / "config.json").read_text())["finetuning"]
    assert (used["train_batch_size"], used["learning_rate"], used["num_train_epochs"]) == \
        (4, 1e-3, 1)
    assert result["train_steps"] == -(-3 // 4)  # the fixture's 3 sentences, batch 4
