"""Pretraining runs: the loss falls, strategies agree, kill -9 resumes, errors are one line."""

import json
import os
import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from model.training.engine import EXIT_PREEMPTED, TrainingError
from model.training.optimization import OptimizerConfig
from model.training.pretraining_run import PretrainConfig, pretrain
from tests.conftest import (FIXTURES, ROOT, error_line, kill_when_written, run_module,
                            signal_at)
from tests.model.equivalence import assert_same_training
from tests.model.conftest import TINY

VOCAB = str(FIXTURES / "vocab.txt")


def pretrain_args(dataset, out, *extra):
    args = ["--input_file", dataset, "--output_dir", out, "--train_batch_size", 8,
            "--num_warmup_steps", 2, "--learning_rate", 1e-3, "--log_steps", 1]
    for o in TINY:
        args += ["--model_override", o]
    return [*args, *extra]


def test_a_few_steps_reduce_the_loss(tiny_dataset, tmp_path, capsys):
    config = PretrainConfig(
        input_file=str(tiny_dataset), output_dir=str(tmp_path / "m"), model_overrides=tuple(TINY),
        train_batch_size=16, log_steps=5, save_checkpoints_steps=20,
        optimizer=OptimizerConfig(learning_rate=5e-3, num_train_steps=40, num_warmup_steps=4),
        eval_input_file=str(tiny_dataset))
    results = pretrain(config)
    losses = [float(m) for m in re.findall(r"step \d+/40 .* loss ([\d.]+) ",
                                           capsys.readouterr().err, re.M)]
    assert len(losses) == 8
    assert losses[-1] < losses[0] - 0.5, losses
    assert 0 < results["eval_mlm_perplexity"] < 200  # fixture vocab: ~200 tokens
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["model"]["hidden_dim"] == 32 and saved["vocab_size"] == 199
    # What the run used, not what was left unset: the policy "auto" chose, the dataset's
    # length, and its static masks' rate and positions (info.json's generation block).
    made = json.loads((tiny_dataset / "info.json").read_text())["generation"]
    assert saved["training"]["mixed_precision"] in ("float32", "mixed_bfloat16")
    assert (saved["training"]["max_seq_length"], saved["training"]["masked_lm_prob"],
            saved["training"]["max_predictions_per_seq"]) == (
        made["max_seq_length"], made["masked_lm_prob"], made["max_predictions_per_seq"])
    assert sorted(os.listdir(tmp_path / "m" / "logs")) == ["eval", "train"]
    evaluated = json.loads((tmp_path / "m" / "eval_results.json").read_text())
    assert evaluated["eval_split"] == "eval" and evaluated["held_out"] is True


def test_eval_without_an_eval_split_says_it_is_not_held_out(tmp_path, capsys):
    """A dataset made without --eval_fraction evaluated on itself: its train split, which
    the run trains on; said on the console and in eval_results.json, never silently."""
    from tests.model.conftest import make_dataset_dir
    ds = make_dataset_dir(tmp_path / "ds")
    pretrain(PretrainConfig(input_file=str(ds), output_dir=str(tmp_path / "m"),
                            model_overrides=tuple(TINY), train_batch_size=8, log_steps=5,
                            eval_input_file=str(ds), optimizer=OptimizerConfig(
                                num_train_steps=5, num_warmup_steps=1)))
    assert f"warning: --eval_input_file {ds} has no eval split (made without --eval_fraction)" \
           ": evaluating on its train split, the data this run trains on: not held out" in \
           capsys.readouterr().err
    results = json.loads((tmp_path / "m" / "eval_results.json").read_text())
    assert results["eval_split"] == "train" and results["held_out"] is False


def test_user_errors_are_one_line(tiny_dataset, tmp_path):
    with pytest.raises(TrainingError, match="--max_seq_length 64 does not fit the dataset"):
        PretrainConfig and pretrain(PretrainConfig(input_file=str(tiny_dataset),
                                           output_dir=str(tmp_path / "a"), max_seq_length=64))
    with pytest.raises(TrainingError, match="more than the model's max_sequence_length 16"):
        pretrain(PretrainConfig(input_file=str(tiny_dataset), output_dir=str(tmp_path / "b"),
                          model_overrides=tuple(TINY[:-1]) + ("max_sequence_length=16",)))
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    for name in os.listdir(tiny_dataset):
        if name != "COMPLETED":
            (incomplete / name).write_bytes((tiny_dataset / name).read_bytes())
    proc = run_module("model.pretrain", *pretrain_args(incomplete, tmp_path / "c"), check=False)
    assert proc.returncode == 1 and \
        error_line(proc.stderr).startswith(f"pretrain: {incomplete} has no COMPLETED file")
    assert "Traceback" not in proc.stderr


