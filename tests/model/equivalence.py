"""Two training runs that promise the same computation in another float32 order.

A strategy (two mirrored replicas, two workers) computes the same global
batch as one device, but sums it in another order: each replica reduces its
half, then the halves are added. What that promises, and the bounds that
follow from float32 (unit round-off u = 2**-24):

- The first step's gradient. A sum of n terms taken in two orders differs by
  at most 2(n-1)u times the sum of their magnitudes (Higham, "Accuracy and
  Stability of Numerical Algorithms", 4.2); a weight's gradient sums over the
  batch's tokens, n = batch x sequence length. So, in norm and where the terms
  do not cancel (the per-tensor floor below is for those that do), the two
  gradients differ by at most 2nu of the gradient. Measured on a 2-core AVX2 AMD
  EPYC: 1.4e-7 of the gradient (2.3u), with 2 and 4 replicas; the bound
  (3e-5 for 8 x 32 tokens) is 200x above that, and every bug this guards
  against (a replica reading the other's data, a per-replica clip, a missing
  1/replicas) moves the gradient by a large fraction of itself.
  The first step's gradient is read from the checkpoint: AdamW's first
  moment after one step is exactly (1 - beta_1) g (the weights do not move
  at step 1: the warmup's learning rate is 0 there, so ckpt-1 also holds
  the initial weights).
- The trajectory: each later step adds at most another 2nu of rounding to its
  gradient, and Adam turns a gradient's relative error into (at most) that
  relative error of the step for every element whose gradient is well above
  epsilon; after k steps the weights' update (final - initial) differs by at
  most k x 2nu of itself, in norm. Measured: 3.8e-7 after 3 steps,
  1.3e-6 (2 replicas) and 2.2e-6 (4 replicas) after 24; the bound is >100x
  above both. The per-step losses obey the same k x 2nu.

A comparison element by element (what this replaced) cannot hold on every
machine: an element whose gradient is rounding noise moves by noise. The
comparison only holds in float32: --mixed_precision auto picks bfloat16 on
CPUs with AVX512_BF16 (u = 2**-8), so the runs compared here pin float32.
"""

import json

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

U = 2.0 ** -24  # float32 unit round-off
BETA_1 = 0.9  # OptimizerConfig's default, which both runs use


def optimizer_slots(checkpoint: str) -> list:
    """[(weight, first moment, second moment)] of every variable the optimizer trains.

    Keras 3's optimizer keeps [iterations, (accumulators,) m_0, v_0, m_1, v_1, ...] in
    `_variables` (adam.py: add_optimizer_variables interleaves them); the object graph
    resolves each to its key (a variable is saved once, under its first path)."""
    reader = tf.train.load_checkpoint(checkpoint)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))

    def child(node, name):
        return next((c.node_id for c in graph.nodes[node].children if c.local_name == name), None)

    def value(node):
        return reader.get_tensor(next(a.checkpoint_key for a in graph.nodes[node].attributes
                                      if a.name == "VARIABLE_VALUE"))

    optimizer = child(0, "optimizer")
    trained, slots = child(optimizer, "_trainable_variables"), child(optimizer, "_variables")
    n = len(graph.nodes[trained].children)
    # with gradient accumulation, one accumulator per variable comes first
    first = len(graph.nodes[slots].children) - 2 * n
    assert first in (1, 1 + n), (first, n)
    out = []
    while child(trained, str(len(out))) is not None:
        i = len(out)
        w, m, v = (value(child(trained, str(i))), value(child(slots, str(first + 2 * i))),
                   value(child(slots, str(first + 1 + 2 * i))))
        assert w.shape == m.shape == v.shape, f"slot {i}: {w.shape} {m.shape} {v.shape}"
        out.append((w, m, v))
    assert len(out) > 20, f"{checkpoint}: {len(out)} trained variables"
    return out


def _flat(arrays):
    return np.concatenate([a.ravel().astype(np.float64) for a in arrays])


def _losses(model_dir) -> dict:
    with open(f"{model_dir}/train_log.jsonl") as f:
        return {r["step"]: r["loss"] for r in map(json.loads, f)}


def assert_same_training(reference, other, *, checkpoints: str, steps: int, tokens: int):
    """`other` trained what `reference` did, within float32 reduction-order bounds.

    Args:
        reference, other: model directories of two runs saved at every step
            (--save_checkpoints_steps 1, keeping at least `steps` checkpoints).
        checkpoints: the loop's checkpoint subdirectory ("checkpoints", "train_state").
        steps: the runs' last step.
        tokens: batch x sequence length, the longest sum whose order the strategy changes.
    """
    bound = 2 * tokens * U
    first = [optimizer_slots(f"{d}/{checkpoints}/ckpt-1") for d in (reference, other)]
    g_ref = [m / (1 - BETA_1) for _, m, _ in first[0]]
    g_other = [m / (1 - BETA_1) for _, m, _ in first[1]]
    norm = np.linalg.norm(_flat(g_ref))
    assert norm > 0
    diff = np.linalg.norm(_flat(g_other) - _flat(g_ref))
    assert diff <= bound * norm, f"step 1 gradients differ by {diff / norm:.3g} of their " \
                                 f"norm (bound 2nu = {bound:.3g})"
    size = sum(g.size for g in g_ref)
    for i, (a, b) in enumerate(zip(g_ref, g_other)):
        # A tensor whose gradient cancels to ~0 (attention's key bias: softmax ignores a
        # per-query constant) is rounding noise: compare it at the scale of an average
        # tensor of its size instead.
        scale = max(np.linalg.norm(a), norm * np.sqrt(a.size / size))
        assert np.linalg.norm(b - a) <= bound * scale, \
            f"step 1 gradient of trained variable {i} {a.shape}: differs by " \
            f"{np.linalg.norm(b - a):.3g}, bound {bound * scale:.3g}"
    initial = _flat(w for w, _, _ in first[0])
    assert np.array_equal(initial, _flat(w for w, _, _ in first[1])), "initial weights differ"
    last = [_flat(w for w, _, _ in optimizer_slots(f"{d}/{checkpoints}/ckpt-{steps}"))
            for d in (reference, other)]
    update = np.linalg.norm(last[0] - initial)
    assert update > 0
    drift = np.linalg.norm(last[1] - last[0])
    assert drift <= steps * bound * update, \
        f"after {steps} steps the weights' updates differ by {drift / update:.3g} of the " \
        f"update (bound k x 2nu = {steps * bound:.3g})"
    losses = [_losses(d) for d in (reference, other)]
    assert sorted(losses[0]) == sorted(losses[1]) == list(range(1, steps + 1))
    for step, loss in losses[0].items():
        assert abs(losses[1][step] - loss) <= step * bound * abs(loss), \
            f"step {step}: loss {losses[1][step]} against {loss}"
