"""The budget recipe's parts (issue 23): pre-LN encoders, the progress schedules and the
wall-clock budget, the linear probe during pretraining."""

import json

import numpy as np
import pytest
import tensorflow as tf

from model.networks.encoder import BertEncoder
from model.networks.model_dir import build_encoder, open_model_dir, restore_encoder
from model.training.optimization import OptimizerConfig, ProgressSchedule, build_schedule
from model.training.pretraining_run import PretrainConfig, pretrain
from model.training.probe import Probe, ridge_probe
from tests.conftest import FIXTURES, run_module
from tests.model.conftest import TINY


def schedule_at(schedule, steps):
    return [round(float(schedule(s)), 7) for s in steps]


def test_progress_schedules_reach_their_shape_and_end_at_zero():
    # linear with a warmup fraction: the one-cycle triangle at 0.5
    triangle = ProgressSchedule(1e-3, 0.0, "linear", warmup_fraction=0.5, num_train_steps=100)
    assert schedule_at(triangle, [0, 25, 50, 75, 100, 120]) == [0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0]
    # warmup-stable-decay: the peak held until the last 20%
    wsd = ProgressSchedule(1e-3, 0.0, "wsd", warmup_fraction=0.1, decay_fraction=0.2,
                           num_train_steps=100)
    assert schedule_at(wsd, [5, 10, 50, 80, 90, 100]) == [5e-4, 1e-3, 1e-3, 1e-3, 5e-4, 0.0]
    # the budget's: a function of the progress variable alone, whatever the step
    progress = tf.Variable(0.0)
    budget = build_schedule(OptimizerConfig(learning_rate=1e-3, train_budget_minutes=5,
                                            warmup_fraction=0.1), progress)
    for p, expected in [(0.05, 5e-4), (0.1, 1e-3), (0.55, 5e-4), (1.0, 0.0), (1.3, 0.0)]:
        progress.assign(p)
        assert schedule_at(budget, [12345]) == [expected]
    # without the new options it is BERT's step schedule, as before
    assert type(build_schedule(OptimizerConfig())).__name__ == "WarmupPolynomialDecay"
    with pytest.raises(ValueError, match="--warmup_fraction 0.5 \\+ --decay_fraction 0.6"):
        OptimizerConfig(lr_schedule="wsd", warmup_fraction=0.5, decay_fraction=0.6).check()


def test_ridge_probe_separates_a_separable_set_and_not_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    x = rng.normal(size=(400, 16))
    x[:, 3] += 3.0 * (2 * y - 1)  # one informative direction among noise
    train_acc, dev_acc = ridge_probe(x[:300], list(y[:300]), x[300:], list(y[300:]))
    assert train_acc > 0.95 and dev_acc > 0.95
    noise = rng.normal(size=(400, 16))  # labels unrelated to the features: chance
    _, chance = ridge_probe(noise[:300], list(y[:300]), noise[300:], list(y[300:]))
    assert 0.3 < chance < 0.7


def test_probe_on_a_frozen_encoder_scores_a_separable_text_set_high(tmp_path):
    # Two classes told apart by their words: even a randomly initialized encoder's
    # mean-pooled states separate them linearly (distinct tokens, distinct embeddings).
    rng = np.random.default_rng(1)
    warm = ["warm", "bread", "light", "sun", "spring"]
    cold = ["cold", "snow", "stone", "sea", "winter"]
    rows = ["sentence\tlabel"]
    for i in range(200):
        label = i % 2
        words = rng.choice(warm if label else cold, 4).tolist() + ["the", "river"]
        rows.append(" ".join(rng.permutation(words)) + f"\t{label}")
    (tmp_path / "probe.tsv").write_text("\n".join(rows) + "\n")
    probe = Probe(str(tmp_path / "probe.tsv"), str(FIXTURES / "vocab.txt"), True,
                  max_seq_length=16)
    assert len(probe.train_labels) == 160 and len(probe.dev_labels) == 40
    encoder = BertEncoder(vocabulary_size=199, num_layers=1, num_heads=2, hidden_dim=32,
                          intermediate_dim=64, max_sequence_length=16)
    assert probe.score(encoder)["probe_accuracy"] >= 0.95