def test_nan_loss_stops_naming_the_step(tiny_dataset, tmp_path):
    with pytest.raises(TrainingError, match=r"the loss became nan at step \d+"):
        pretrain(PretrainConfig(input_file=str(tiny_dataset), output_dir=str(tmp_path / "m"),
                          model_overrides=tuple(TINY), train_batch_size=8, log_steps=100,
                          optimizer=OptimizerConfig(learning_rate=1e9, num_train_steps=50,
                                                    num_warmup_steps=0, clip_norm=0.0)))


def test_trains_on_the_peer_generators_records(tmp_path):
    pytest.importorskip("official", reason="the peer generator (tf-models-official) is absent")
    out = tmp_path / "peer.tfrecord"
    run_module("official.nlp.data.create_pretraining_data",
               "--input_file", FIXTURES / "corpus" / "sentences.txt", "--vocab_file", VOCAB,
               "--output_file", out, "--max_seq_length", 32, "--max_predictions_per_seq", 5,
               "--dupe_factor", 5)
    results = pretrain(PretrainConfig(input_file=str(out), output_dir=str(tmp_path / "m"),
                                vocab_file=VOCAB, model_overrides=tuple(TINY), train_batch_size=8,
                                log_steps=5, optimizer=OptimizerConfig(num_train_steps=5,
                                                                       num_warmup_steps=1)))
    assert np.isfinite(results["loss"]) and "nsp_accuracy" in results


def one_device_reference(dataset, out):
    """3 deterministic float32 steps on one device over one shard, saved at every step;
    returns (shard, shared flags). Float32 pinned: --mixed_precision auto is bfloat16 on
    CPUs with AVX512_BF16, where the equivalence bounds (tests/model/equivalence.py) are
    not float32's."""
    shard = str(dataset / "train-00000-of-00002.tfrecord")
    common = ["--vocab_file", VOCAB, "--noshuffle", "--model_override", "dropout=0.0",
              "--num_train_steps", 3, "--save_checkpoints_steps", 1,
              "--mixed_precision", "float32"]
    run_module("model.pretrain", *pretrain_args(shard, out), "--strategy", "one_device", *common)
    return shard, common


# batch 8 x sequence 32: the sums whose order two replicas change
SAME_TRAINING = dict(checkpoints="checkpoints", steps=3, tokens=8 * 32)


@pytest.mark.multiprocess
def test_mirrored_on_two_cpu_devices_matches_one_device(tiny_dataset, tmp_path):
    shard, common = one_device_reference(tiny_dataset, tmp_path / "one")
    proc = run_module("model.pretrain", *pretrain_args(shard, tmp_path / "two"), "--strategy",
                      "mirrored", "--num_cpu_devices", 2, *common)
    assert "on 2 replica(s)" in proc.stderr
    assert_same_training(tmp_path / "one", tmp_path / "two", **SAME_TRAINING)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.multiprocess
def test_multi_worker_on_two_local_processes_matches_one_device(tiny_dataset, tmp_path):
    shard, common = one_device_reference(tiny_dataset, tmp_path / "one")
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        out = tmp_path / "multi"  # one model dir: only the chief (worker 0) writes to it
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "model.pretrain",
             *map(str, pretrain_args(shard, out, "--strategy", "multi_worker", *common))],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert "on 2 replica(s)" in outputs[0][1]
    assert (tmp_path / "multi" / "checkpoints" / ".worker-1").is_dir()
    assert_same_training(tmp_path / "one", tmp_path / "multi", **SAME_TRAINING)


@pytest.mark.multiprocess
def test_kill_minus_9_then_rerun_resumes_and_finishes(tiny_dataset, tmp_path):
    args = kill_when_written("model.pretrain", pretrain_args(
        tiny_dataset, tmp_path / "m", "--num_train_steps", 300, "--save_checkpoints_steps", 10),
        tmp_path / "m" / "checkpoints" / "ckpt-20.index")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rerun = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = int(re.search(r"Resuming from \S+ at step (\d+)", rerun.stderr).group(1))
    assert 20 <= resumed < 300
    assert f"from step {resumed} to 300" in rerun.stderr
    reader = tf.train.load_checkpoint(str(tmp_path / "m" / "checkpoints"))
    assert reader.get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 300
    assert tf.train.latest_checkpoint(str(tmp_path / "m" / "checkpoints")).endswith("ckpt-300")
    # steps logged between the last checkpoint and the kill are not logged twice
    assert logged_steps(tmp_path / "m") == list(range(1, 301))


