"""Learns a WordPiece vocabulary in BERT's layout (see pipeline/vocab_learner.py).

Usage:
    python -m pipeline.build_vocab --input_file 'data/wiki_leads/*.jsonl' --input_format jsonl \\
        --vocab_size 30522 --do_lower_case --output_file vocab.txt [--sample_fraction 0.1]

A domain vocabulary for continued pretraining of a published model: its
vocabulary, [unused*] slots filled with the corpus's most useful words, ids
and size unchanged; OUTPUT's .replacements.json says what went where:
    python -m pipeline.build_vocab --input_file reviews.jsonl --input_format jsonl \\
        --base_vocab_file runs/minilm/vocab.txt --output_file domain_vocab.txt
"""

import json
import os
import sys
import time

from absl import app, flags
from apache_beam.io.filesystems import FileSystems

from pipeline import readers
from pipeline.inputs import UsageError, match_inputs
from pipeline.tokenization import VocabError, load_vocab
from pipeline.vocab_learner import build_vocab, domain_vocab
from tfrecords.cli import fail, flags_parser, no_arguments

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
flags.DEFINE_string("base_vocab_file", "", "A published model's vocab.txt: keep its ids and size, "
                    "fill its [unused*] slots with the corpus's most useful whole words (a domain "
                    "vocabulary for model.pretrain --init_checkpoint).")


def replacements_path(output_file: str) -> str:
    """domain_vocab.txt -> domain_vocab.replacements.json (what replaced which slot)."""
    return os.path.splitext(output_file)[0] + ".replacements.json"


def write_domain_vocab(files) -> int:
    for name in ("vocab_size", "num_unused"):
        if FLAGS[name].present:
            raise UsageError(f"--{name} does not apply with --base_vocab_file (the base "
                             "vocabulary's ids and size are kept)")
    try:
        base = load_vocab(FLAGS.base_vocab_file)
    except VocabError as e:
        raise UsageError(str(e)) from None
    cased = sum(1 for t in base if t != t.lower() and not t.startswith("["))
    if FLAGS.do_lower_case and cased > len(base) // 100:
        print(f"warning: {FLAGS.base_vocab_file} holds {cased:,} tokens with capitals (a cased "
              "vocabulary?) but --do_lower_case is set: pass --nodo_lower_case for a cased model",
              file=sys.stderr)
    start = time.time()
    tokens, filled = domain_vocab(files, base, input_format=FLAGS.input_format,
                                  do_lower_case=FLAGS.do_lower_case,
                                  min_frequency=FLAGS.min_frequency,
                                  text_field=FLAGS.text_field,
                                  sample_fraction=FLAGS.sample_fraction)
    with FileSystems.create(FLAGS.output_file) as f:
        f.write(("\n".join(tokens) + "\n").encode("utf-8"))
    record = {"base_vocab_file": FLAGS.base_vocab_file, "input_file": FLAGS.input_file,
              "do_lower_case": FLAGS.do_lower_case, "min_frequency": FLAGS.min_frequency,
              "usefulness": "count x (pieces - 1)", "replaced": filled}
    with FileSystems.create(replacements_path(FLAGS.output_file)) as f:
        f.write(json.dumps(record, indent=1, ensure_ascii=False).encode("utf-8"))
    shown = ", ".join(f"{r['slot']}={r['word']}" for r in filled[:5])
    print(f"Wrote {FLAGS.output_file} ({len(tokens):,} tokens, {len(filled):,} domain words: "
          f"{shown}{' ...' if len(filled) > 5 else ''}) and "
          f"{replacements_path(FLAGS.output_file)} in {time.time() - start:.1f} s",
          file=sys.stderr)
    return 0


def main(argv):
    no_arguments(argv, "build_vocab")
    try:
        files = [f"{fmt}:{path}" for path, _, fmt in match_inputs(FLAGS.input_file,
                                                                    FLAGS.input_format)]
        if FLAGS.base_vocab_file:
            return write_domain_vocab(files)
        start = time.time()
        tokens = build_vocab(files, input_format=FLAGS.input_format, vocab_size=FLAGS.vocab_size,
                             do_lower_case=FLAGS.do_lower_case, num_unused=FLAGS.num_unused,
                             min_frequency=FLAGS.min_frequency, text_field=FLAGS.text_field,
                             sample_fraction=FLAGS.sample_fraction)
    except UsageError as e:
        fail("build_vocab", e)
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
    app.run(main, flags_parser=flags_parser("build_vocab"))


if __name__ == "__main__":
    entry_point()