def test_budget_run_stops_at_zero_learning_rate_with_probe_and_resumes_nothing(
        tiny_dataset, tmp_path):
    model = tmp_path / "m"
    config = PretrainConfig(
        input_file=str(tiny_dataset), output_dir=str(model), model_overrides=tuple(TINY),
        train_batch_size=8, log_steps=2, save_checkpoints_steps=5,
        eval_input_file=str(tiny_dataset), max_eval_steps=2,
        probe_file=f"{FIXTURES}/glue/SST-2/train.tsv,{FIXTURES}/glue/SST-2/dev.tsv",
        optimizer=OptimizerConfig(learning_rate=1e-3, num_train_steps=100_000,
                                  train_budget_minutes=0.1, warmup_fraction=0.1))
    pretrain(config)
    log = [json.loads(line) for line in (model / "train_log.jsonl").read_text().splitlines()]
    last = log[-1]
    # The step that found the budget spent ran at the schedule's end (0) and was the last.
    assert last["budget_spent"] >= 1.0 and last["learning_rate"] == 0.0
    assert all(r["budget_spent"] < 1.0 and r["learning_rate"] > 0 for r in log[1:-1])
    # How many steps fit depends on the machine and its load; at least one before the
    # budget ran out, and the last.
    steps = last["step"]
    assert 2 <= steps < 100_000
    assert tf.train.latest_checkpoint(str(model / "checkpoints")).endswith(f"ckpt-{steps}")
    spent = tf.train.load_variable(str(model / "checkpoints"),
                                   "train_seconds/.ATTRIBUTES/VARIABLE_VALUE")
    assert 6.0 <= spent < 60.0
    # An evaluation (held-out MLM and the probe) at every checkpoint and at the end.
    evals = [json.loads(line) for line in (model / "eval_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evals] == [s for s in range(5, steps, 5)] + [steps]
    for record in evals:
        assert 0.0 <= record["probe_accuracy"] <= 1.0 and "eval_mlm_accuracy" in record
    assert json.loads((model / "eval_results.json").read_text())["step"] == steps
    # A rerun finds the budget spent: nothing trained, nothing logged twice.
    pretrain(config)
    assert (model / "train_log.jsonl").read_text().count("\n") == len(log)
    assert tf.train.latest_checkpoint(str(model / "checkpoints")).endswith(f"ckpt-{steps}")


def test_pre_ln_model_trains_exports_and_reloads_exactly(tiny_dataset, tmp_path):
    model = tmp_path / "preln"
    pretrain(PretrainConfig(
        input_file=str(tiny_dataset), output_dir=str(model),
        model_overrides=tuple(TINY) + ("norm_first=true", "dropout=0.0"), train_batch_size=8,
        log_steps=5, save_checkpoints_steps=10,
        optimizer=OptimizerConfig(learning_rate=2e-3, num_train_steps=10, num_warmup_steps=2)))
    md = open_model_dir(str(model))
    assert md.config["model"]["norm_first"] is True and md.model_config.norm_first
    # Every path that builds an encoder from a model dir builds the pre-LN one: all of
    # the checkpoint's encoder variables are found, the final LayerNorm's among them.
    encoder = build_encoder(md.model_config)
    restore_encoder(md, encoder)
    names = [v.path for v in encoder.weights]
    assert "final_layer_norm/gamma" in names
    assert encoder.get_layer("transformer_layer_0").normalize_first
    # The export's own verification compares the Keras model with every SavedModel in
    # TF Serving's session loader and with the TF Hub encoder in a fresh process.
    out = tmp_path / "export"
    run_module("model.export", "--model_dir", model, "--export_dir", out)
    info = json.loads((out / "preln" / "1" / "assets.extra" / "export.json").read_text())
    check = info["verification"]
    assert check["max_abs_diff"] <= 1e-5 and check["ids_equal"]
    assert check["hub_encoder"]["trainable_variables"] == 41  # 2 layers x 16 + 7 + final LN
    # TF Hub's promise: the last of encoder_outputs is sequence_output (final LN applied).
    hub = tf.saved_model.load(str(out / "preln_encoder" / "1"))
    ids = tf.constant([[2, 40, 41, 3, 0, 0]], tf.int32)
    outputs = hub({"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32),
                   "input_type_ids": tf.zeros_like(ids)}, training=False)
    np.testing.assert_array_equal(outputs["encoder_outputs"][-1], outputs["sequence_output"])
    reference = encoder({"token_ids": ids, "padding_mask": tf.cast(ids > 0, tf.int32),
                         "segment_ids": tf.zeros_like(ids)})["sequence_output"]
    # The same weights and graph: only the SavedModel's kernels may reorder sums.
    np.testing.assert_allclose(outputs["sequence_output"], reference, atol=1e-5)


def test_budget_run_under_mirrored_strategy_agrees_on_progress(tiny_dataset, tmp_path):
    """Two replicas (logical CPU devices, a fresh process): the progress the schedule reads
    is set inside the replicated step, and both stop at the same step with lr 0."""
    model = tmp_path / "m"
    run_module("model.pretrain", "--input_file", tiny_dataset, "--output_dir", model,
               *[f"--model_override={o}" for o in TINY], "--train_batch_size", 8,
               "--strategy", "mirrored", "--num_cpu_devices", 2, "--log_steps", 2,
               "--learning_rate", 1e-3, "--train_budget_minutes", 0.05,
               "--warmup_fraction", 0.1, "--mixed_precision", "float32")
    log = [json.loads(line) for line in (model / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["learning_rate"] == 0.0 and log[-1]["budget_spent"] >= 1.0
    assert all(0.0 < r["budget_spent"] < 1.0 and r["learning_rate"] > 0.0 for r in log[:-1])
