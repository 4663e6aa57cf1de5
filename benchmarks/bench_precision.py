"""float32 against mixed_bfloat16 training steps on this machine (is bf16 native here?).

    .venv/bin/python benchmarks/bench_precision.py [--repeats 3] [--preset bert_mini]

One train step of the pretraining task (MLM only, batch 32, length 128, 20
predictions, AdamW), each precision in its own process, interleaved, medians
of `--repeats`. Prints examples/s per precision and the ratio, and what
`--mixed_precision auto` picks here (model/training/engine.py `bf16_hardware`). Writes
benchmarks/results/precision.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r'''
import sys, time
import numpy as np, tensorflow as tf, keras
from model.networks.presets import resolve
from model.tasks.pretraining import PretrainingTask
policy, preset = sys.argv[1], sys.argv[2]
keras.mixed_precision.set_dtype_policy(policy)
task = PretrainingTask(resolve(preset, vocabulary_size=30522), next_sentence=False)
model = task.build_model()
optimizer = keras.optimizers.AdamW(1e-4)
B, L, P = 32, 128, 20
rng = np.random.default_rng(0)
batch = {k: tf.constant(v) for k, v in {
    "input_ids": rng.integers(1000, 30000, (B, L)).astype(np.int32),
    "input_mask": np.ones((B, L), np.int32), "segment_ids": np.zeros((B, L), np.int32),
    "masked_lm_positions": rng.integers(1, L, (B, P)).astype(np.int32),
    "masked_lm_ids": rng.integers(1000, 30000, (B, P)).astype(np.int32),
    "masked_lm_weights": np.ones((B, P), np.float32)}.items()}

@tf.function
def step():
    with tf.GradientTape() as tape:
        (loss_sum, count), = task.replica_terms(model, batch, True)[0].values()
        loss = loss_sum / count
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

for _ in range(3):
    step()
start, n = time.time(), 10
for _ in range(n):
    step()
print(n * B / (time.time() - start))
'''


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", default="bert_mini")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    runs = {"float32": [], "mixed_bfloat16": []}
    for _ in range(args.repeats):
        for policy in runs:
            out = subprocess.run([sys.executable, "-c", CHILD, policy, args.preset], cwd=ROOT,
                                 env=env, capture_output=True, text=True, check=True)
            runs[policy].append(float(out.stdout.strip().splitlines()[-1]))
    sys.path.insert(0, ROOT)
    import tensorflow as tf

    from model.training.engine import bf16_hardware

    native, found = bf16_hardware(tf.distribute.get_strategy())
    medians = {p: statistics.median(v) for p, v in runs.items()}
    results = {"load_average_at_start": os.getloadavg(), "preset": args.preset,
               "examples_per_second": runs, "medians": medians,
               "bf16_over_fp32": medians["mixed_bfloat16"] / medians["float32"],
               "hardware": found, "auto_picks": "mixed_bfloat16" if native else "float32"}
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "precision.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(f"{args.preset} train step, batch 32 x 128: float32 {medians['float32']:.1f} ex/s, "
          f"mixed_bfloat16 {medians['mixed_bfloat16']:.1f} ex/s "
          f"({results['bf16_over_fp32']:.2f}x); {found}: auto picks {results['auto_picks']}")


if __name__ == "__main__":
    main()
