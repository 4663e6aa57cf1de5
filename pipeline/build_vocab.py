"""Learns a WordPiece vocabulary in BERT's layout (see pipeline/vocab_learner.py).

Usage:
    python -m pipeline.build_vocab --input_file 'data/wiki_leads/*.jsonl' --input_format jsonl \\
        --vocab_size 30522 --do_lower_case --output_file vocab.txt [--sample_fraction 0.1]
"""

import sys
import time

from absl import app, flags
from apache_beam.io.filesystems import FileSystems

from pipeline import readers
from pipeline.pretraining_data import UsageError, match_inputs
from pipeline.vocab_learner import build_vocab

FLAGS = flags.FLAGS
flags.DEFINE_list("input_file", None, "Comma-separated input files or globs.")
flags.DEFINE_enum("input_format", "sentences", list(readers.FORMATS), "Input layout.")
flags.DEFINE_string("text_field", "text", "JSONL field holding a document's text.")
flags.DEFINE_integer("vocab_size", 30522, "Entries in the vocabulary, special tokens included.",
                     lower_bound=110)
flags.DEFINE_bool("do_lower_case", True, "Learn an uncased vocabulary.")
flags.DEFINE_integer("num_unused", 99, "[unusedN] placeholders after [PAD] (BERT has 99).",
                     lower_bound=0)
flags.DEFINE_integer("min_frequency", 2, "Least count for a learned piece.", lower_bound=1)
flags.DEFINE_float("sample_fraction", 1.0, "Fraction of documents to learn from.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_string("output_file", None, "Where to write vocab.txt.")


def main(argv):
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        files = [f"{fmt}:{path}" for path, _, fmt in match_inputs(FLAGS.input_file,
                                                                    FLAGS.input_format)]
        start = time.time()
        tokens = build_vocab(files, input_format=FLAGS.input_format, vocab_size=FLAGS.vocab_size,
                             do_lower_case=FLAGS.do_lower_case, num_unused=FLAGS.num_unused,
                             min_frequency=FLAGS.min_frequency, text_field=FLAGS.text_field,
                             sample_fraction=FLAGS.sample_fraction)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    with FileSystems.create(FLAGS.output_file) as f:
        f.write(("\n".join(tokens) + "\n").encode("utf-8"))
    print(f"Wrote {FLAGS.output_file} ({len(tokens):,} tokens) in {time.time() - start:.1f} s",
          file=sys.stderr)
    if len(tokens) < FLAGS.vocab_size:
        print(f"note: the corpus gave only {len(tokens):,} of {FLAGS.vocab_size:,} entries "
              "(lower --min_frequency or add text)", file=sys.stderr)
    return 0


def entry_point():
    """Console-script entry point (`bert-build-vocab`)."""
    flags.mark_flags_as_required(['input_file', 'output_file'])
    app.run(main)


if __name__ == "__main__":
    entry_point()
