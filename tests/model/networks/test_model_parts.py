import keras
import numpy as np
import pytest

from model.networks.heads import NextSentenceHead
from model.networks.presets import PRESETS, ConfigError, parse_overrides, resolve
from model.networks.pretrainer import build_pretrainer
from model.training.optimization import OptimizerConfig, WarmupPolynomialDecay, build_optimizer


def test_presets_are_the_published_sizes():
    assert PRESETS["bert_tiny"] == dict(num_layers=2, hidden_dim=128, num_heads=2,
                                        intermediate_dim=512)
    assert PRESETS["bert_base"]["num_layers"] == 12 and PRESETS["bert_large"]["hidden_dim"] == 1024
    cfg = resolve("bert_mini", vocabulary_size=999, overrides=parse_overrides(["dropout=0.0"]))
    assert (cfg.num_layers, cfg.hidden_dim, cfg.vocabulary_size, cfg.dropout) == (4, 256, 999, 0.0)


def test_bad_configs_are_named():
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve("bert_huge", vocabulary_size=10)
    with pytest.raises(ConfigError, match="not divisible by num_heads"):
        resolve("bert_tiny", vocabulary_size=10, overrides={"num_heads": 3})
    with pytest.raises(ConfigError, match="FIELD=VALUE"):
        parse_overrides(["vocabulary_size=5"])


def test_schedule_warms_up_then_decays_linearly():
    s = WarmupPolynomialDecay(1e-3, 0.0, num_train_steps=100, num_warmup_steps=10)
    assert [round(float(s(i)), 7) for i in (0, 5, 10, 55, 100, 150)] == [
        0.0, 0.0005, 0.001, 0.0005, 0.0, 0.0]
    accumulated = WarmupPolynomialDecay(1e-3, 0.0, 100, 10, accumulation_steps=4)
    assert float(accumulated(20)) == pytest.approx(float(s(5)))  # micro-step 20 = step 5


def test_no_weight_decay_on_layer_norm_and_biases():
    model = build_pretrainer(resolve("bert_tiny", vocabulary_size=50, overrides=dict(
        num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16)))
    optimizer = build_optimizer(OptimizerConfig())
    optimizer.build(model.trainable_variables)
    decayed = {v.path for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    assert decayed and not any(("bias" in p or "gamma" in p or "beta" in p) for p in decayed)
    assert any("token_embedding" in p for p in decayed)
    assert any(p.endswith("kernel") for p in decayed)


def test_adamw_is_the_papers_algorithm_1():
    """Three steps of build_optimizer's AdamW against Kingma & Ba's Algorithm 1 with
    decoupled weight decay, as PyTorch's AdamW computes it (epsilon after the bias
    correction), in float64. Gradients from 1e-7 to 2: where epsilon matters (Keras' own
    AdamW moves the 1e-7 element ~30x less at step 1) and where it does not."""
    lr, eps, wd, b1, b2 = 1e-2, 1e-6, 0.01, 0.9, 0.999
    optimizer = build_optimizer(OptimizerConfig(
        learning_rate=lr, num_train_steps=1000, num_warmup_steps=0, decay_power=0.0,
        weight_decay=wd, epsilon=eps, clip_norm=0.0))
    weights = keras.Variable(np.array([1.0, -0.5, 2.0, 0.3], np.float32), name="kernel")
    grads = np.array([[1e-7, -2.0, 3e-6, 0.5], [2e-7, -1.0, -3e-6, 0.4],
                      [-1e-7, 0.5, 3e-6, 0.45]])
    w, m, v = weights.numpy().astype(np.float64), np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads, start=1):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype(np.float32)),
                                    weights)])
        w = w * (1 - lr * wd)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        # float32 arithmetic on values of order 1: a few units of 2**-24 per step
        np.testing.assert_allclose(weights.numpy(), w, rtol=0, atol=1e-6)


def test_mlm_head_is_tied_to_the_token_embedding():
    model = build_pretrainer(resolve("bert_tiny", vocabulary_size=50, overrides=dict(
        num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16)))
    names = [v.path for v in model.trainable_variables]
    assert sum("embeddings" in n and "token" in n for n in names) == 1  # one table, shared
    out = model({"input_ids": np.ones((2, 6), "int32"), "input_mask": np.ones((2, 6), "int32"),
                 "segment_ids": np.zeros((2, 6), "int32"),
                 "masked_lm_positions": np.array([[1, 2], [3, 0]], "int32")})
    assert tuple(out["mlm_logits"].shape) == (2, 2, 50) and tuple(out["nsp_logits"].shape) == (2, 2)


def test_nsp_head_round_trips_its_config():
    head = NextSentenceHead(kernel_initializer="zeros", name="nsp")
    clone = NextSentenceHead.from_config(head.get_config())
    assert clone.name == "nsp"
    assert isinstance(clone.kernel_initializer, keras.initializers.Zeros)
