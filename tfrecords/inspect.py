"""Prints a dataset's info and stats and its first instances decoded to tokens.

Usage:
    python -m tfrecords.inspect DIR_OR_FILES [--vocab_file F] [--num_examples N]
        [--split train] [--verify]

DIR_OR_FILES is a dataset directory, or comma-separated TFRecord file
patterns made by any tool (google-research/bert, Model Garden...). Each
instance is printed the way google-research's generator logs its own
("tokens: ...", then one line per feature), followed by the masked
positions with the token shown to the model and the original token.
"""

import json
import sys
from typing import Dict, Iterator, List, Optional, Tuple

from absl import app, flags

import tensorflow as tf

from tfrecords.cli import fail, flags_parser, no_arguments
from tfrecords.reader import Source, open_source, verify_records
from tfrecords.shards import DatasetError, compression_type, count_records
from tfrecords.vocab import read_vocab

FLAGS = flags.FLAGS
flags.DEFINE_string("vocab_file", None, "vocab.txt to decode ids with (default: DIR/vocab.txt).")
flags.DEFINE_integer("num_examples", 5, "How many instances to print.", lower_bound=0)
flags.DEFINE_string("split", "train", "Which split of a dataset directory to read.")
flags.DEFINE_bool("verify", False, "Read every record and check its CRC; print counts per file.")

ORDER = (
    "input_ids", "input_mask", "segment_ids", "masked_lm_positions",
    "masked_lm_ids", "masked_lm_weights", "next_sentence_labels",
)


def iter_records(files: List[str]) -> Iterator[Tuple[str, int, Dict[str, list]]]:
    """(file, index in file, feature -> values) for every record, in file order."""
    for path in files:
        dataset = iter(tf.data.TFRecordDataset(path, compression_type=compression_type(path)))
        index = 0
        while True:
            try:
                raw = next(dataset)
            except StopIteration:
                break
            except tf.errors.DataLossError:
                count_records(path)  # raises DatasetError naming the file
                raise
            example = tf.train.Example.FromString(raw.numpy())
            values = {}
            for name, feature in example.features.feature.items():
                kind = feature.WhichOneof("kind")
                values[name] = list(getattr(feature, kind).value) if kind else []
            yield path, index, values
            index += 1


def format_instance(values: Dict[str, list], vocab: Optional[List[str]]) -> List[str]:
    """The lines printed for one instance (google-research's log format, plus masks)."""
    values = dict(values)
    for v2, v1 in (("input_word_ids", "input_ids"), ("input_type_ids", "segment_ids")):
        if v2 in values:
            values[v1] = values.pop(v2)
    lines = []
    ids = values.get("input_ids", [])
    length = sum(values["input_mask"]) if "input_mask" in values else len(ids)

    def token(i: int) -> str:
        return vocab[i] if 0 <= i < len(vocab) else f"<id {i} outside vocab>"

    if vocab is not None:
        lines.append("tokens: " + " ".join(token(i) for i in ids[:length]))
    names = [n for n in ORDER if n in values] + sorted(set(values) - set(ORDER))
    for name in names:
        lines.append(f"{name}: " + " ".join(str(x) for x in values[name]))
    if vocab is not None and "masked_lm_positions" in values:
        weights = values.get("masked_lm_weights", [1.0] * len(values["masked_lm_positions"]))
        shown = [
            f"{pos}:{token(ids[pos]) if pos < len(ids) else '?'}->{token(orig)}"
            for pos, orig, w in zip(values["masked_lm_positions"], values["masked_lm_ids"], weights)
            if w > 0
        ]
        lines.append("masked (position:shown->original): " + " ".join(shown))
    return lines


def inspect(path: str, vocab_file: Optional[str], num_examples: int, split: str,
            verify: bool, out=sys.stdout) -> Source:
    """Prints metadata, optional per-file counts and the first instances of `path`."""
    source = open_source(path, split)
    dataset = source.dataset
    if dataset is not None:
        print(f"Dataset {dataset.directory} (splits: {', '.join(dataset.splits)})", file=out)
        print("info.json:", json.dumps(dataset.info, indent=2, sort_keys=True), file=out)
        print("stats.json:", json.dumps(dataset.stats, indent=2, sort_keys=True), file=out)
        vocab_file = vocab_file or dataset.vocab_file
    else:
        spec = source.spec
        print(f"{len(source.files)} file(s) matching {path}: max_seq_length="
              f"{spec.max_seq_length} max_predictions_per_seq={spec.max_predictions_per_seq} "
              f"masked={spec.masked} next_sentence={spec.next_sentence}", file=out)
    if verify:
        total = 0
        for name, count, listed in verify_records(source, split):
            total += count
            print(f"{name}: {count} records, CRC ok" + (", as info.json lists" if listed else ""),
                  file=out)
        print(f"{total} records in {len(source.files)} file(s)", file=out)
    vocab = read_vocab(vocab_file) if vocab_file else None
    if vocab is None:
        print("(no vocabulary: pass --vocab_file to see tokens)", file=out)
    shown = 0
    for file_name, index, values in iter_records(source.files):
        if shown >= num_examples:
            break
        print(f"*** Example {shown} ({file_name}, record {index}) ***", file=out)
        for line in format_instance(values, vocab):
            print(line, file=out)
        shown += 1
    return source


def main(argv):
    usage = "python -m tfrecords.inspect DIR_OR_FILES [--vocab_file F]"
    if len(argv) < 2:
        fail("inspect", f"which dataset? usage: {usage}")
    no_arguments(argv[1:], "inspect", usage)
    try:
        inspect(argv[1], FLAGS.vocab_file, FLAGS.num_examples, FLAGS.split, FLAGS.verify)
    except DatasetError as e:
        fail("inspect", e)
    return 0


def entry_point():
    """Console-script entry point (`bert-inspect`)."""
    app.run(main, flags_parser=flags_parser("inspect"))


if __name__ == "__main__":
    entry_point()
