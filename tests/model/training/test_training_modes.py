"""Dynamic masking, two-phase training, mixed precision, LAMB and accumulation."""

import json

import numpy as np
import pytest

from model.training.engine import TrainingError
from model.training.optimization import OptimizerConfig
from model.training.pretraining_run import PretrainConfig, Pretrainer, pretrain
from tests.model.conftest import TINY, make_dataset_dir


def tiny_config(dataset, out, **kw):
    optimizer = kw.pop("optimizer", OptimizerConfig(learning_rate=1e-3, num_train_steps=4,
                                                    num_warmup_steps=1))
    return PretrainConfig(input_file=str(dataset), output_dir=str(out), model_overrides=tuple(TINY),
                       train_batch_size=8, log_steps=2, optimizer=optimizer, **kw)


def test_dynamic_masking_masks_in_tf_data(tmp_path):
    ds = make_dataset_dir(tmp_path / "dyn", masking="dynamic")
    trainer = Pretrainer(tiny_config(ds, tmp_path / "m", max_predictions_per_seq=6))
    batch = next(iter(trainer._dataset(trainer.source, 8, True)))
    positions, weights = batch["masked_lm_positions"].numpy(), batch["masked_lm_weights"].numpy()
    ids, labels = batch["input_ids"].numpy(), batch["masked_lm_ids"].numpy()
    assert positions.shape == (8, 6) and weights.sum() > 0
    cls_sep = {trainer.vocab.index("[CLS]"), trainer.vocab.index("[SEP]")}
    for row in range(8):
        for pos, label, w in zip(positions[row], labels[row], weights[row]):
            if w:
                assert label not in cls_sep and label != 0
    # every epoch sees new masks: the first batch of epoch 1 and of epoch 2 hold
    # the same records (no shuffle) with other masked positions
    from model.tasks.pretraining import dynamic_masker
    from tfrecords.reader import make_dataset

    plain = make_dataset(str(ds), global_batch_size=8, is_training=False)
    per_epoch = sum(1 for _ in plain)
    epochs = list(plain.repeat(2).map(dynamic_masker(trainer.vocab, 6, 0.15)))
    assert not np.array_equal(epochs[0]["masked_lm_positions"].numpy(),
                              epochs[per_epoch]["masked_lm_positions"].numpy())
    assert ids.shape == (8, 32)
    assert np.isfinite(trainer.run()["loss"])


def test_phase_two_starts_from_phase_one_weights_at_a_longer_length(tmp_path):
    short = make_dataset_dir(tmp_path / "short", max_seq_length=32)
    long = make_dataset_dir(tmp_path / "long", max_seq_length=64, max_predictions_per_seq=10)
    pretrain(tiny_config(short, tmp_path / "phase1"))
    phase2 = Pretrainer(tiny_config(long, tmp_path / "phase2",
                                 init_checkpoint=str(tmp_path / "phase1")))
    phase1_embedding = Pretrainer(tiny_config(short, tmp_path / "phase1"))
    phase1_embedding.engine.restore()
    phase2._initialize()
    a = [w for w in phase1_embedding.model.weights if "token_embedding" in w.path][0]
    b = [w for w in phase2.model.weights if "token_embedding" in w.path][0]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert phase2.engine.step() == 0  # a new schedule
    assert np.isfinite(phase2.run()["loss"])


def test_mixed_bfloat16_lamb_and_accumulation_train(tmp_path):
    ds = make_dataset_dir(tmp_path / "ds")
    results = pretrain(tiny_config(
        ds, tmp_path / "m", mixed_precision="mixed_bfloat16",
        optimizer=OptimizerConfig(optimizer="lamb", learning_rate=1e-3, num_train_steps=4,
                                  num_warmup_steps=1, gradient_accumulation_steps=2)))
    assert np.isfinite(results["loss"])
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["training"]["optimizer"]["gradient_accumulation_steps"] == 2


def test_a_run_of_another_model_in_the_output_dir_is_refused(tmp_path):
    ds = make_dataset_dir(tmp_path / "ds")
    pretrain(tiny_config(ds, tmp_path / "m"))
    bigger = tiny_config(ds, tmp_path / "m")
    bigger = PretrainConfig(**{**bigger.__dict__, "model_overrides": tuple(TINY) + ("num_layers=3",)})
    with pytest.raises(TrainingError, match="holds a run of another model"):
        Pretrainer(bigger)


@pytest.mark.parametrize("extra", [dict(jit_compile=True), dict(mixed_precision="mixed_float16")])
def test_xla_and_float16_loss_scaling_train(tmp_path, extra):
    ds = make_dataset_dir(tmp_path / "ds")
    results = pretrain(tiny_config(ds, tmp_path / "m", **extra))
    assert np.isfinite(results["loss"]) and results["loss"] > 0


def test_lamb_scales_each_tensors_step_by_its_trust_ratio(tmp_path):
    """LAMB's layer-wise trust ratio ||w|| / ||update||: after one float32 step at learning
    rate lr, every tensor with weights (not a zero-initialized bias) has moved by exactly
    lr x ||w|| (AdamW's step would be about lr per element, whatever ||w||). Tensors that
    take weight decay move lr x wd x ||w|| more at most, hence 1.5 x wd relative."""
    ds = make_dataset_dir(tmp_path / "ds")
    lr, wd = 1e-2, 0.01
    trainer = Pretrainer(tiny_config(ds, tmp_path / "m", mixed_precision="float32",
                                     optimizer=OptimizerConfig(
                                         optimizer="lamb", learning_rate=lr, num_train_steps=1,
                                         num_warmup_steps=0, weight_decay=wd)))
    before = [np.array(v) for v in trainer.engine.variables]
    trainer.run()
    checked = 0
    for v, w in zip(trainer.engine.variables, before):
        norm = np.linalg.norm(w)
        if norm == 0:
            continue
        moved = np.linalg.norm(np.array(v) - w)
        assert moved == pytest.approx(lr * norm, rel=1.5 * wd + 1e-4), v.path
        checked += 1
    assert checked > 10
