"""Masked, sentence-paired BERT pretraining data from raw corpora, on Apache Beam.

Usage:
    python -m pipeline.create_pretraining_data \\
        --input_file 'data/wikipedia/*.xml.bz2' --input_format wikipedia \\
        --vocab_file data/vocab/uncased_vocab.txt --output_dir runs/wiki_dataset \\
        [google-research/bert's flags] [any Beam pipeline option]

google-research/bert's flag names and defaults (booleans take --no...), plus
--max_ngram_size, --num_shards, --masking static|dynamic,
--[no]next_sentence_prediction, --packing, --bucket_size, --eval_fraction, --gzip,
--overwrite, --target_length_draw, --verbose, and the cleaning flags (--dedup
exact|near, --quality_filter and their settings; pipeline/cleaning.py). Flags this module does not know go to Beam's PipelineOptions
(--runner, --direct_num_workers, --setup_file, Dataflow/Flink/Spark options).
Without --runner, the DirectRunner runs in multi-processing mode on every core.

The dataset is written to <output_dir>.staging and moved into place when
whole; COMPLETED is written last. The console shows the job's own lines
(settings, progress every 10 s, summary, or one error line); Beam's,
TensorFlow's and the workers' logging goes to pipeline.log in the staging
directory (so in the dataset when done); --verbose shows it instead.
--runner DaskRunner [--dask_client_address tcp://HOST:PORT] runs on a Dask
cluster (a local one on every core without an address).
"""

import dataclasses
import logging
import sys

# Importing Beam logs a warning about optional GCP libraries through the root logger,
# which configures itself to print it; a handler on the root logger keeps that quiet
# (Beam's and absl's logging is written to the job's log file, or shown with --verbose).
logging.getLogger().addHandler(logging.NullHandler())

from absl import app, flags  # noqa: E402

from pipeline import cleaning, inputs  # noqa: E402
from pipeline.interrupts import EXIT_INTERRUPTED, JobStopped  # noqa: E402
from pipeline.inputs import UsageError  # noqa: E402
from pipeline.pretraining_data import PretrainingDataConfig, run  # noqa: E402
from pipeline.runners import check_beam_args, default_beam_args  # noqa: E402
from tfrecords.cli import fail, flags_parser  # noqa: E402
from tfrecords.features import MAX_SEQ_LENGTH  # noqa: E402
from tfrecords.generation import (DEFAULT_MASKED_LM_PROB,  # noqa: E402
                                  DEFAULT_MAX_PREDICTIONS_PER_SEQ, DEFAULT_MAX_SEQ_LENGTH)

FLAGS = flags.FLAGS
inputs.define_flags(flags)
flags.DEFINE_string("vocab_file", None, "WordPiece vocab.txt (BERT layout).")
flags.DEFINE_string("output_dir", None, "The dataset directory to write.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case (and strip accents) for uncased vocabularies.")
flags.DEFINE_integer("max_seq_length", DEFAULT_MAX_SEQ_LENGTH, "Maximum sequence length.", lower_bound=8,
                     upper_bound=MAX_SEQ_LENGTH)
flags.DEFINE_integer("max_predictions_per_seq", DEFAULT_MAX_PREDICTIONS_PER_SEQ, "Maximum masked tokens per sequence.",
                     lower_bound=1, upper_bound=MAX_SEQ_LENGTH)
flags.DEFINE_float("masked_lm_prob", DEFAULT_MASKED_LM_PROB, "Masked LM probability.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_integer("dupe_factor", 10, "Passes over the data, each with new masks.",
                     lower_bound=1, upper_bound=1000)
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter target length.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_enum("target_length_draw", "per_document", ["per_document", "per_instance"],
                  "When the target length (short with --short_seq_prob) is drawn: once per "
                  "document and pass, as google-research/bert does, or again after every "
                  "instance (fewer short sequences on long documents).")
flags.DEFINE_integer("random_seed", 12345, "Seed every random choice derives from.")
flags.DEFINE_bool("do_whole_word_mask", False, "Mask whole words, not single WordPieces.")
flags.DEFINE_integer("max_ngram_size", None, "Mask spans of up to this many whole words.",
                     lower_bound=1)
flags.DEFINE_integer("num_shards", 16, "Training shards to write.", lower_bound=1,
                     upper_bound=100_000)
flags.DEFINE_enum("masking", "static", ["static", "dynamic"],
                  "static: masks written to the records; dynamic: masked at training time.")
flags.DEFINE_bool("next_sentence_prediction", True,
                  "Sentence pairs with NSP labels; --nonext_sentence_prediction packs "
                  "full sentences into one segment (RoBERTa-style).")
flags.DEFINE_bool("packing", False,
                  "With --nonext_sentence_prediction: fill every sequence to max_seq_length "
                  "with consecutive text across document boundaries ([SEP] between documents; "
                  "a document_ids feature), RoBERTa's FULL-SENTENCES: almost no padding.")
flags.DEFINE_integer("bucket_size", 2000,
                     "Documents per random bucket; NSP negatives come from the same bucket.",
                     lower_bound=2, upper_bound=1_000_000)
flags.DEFINE_integer("open_buckets", 4,
                     "Buckets filled at once while reading; a bucket samples a window of "
                     "open_buckets x bucket_size documents.", lower_bound=1,
                     upper_bound=1024)
flags.DEFINE_integer("input_split_mb", 1,
                     "Uncompressed sentences/JSONL files are read in ranges of this many MB, "
                     "in parallel.", lower_bound=1, upper_bound=4096)
flags.DEFINE_integer("books_per_item", 16,
                     "Book files (one document each) read together by one worker, so a "
                     "bucket holds several books to draw NSP negatives from.", lower_bound=1,
                     upper_bound=100_000)
flags.DEFINE_float("eval_fraction", 0.0, "Fraction of documents held out as the eval split.",
                   lower_bound=0.0, upper_bound=0.5)
flags.DEFINE_integer("num_eval_shards", 1, "Eval shards to write.", lower_bound=1,
                     upper_bound=100_000)
flags.DEFINE_bool("gzip", False, "Write .tfrecord.gz shards.")
flags.DEFINE_bool("overwrite", False, "Replace an existing complete dataset.")
cleaning.define_flags(flags)
flags.DEFINE_bool("verbose", False,
                  "Print Beam's, its workers' and TensorFlow's logging on the console instead "
                  "of into pipeline.log in the output directory.")


def main(argv):
    # Every config field has a flag of the same name (tests check it).
    values = {f.name: FLAGS[f.name].value for f in dataclasses.fields(PretrainingDataConfig)
              if f.name != "cleaning"}
    values["cleaning"] = cleaning.from_flags(FLAGS, default_dedup="none")
    values["input_file"] = tuple(values["input_file"])
    values["max_ngram_size"] = values["max_ngram_size"] or 0
    config = PretrainingDataConfig(**values)
    try:
        check_beam_args(argv[1:], own_flags=list(FLAGS))
        run(config, default_beam_args(argv[1:]), verbose=FLAGS.verbose)
    except UsageError as e:
        fail("create_pretraining_data", e)
    except JobStopped as e:
        print(f"stopped: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def entry_point():
    """Console-script entry point (`bert-create-pretraining-data`)."""
    flags.mark_flags_as_required(['input_file', 'vocab_file', 'output_dir'])
    app.run(main, flags_parser=flags_parser("create_pretraining_data", known_only=True))


if __name__ == "__main__":
    entry_point()
