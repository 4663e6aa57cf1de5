"""Builds small, hand-checkable datasets for the tfrecords tests."""

import posixpath

import tensorflow as tf

from tfrecords.encode import InstanceEncoder
from tfrecords.features import FeatureSpec
from tfrecords.metadata import VOCAB_FILE, finalize_dataset
from tfrecords.shards import shard_name

SPEC = FeatureSpec(max_seq_length=16, max_predictions_per_seq=4)


def make_instance(i):
    """Instance i: [CLS] i+10 i+11 [SEP] i+12 [SEP] (vocab ids), position 2 masked."""
    ids = [4, 10 + i, 6, 5, 12 + i, 5]
    return dict(
        input_ids=ids,
        segment_ids=[0, 0, 0, 0, 1, 1],
        masked_lm_positions=[2],
        masked_lm_ids=[11 + i],
        next_sentence_label=i % 2,
    )


def write_dataset(directory, num_instances=10, num_shards=2, spec=SPEC, gz=False,
                  vocab_file=None, split="train"):
    """Writes instances 0..n-1 round-robin over shards, then finalizes."""
    tf.io.gfile.makedirs(directory)
    encoder = InstanceEncoder(spec)
    options = "GZIP" if gz else ""
    writers = [
        tf.io.TFRecordWriter(posixpath.join(directory, shard_name(split, k, num_shards, gz)), options)
        for k in range(num_shards)
    ]
    for i in range(num_instances):
        inst = make_instance(i)
        if not spec.masked:
            inst.pop("masked_lm_positions"), inst.pop("masked_lm_ids")
        if not spec.next_sentence:
            inst.pop("next_sentence_label")
        writers[i % num_shards].write(encoder.encode(**inst))
    for w in writers:
        w.close()
    if vocab_file:
        tf.io.gfile.copy(vocab_file, posixpath.join(directory, VOCAB_FILE), overwrite=True)
    return finalize_dataset(
        directory, spec=spec, generation={"seed": 1}, inputs=["hand-made"],
        stats={"instances": num_instances},
    )
