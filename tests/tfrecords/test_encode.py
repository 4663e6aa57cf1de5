import random

import pytest
import tensorflow as tf

from tfrecords.encode import InstanceEncoder
from tfrecords.features import FeatureSpec, spec_from_lengths


def reference_example(spec, ids, segments, positions, labels, nsp):
    """The tf.train.Example google-research's generator builds for the same instance."""
    L, P = spec.max_seq_length, spec.max_predictions_per_seq
    pad = lambda v, n: list(v) + [0] * (n - len(v))
    ints = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
    feats = {
        "input_ids": ints(pad(ids, L)),
        "input_mask": ints(pad([1] * len(ids), L)),
        "segment_ids": ints(pad(segments, L)),
    }
    if spec.masked:
        feats["masked_lm_positions"] = ints(pad(positions, P))
        feats["masked_lm_ids"] = ints(pad(labels, P))
        feats["masked_lm_weights"] = tf.train.Feature(float_list=tf.train.FloatList(
            value=[1.0] * len(positions) + [0.0] * (P - len(positions))))
    if spec.next_sentence:
        feats["next_sentence_labels"] = ints([nsp])
    return tf.train.Example(features=tf.train.Features(feature=feats))


@pytest.mark.parametrize("vocab_size", [200, 30522, 250_000])
def test_encoded_bytes_parse_to_the_reference_example(vocab_size):
    rng = random.Random(vocab_size)
    spec = FeatureSpec(128, 20)
    encoder = InstanceEncoder(spec)
    for _ in range(50):  # one encoder, refilled: nothing leaks from one instance to the next
        n = rng.randrange(4, 129)
        ids = [rng.randrange(vocab_size) for _ in range(n)]
        segments = sorted(rng.randrange(2) for _ in range(n))
        positions = sorted(rng.sample(range(n), rng.randrange(0, min(n, 20) + 1)))
        labels = [rng.randrange(vocab_size) for _ in positions]
        nsp = rng.randrange(2)
        ours = tf.train.Example.FromString(encoder.encode(ids, segments, positions, labels, nsp))
        assert ours == reference_example(spec, ids, segments, positions, labels, nsp)


def test_dynamic_no_nsp_instances_encode_only_their_features():
    spec = spec_from_lengths(8, None, masking="dynamic", next_sentence=False)
    data = InstanceEncoder(spec).encode([4, 9, 5], [0, 0, 0])
    assert tf.train.Example.FromString(data) == reference_example(spec, [4, 9, 5], [0, 0, 0], [], [], 0)


def test_hand_checked_bytes_of_a_tiny_instance():
    # One feature worked out by hand: input_mask of [4, 5] at L=3 is the map entry
    # 0a 15 | 0a 0a "input_mask" | 12 07 | 1a 05 | 0a 03 01 01 00
    data = InstanceEncoder(FeatureSpec(3, 1, next_sentence=False)).encode([4, 5], [0, 0], [1], [7])
    assert bytes.fromhex("0a15" "0a0a") + b"input_mask" + bytes.fromhex("1207" "1a05" "0a03010100") in data
    # and masked_lm_weights [1.0] is the float 00 00 80 3f, packed
    assert b"masked_lm_weights" + bytes.fromhex("1208" "1206" "0a04" "0000803f") in data


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_ids=list(range(10)), segment_ids=[0] * 10), "more than its length"),
    (dict(input_ids=[4, 5], segment_ids=[0]), "segment_ids has 1 values"),
    (dict(input_ids=[4, -1], segment_ids=[0, 0]), "negative"),
    (dict(input_ids=[4, "5"], segment_ids=[0, 0]), "must hold int token ids"),
    (dict(input_ids=[4, 5], segment_ids=[0, 0], masked_lm_positions=[3], masked_lm_ids=[1]), "fall outside"),
    (dict(input_ids=[4, 5], segment_ids=[0, 0], masked_lm_positions=[1], masked_lm_ids=[1],
          next_sentence_label=2), "next_sentence_label"),
])
def test_bad_instances_raise_clear_errors(kwargs, message):
    encoder = InstanceEncoder(FeatureSpec(8, 2))
    kwargs.setdefault("masked_lm_positions", [])
    kwargs.setdefault("masked_lm_ids", [])
    kwargs.setdefault("next_sentence_label", 0)
    with pytest.raises(ValueError, match=message):
        encoder.encode(**kwargs)
