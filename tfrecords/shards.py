"""Single shard files: their names, compression, first record and full check.

Shards are named `<split>-NNNNN-of-MMMMM.tfrecord`, with `.gz` when GZIP
compressed; the suffix alone decides how a file is read.
"""

import re
from typing import Dict, List, Optional

# TensorFlow is imported inside the functions that read files, so that
# shard naming and DatasetError are usable where TensorFlow is not loaded.

SHARD_RE = re.compile(
    r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord(?P<gz>\.gz)?$"
)


class DatasetError(Exception):
    """A dataset directory or shard a reader must refuse; the message names it."""


def shard_name(split: str, index: int, count: int, compressed: bool = False) -> str:
    """`train-00003-of-00010.tfrecord[.gz]`."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord" + (".gz" if compressed else "")


def list_shards(directory: str) -> Dict[str, List[str]]:
    """Split name -> sorted shard file names found in `directory`."""
    import tensorflow as tf

    splits: Dict[str, List[str]] = {}
    for name in tf.io.gfile.listdir(directory):
        match = SHARD_RE.match(name.rstrip("/"))
        if match:
            splits.setdefault(match.group("split"), []).append(name)
    return {split: sorted(names) for split, names in splits.items()}


def compression_type(path: str) -> str:
    return "GZIP" if path.endswith(".gz") else ""


def first_record(path: str) -> Optional[bytes]:
    """The first serialized record of a TFRecord file, or None when it is empty.

    Raises DatasetError naming the file when it cannot be read as TFRecord.
    """
    import tensorflow as tf

    try:
        for record in tf.data.TFRecordDataset(path, compression_type=compression_type(path)).take(1):
            return record.numpy()
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError,
            tf.errors.NotFoundError, tf.errors.OutOfRangeError) as e:
        raise DatasetError(
            f"{path} is not a readable TFRecord file ({e.message.splitlines()[0]})"
        ) from None
    return None


def count_records(path: str) -> int:
    """Reads a whole TFRecord file, checking every CRC; returns its record count.

    Raises DatasetError naming the file when it is truncated or corrupted
    (TensorFlow's own DataLossError does not say which file).
    """
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(path, compression_type=compression_type(path))
    try:
        # Batched: counting record by record costs ~50 us a record, in batches
        # of 4096 ~1.8 us (100k records of 128 tokens, 80 MB, in 0.18 s).
        batches = dataset.batch(4096)
        return int(batches.reduce(tf.constant(0, tf.int64), lambda n, b: n + tf.size(b, tf.int64)))
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        reason = e.message.splitlines()[0].split("}}")[-1].split(" [Op:")[0].strip()
        raise DatasetError(
            f"{path} is truncated or corrupted ({reason}); copy it again or regenerate it"
        ) from None