# -- reliability (issue 13) -----------------------------------------------------

def logged_steps(model_dir):
    return [json.loads(line)["step"]
            for line in (model_dir / "train_log.jsonl").read_text().splitlines()]


def test_truncated_checkpoint_falls_back_to_the_previous_one(tiny_dataset, tmp_path):
    out = tmp_path / "m"
    run_module("model.pretrain", *pretrain_args(tiny_dataset, out, "--num_train_steps", 20,
                                                "--save_checkpoints_steps", 10))
    data = out / "checkpoints" / "ckpt-20.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    (out / "checkpoints" / "ckpt-20_temp").mkdir()  # as a kill during a save leaves it
    rerun = run_module("model.pretrain", *pretrain_args(tiny_dataset, out, "--num_train_steps",
                                                        30, "--save_checkpoints_steps", 10))
    assert f"warning: checkpoint {out}/checkpoints/ckpt-20 is unreadable" in rerun.stderr
    assert f"Resuming from {out}/checkpoints/ckpt-10 at step 10" in rerun.stderr
    assert "Traceback" not in rerun.stderr
    names = os.listdir(out / "checkpoints")
    assert any(n.startswith("ckpt-20.unreadable-") and n.endswith(".data-00000-of-00001")
               for n in names)
    assert "ckpt-20_temp" not in names
    # the steps after the fallback are trained, saved and logged again, once each
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith("ckpt-30")
    assert "ckpt-20.index" in names
    assert logged_steps(out) == list(range(1, 31))


