import pytest
import tensorflow as tf

from tfrecords.features import FeatureSpec, FeatureSpecError, spec_from_lengths


def test_static_spec_has_google_research_names_and_shapes():
    spec = FeatureSpec(max_seq_length=128, max_predictions_per_seq=20)
    assert spec.shapes() == {
        "input_ids": ("int64", 128),
        "input_mask": ("int64", 128),
        "segment_ids": ("int64", 128),
        "masked_lm_positions": ("int64", 20),
        "masked_lm_ids": ("int64", 20),
        "masked_lm_weights": ("float", 20),
        "next_sentence_labels": ("int64", 1),
    }
    parse = spec.parse_features()
    assert parse["masked_lm_weights"].dtype == tf.float32
    assert parse["input_ids"].shape == [128]


def test_dynamic_and_no_nsp_specs_leave_features_out():
    spec = spec_from_lengths(64, 10, masking="dynamic", next_sentence=False)
    assert sorted(spec.shapes()) == ["input_ids", "input_mask", "segment_ids"]
    assert spec.max_predictions_per_seq == 0


def test_json_round_trip_and_inconsistent_listing():
    spec = FeatureSpec(32, 5)
    block = spec.to_json()
    assert FeatureSpec.from_json(block) == spec
    block["spec"]["input_ids"]["shape"] = [64]
    with pytest.raises(FeatureSpecError, match="info.json"):
        FeatureSpec.from_json(block)


def test_bad_lengths_are_refused():
    with pytest.raises(FeatureSpecError, match="max_predictions_per_seq"):
        FeatureSpec(32, 0)
    with pytest.raises(FeatureSpecError, match="masking"):
        spec_from_lengths(32, 5, masking="sometimes")


def _example(**features):
    feats = {}
    for name, values in features.items():
        if isinstance(values[0], float):
            feats[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
            feats[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feats))


def test_spec_inferred_from_a_v2_named_record():
    ex = _example(input_word_ids=[1] * 8, input_type_ids=[0] * 8, input_mask=[1] * 8,
                  masked_lm_positions=[1, 2], masked_lm_ids=[3, 4],
                  masked_lm_weights=[1.0, 0.0], next_sentence_labels=[0])
    spec = FeatureSpec.from_example(ex, "f.tfrecord")
    assert spec == FeatureSpec(8, 2)


def test_mismatch_message_names_the_source_and_every_problem():
    spec = FeatureSpec(8, 2)
    ex = _example(input_ids=[1] * 8, input_mask=[1] * 7, segment_ids=[0] * 8,
                  masked_lm_positions=[1, 2], masked_lm_ids=[3, 4],
                  masked_lm_weights=[1.0, 0.0], extra=[1])
    with pytest.raises(FeatureSpecError) as err:
        spec.check_example(ex, "shard-7.tfrecord")
    message = str(err.value)
    assert message.startswith("shard-7.tfrecord:")
    assert "input_mask is int64[7], expected int64[8]" in message
    assert "missing next_sentence_labels" in message
    assert "unexpected extra" in message
