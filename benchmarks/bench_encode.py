"""Cost of encoding one instance to tf.train.Example bytes: ours against the usual ways.

    .venv/bin/python benchmarks/bench_encode.py [--instances 20000] [--repeats 5]

128 tokens, 20 predictions, uncased-vocab-sized ids. Prints the median
microseconds per instance of each method and the ratio to ours, and writes
benchmarks/results/encode.json.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tensorflow as tf  # noqa: E402

from tfrecords.encode import InstanceEncoder  # noqa: E402
from tfrecords.features import FeatureSpec  # noqa: E402


def make_instances(n, rng):
    out = []
    for _ in range(n):
        ids = [101] + [rng.randrange(999, 30522) for _ in range(125)] + [102, 102]
        segments = [0] * 64 + [1] * 64
        positions = sorted(rng.sample(range(1, 127), 19))
        out.append((ids, segments, positions, [ids[p] for p in positions], rng.randrange(2)))
    return out


def new_example_each_time(inst, L=128, P=20):
    """google-research/bert's way: pad lists, build a new tf.train.Example."""
    ids, segments, positions, labels, nsp = inst
    pad = lambda v, n: list(v) + [0] * (n - len(v))
    ints = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
    feats = {
        "input_ids": ints(pad(ids, L)), "input_mask": ints(pad([1] * len(ids), L)),
        "segment_ids": ints(pad(segments, L)), "masked_lm_positions": ints(pad(positions, P)),
        "masked_lm_ids": ints(pad(labels, P)),
        "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(
            value=[1.0] * len(positions) + [0.0] * (P - len(positions)))),
        "next_sentence_labels": ints([nsp]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


class ReusedExample:
    """One tf.train.Example refilled with `[:] =` (fast, but needs TensorFlow's protos)."""

    def __init__(self, L=128, P=20):
        self.L, self.P = L, P
        self.ex = tf.train.Example()
        f = self.ex.features.feature
        self.fields = {n: f[n].int64_list.value for n in (
            "input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
            "next_sentence_labels")}
        self.weights = f["masked_lm_weights"].float_list.value

    def __call__(self, inst):
        ids, segments, positions, labels, nsp = inst
        L, P, fl = self.L, self.P, self.fields
        fl["input_ids"][:] = list(ids) + [0] * (L - len(ids))
        fl["input_mask"][:] = [1] * len(ids) + [0] * (L - len(ids))
        fl["segment_ids"][:] = list(segments) + [0] * (L - len(segments))
        fl["masked_lm_positions"][:] = list(positions) + [0] * (P - len(positions))
        fl["masked_lm_ids"][:] = list(labels) + [0] * (P - len(labels))
        self.weights[:] = [1.0] * len(positions) + [0.0] * (P - len(positions))
        fl["next_sentence_labels"][:] = [nsp]
        return self.ex.SerializeToString()


def time_per_instance(fn, instances):
    start = time.perf_counter()
    for inst in instances:
        fn(inst)
    return (time.perf_counter() - start) / len(instances) * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    instances = make_instances(args.instances, random.Random(0))
    ours = InstanceEncoder(FeatureSpec(128, 20), vocab_size=30522)
    methods = {
        "ours (InstanceEncoder)": lambda inst: ours.encode(*inst),
        "reused tf.train.Example": ReusedExample(),
        "new tf.train.Example": new_example_each_time,
    }
    for inst in instances[:50]:  # both parse to the same tf.train.Example
        a = tf.train.Example.FromString(methods["ours (InstanceEncoder)"](inst))
        assert a == tf.train.Example.FromString(new_example_each_time(inst))
    results = {name: [] for name in methods}
    for _ in range(args.repeats):  # interleaved, so machine noise hits all alike
        for name, fn in methods.items():
            results[name].append(time_per_instance(fn, instances))
    medians = {name: statistics.median(v) for name, v in results.items()}
    base = medians["ours (InstanceEncoder)"]
    print(f"{'method':28s} {'us/instance':>12s} {'x ours':>8s}")
    for name, us in medians.items():
        print(f"{name:28s} {us:12.2f} {us / base:8.2f}")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "encode.json"), "w") as f:
        json.dump({"instances": args.instances, "repeats": args.repeats,
                   "median_us_per_instance": medians, "runs": results}, f, indent=2)


if __name__ == "__main__":
    main()