def test_corrupted_shard_during_training_names_the_shard(tiny_dataset, tmp_path):
    import shutil
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    shard = sorted(p for p in data.iterdir() if p.name.startswith("train-"))[0]
    raw = bytearray(shard.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 8] = bytes(b ^ 0xFF for b in raw[middle:middle + 8])  # same size
    shard.write_bytes(bytes(raw))
    proc = run_module("model.pretrain", *pretrain_args(data, tmp_path / "m",
                                                       "--num_train_steps", 200), check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(re.escape(f"pretrain: a training shard is corrupted: {shard} is "
                                  "truncated or corrupted (corrupted record at ")
                        + r"\d+\); copy it again or regenerate it; the last checkpoint is kept",
                        last), last
    assert "Traceback" not in proc.stderr


def test_vocabulary_and_flag_mistakes_are_one_line(tiny_dataset, tmp_path):
    words = (tiny_dataset / "vocab.txt").read_text().splitlines()
    no_mask = tmp_path / "no_mask.txt"
    no_mask.write_text("\n".join(w for w in words if w != "[MASK]") + "\n")
    other = tmp_path / "other.txt"  # the same size, two tokens swapped: ids would shift
    swapped = list(words)
    swapped[10], swapped[11] = swapped[11], swapped[10]
    other.write_text("\n".join(swapped) + "\n")
    short = tmp_path / "short.txt"
    short.write_text("\n".join(words[:150]) + "\n")
    cases = [
        (["--vocab_file", no_mask], f"pretrain: vocabulary {no_mask} lacks BERT's special "
                                    "tokens ['[MASK]']"),
        (["--vocab_file", other], f"pretrain: --vocab_file {other} is not the vocabulary "
                                  f"{tiny_dataset} was tokenized with (199 entries against "
                                  f"{tiny_dataset}/vocab.txt's 199; id 10 is {words[11]!r} there, "
                                  f"{words[10]!r} in the dataset's): drop --vocab_file to use "
                                  "the dataset's"),
        (["--vocab_file", short], f"pretrain: --vocab_file {short} is not the vocabulary "
                                  f"{tiny_dataset} was tokenized with (150 entries against "
                                  f"{tiny_dataset}/vocab.txt's 199; they agree up to id 149)"),
        (["--masked_lm_prob", "1.5"], "--masked_lm_prob"),
        # Set explicitly to the default: still a flag that does nothing on static masks.
        (["--masked_lm_prob", "0.15"], f"pretrain: {tiny_dataset} holds static masks"),
        (["--model_override", "num_layers=abc"], "pretrain: --model_override 'num_layers=abc': "
                                                 "num_layers takes an integer, got 'abc'"),
        (["--max_seq_length", "100000000"], "--max_seq_length"),
    ]
    for extra, expected in cases:
        proc = run_module("model.pretrain", *pretrain_args(tiny_dataset, tmp_path / "m", *extra),
                          check=False)
        assert proc.returncode != 0, extra
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert expected in error_line(proc.stderr), (extra, proc.stderr[-800:])


# -- preemption (issue 25) ------------------------------------------------------

PREEMPTED = r"pretrain: preempted at step (\d+) \((SIGTERM|SIGINT)\): checkpoint saved; rerun " \
            r"the same command to resume"


@pytest.mark.multiprocess
def test_sigterm_saves_at_that_step_and_the_same_command_resumes(tiny_dataset, tmp_path):
    """SIGTERM (a reclaimed VM, an evicted pod): the step finishes, a checkpoint is saved at
    it, one line says so, the exit status is EXIT_PREEMPTED; a second signal while it
    saves changes nothing. The rerun resumes at that step. (SIGINT: the fine-tuning test.)"""
    sig = signal.SIGTERM
    out = tmp_path / "m"
    command = [sys.executable, "-m", "model.pretrain", *map(str, pretrain_args(
        tiny_dataset, out, "--num_train_steps", 120, "--save_checkpoints_steps", 1000))]
    [(code, err)] = signal_at([command], "step 20/", sig=sig, again=True, tmp=tmp_path)
    assert code == EXIT_PREEMPTED, err[-3000:]
    found = re.fullmatch(PREEMPTED, err.strip().splitlines()[-1])
    assert found and found.group(2) == sig.name, err[-1000:]
    step = int(found.group(1))
    assert 20 <= step < 120
    assert "Traceback" not in err
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith(f"ckpt-{step}")
    assert logged_steps(out) == list(range(1, step + 1))  # the stopped step is logged too
    rerun = subprocess.run(command, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"Resuming from {out}/checkpoints/ckpt-{step} at step {step}" in rerun.stderr
    assert logged_steps(out) == list(range(1, 121))


@pytest.mark.multiprocess
def test_sigterm_to_one_worker_stops_every_worker_at_the_same_step(tiny_dataset, tmp_path):
    """Two workers (MultiWorkerMirroredStrategy on localhost); only the second is signalled.
    Saving is a collective: both must save at the same step, and both resume from it."""
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    out = tmp_path / "multi"
    command = [sys.executable, "-m", "model.pretrain", *map(str, pretrain_args(
        tiny_dataset, out, "--strategy", "multi_worker", "--num_train_steps", 80,
        "--save_checkpoints_steps", 1000))]
    envs = [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                   "index": i}})}
            for i in range(2)]
    results = signal_at([command, command], "step 10/", to=1, envs=envs, tmp=tmp_path)
    steps = []
    for code, err in results:
        assert code == EXIT_PREEMPTED, err[-3000:]
        lines = err.strip().splitlines()
        ours = [i for i, line in enumerate(lines)
                if re.fullmatch(PREEMPTED.replace(r"(SIGTERM|SIGINT)", r"(.+)"), line)]
        assert len(ours) == 1, err[-1000:]
        # Our line is the last thing the command says. Worker 1 may still log TensorFlow's
        # own heartbeat error after it (the coordination service lives in worker 0, which
        # can exit first); that is TF's C++ log, never a line or traceback of ours.
        assert not [line for line in lines[ours[0] + 1:]
                    if line.startswith(("pretrain:", "step ", "Traceback"))], err[-1000:]
        found = re.fullmatch(PREEMPTED.replace(r"(SIGTERM|SIGINT)", r"(.+)"), lines[ours[0]])
        steps.append(int(found.group(1)))
    assert steps[0] == steps[1] >= 10
    assert "SIGTERM: finishing" in results[1][1] and "SIGTERM" not in results[0][1]
    step = steps[0]
    for directory in (out / "checkpoints", out / "checkpoints" / ".worker-1"):
        assert tf.train.latest_checkpoint(str(directory)).endswith(f"ckpt-{step}")
    procs = [subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT),
                                                          **env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for env in envs]
    outputs = [p.communicate(timeout=300)[1] for p in procs]
    for p, err in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    assert f"at step {step}" in outputs[0] and f"at step {step}" in outputs[1]
    assert logged_steps(out) == list(range(1, 81))


def test_resume_cuts_the_log_back_but_deletes_only_a_last_line_cut_by_the_kill(tmp_path, capsys):
    import types

    from model.training.engine import Engine
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1, 2))
                   + "a note someone added\n" + json.dumps({"step": 3}) + "\n"
                   + json.dumps({"step": 4}) + "\n" + '{"step": 5, "lo')
    Engine._truncate_log(types.SimpleNamespace(output_dir=str(tmp_path)), 3)
    assert log.read_text().splitlines() == [
        json.dumps({"step": 1, "loss": 1.0}), json.dumps({"step": 2, "loss": 1.0}),
        "a note someone added", json.dumps({"step": 3})]
    assert f"warning: {log} has 1 line(s) that are not a step's record; kept" in \
        capsys.readouterr().err
