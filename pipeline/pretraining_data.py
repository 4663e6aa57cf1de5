"""The pretraining-data job as a library: config, input matching, the pipeline, the run.

`python -m pipeline.create_pretraining_data` is its command line; tests and
other code call `run()` and `build_pretraining_data()` from here (importing
this module defines no flags).
"""

import dataclasses
import json
import os
import posixpath
import sys
import time
from typing import List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import beam_stages, readers
from pipeline.instances import InstanceConfig
from pipeline.masking import MaskingConfig
from pipeline.tokenization import BertTokenizer, VocabError, load_vocab
from tfrecords.features import spec_from_lengths
from tfrecords.metadata import COMPLETED_FILE, VOCAB_FILE, finalize_dataset

DEFAULT_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"


class UsageError(Exception):
    """A flag or input a user can fix; printed as one line."""


@dataclasses.dataclass(frozen=True)
class PretrainingDataConfig:
    """Every parameter of a dataset (written to info.json's `generation`)."""

    input_file: Sequence[str]
    input_format: str
    vocab_file: str
    output_dir: str
    text_field: str = "text"
    do_lower_case: bool = True
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    dupe_factor: int = 10
    short_seq_prob: float = 0.1
    random_seed: int = 12345
    do_whole_word_mask: bool = False
    max_ngram_size: int = 0
    num_shards: int = 16
    masking: str = "static"
    next_sentence_prediction: bool = True
    packing: bool = False
    bucket_size: int = 2000
    open_buckets: int = 4
    input_split_mb: int = 1
    books_per_item: int = 16
    eval_fraction: float = 0.0
    num_eval_shards: int = 1
    gzip: bool = False
    overwrite: bool = False

    def instance_config(self) -> InstanceConfig:
        return InstanceConfig(
            max_seq_length=self.max_seq_length, short_seq_prob=self.short_seq_prob,
            next_sentence_prediction=self.next_sentence_prediction, masking=self.masking,
            packing=self.packing,
            masked=MaskingConfig(self.masked_lm_prob, self.max_predictions_per_seq,
                                 self.do_whole_word_mask, self.max_ngram_size or 0))

    def generation(self) -> dict:
        out = dataclasses.asdict(self)
        for key in ("input_file", "output_dir", "overwrite"):
            out.pop(key)
        out["bucketing"] = (
            f"as each input range is read, its documents are dealt at random into "
            f"{self.open_buckets} open buckets of {self.bucket_size}; NSP negatives are drawn "
            "from the document's bucket (a random sample of a window of about "
            f"{self.open_buckets * self.bucket_size} consecutive documents), standing in for "
            "the reference's whole-corpus draw")
        if self.packing:
            out["layout"] = (
                "packed: each bucket's documents are one stream, a [SEP] after each "
                "document, cut into sequences of exactly max_seq_length ([CLS] first) that "
                "cross document boundaries; document_ids numbers the document pieces of a "
                "sequence 1, 2, ... (0 on padding); only a pass's last sequence is short; "
                "passes after the first start at a random offset; short_seq_prob is unused")
        return out


def parse_input(pattern: str, default_format: str) -> Tuple[str, str]:
    """"FORMAT:pattern" -> (format, pattern); a bare pattern takes default_format.

    Example:
        >>> parse_input("books:data/plays/*.txt", "sentences"), parse_input("gs://b/x", "jsonl")
        (('books', 'data/plays/*.txt'), ('jsonl', 'gs://b/x'))
    """
    prefix, sep, rest = pattern.partition(":")
    if sep and prefix in readers.FORMATS:
        return prefix, rest
    return default_format, pattern


def match_inputs(patterns: Sequence[str], default_format: str = "sentences"
                 ) -> List[Tuple[str, int, str]]:
    """(path, size, format) of every file the patterns match, sorted per pattern.

    The order fixes document keys, so it must not depend on the file system's listing.
    """
    parsed = [parse_input(p, default_format) for p in patterns]
    files = []
    for (fmt, pattern), result in zip(parsed, FileSystems.match([p for _, p in parsed])):
        matched = sorted((m.path, m.size_in_bytes, fmt) for m in result.metadata_list)
        if not matched:
            raise UsageError(f"--input_file: no files match {pattern!r}")
        files.extend(matched)
    return files


def plan_work(files: Sequence[Tuple[str, int, str]], split_mb: int,
              books_per_item: int) -> List[List[tuple]]:
    """Work items: lists of (file index, path, start, end, format) read by one worker.

    Splittable files are cut in byte ranges of split_mb, one item each;
    wikipedia files are one item each; book files (one document each) are
    grouped books_per_item to an item, so that a bucket holds several books
    for NSP negatives to come from.
    """
    items: List[List[tuple]] = []
    books: List[tuple] = []
    for index, (path, size, fmt) in enumerate(files):
        for start, end in readers.plan_ranges(path, size, fmt, split_mb << 20):
            if fmt == "books":
                books.append((index, path, start, end, fmt))
                if len(books) == books_per_item:
                    items.append(books)
                    books = []
            else:
                items.append([(index, path, start, end, fmt)])
    if books:
        items.append(books)
    return items


def build_pretraining_data(root, *, files: List[Tuple[str, int, str]], staging: str,
                           config: PretrainingDataConfig):
    """Adds the job to a pipeline; returns (stats, manifest) PCollections.

    Args:
        root: the pipeline (or TestPipeline) root.
        files: the input files, their sizes and formats, in a fixed order.
        staging: the directory shards and pieces are written to.
        config: all generation parameters.

    Example:
        >>> with beam.Pipeline() as p:  # doctest: +SKIP
        ...     stats, manifest = build_pretraining_data(p, files=files, staging=d, config=cfg)
    """
    plan = beam_stages.make_shard_plan(config.eval_fraction, config.num_shards,
                                       config.num_eval_shards)
    read = root | "ReadCorpus" >> beam_stages.ReadCorpus(
        plan_work(files, config.input_split_mb, config.books_per_item), config.text_field,
        config.random_seed,
        config.eval_fraction, config.bucket_size, config.open_buckets)
    created = (
        read.buckets
        | "CreateInstances" >> beam.ParDo(
            beam_stages.CreateInstancesFn(config, staging, plan)
        ).with_outputs(beam_stages.STATS, main="pieces")
    )
    manifest = created.pieces | "MergeShards" >> beam_stages.MergeShards(staging, plan, config.gzip)
    stats = (
        (read[beam_stages.STATS], created[beam_stages.STATS])
        | "FlattenStats" >> beam.Flatten()
        | "SumStats" >> beam.CombineGlobally(beam_stages.sum_stats)
    )
    return stats, manifest


def _write_text(path: str, text: str) -> None:
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


def _read_json(path: str):
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def _delete_tree(path: str) -> None:
    if FileSystems.exists(path):
        FileSystems.delete([path])


def run(config: PretrainingDataConfig, beam_args: Optional[List[str]] = None) -> dict:
    """Runs the job end to end: checks, pipeline, move into place, metadata.

    Returns the info.json dict written.
    """
    output_dir = config.output_dir.rstrip("/")
    if FileSystems.exists(posixpath.join(output_dir, COMPLETED_FILE)) and not config.overwrite:
        raise UsageError(f"{output_dir} already holds a complete dataset; pass --overwrite "
                         "to replace it")
    files = match_inputs(config.input_file, config.input_format)
    try:
        vocab = load_vocab(config.vocab_file)
        BertTokenizer(vocab, config.do_lower_case, source=config.vocab_file)
    except VocabError as e:
        raise UsageError(str(e)) from None
    if config.packing and config.next_sentence_prediction:
        raise UsageError("--packing puts several documents in one segment: it needs "
                         "--nonext_sentence_prediction")
    spec = spec_from_lengths(config.max_seq_length, config.max_predictions_per_seq,
                             masking=config.masking,
                             next_sentence=config.next_sentence_prediction,
                             packed=config.packing)
    staging = output_dir + ".staging"
    _delete_tree(staging)
    FileSystems.mkdirs(staging)
    options = PipelineOptions(beam_args or [])
    formats = sorted({fmt for _, _, fmt in files})
    print(f"Reading {len(files)} file(s) ({', '.join(formats)}) -> {output_dir}",
          file=sys.stderr, flush=True)
    start = time.time()
    with beam.Pipeline(options=options) as root:
        stats, manifest = build_pretraining_data(root, files=files, staging=staging, config=config)
        _ = stats | "WriteStats" >> beam.Map(
            lambda s: _write_text(posixpath.join(staging, "_stats.json"), json.dumps(s)))
        _ = (manifest
             | "CollectManifest" >> beam.combiners.ToList()
             | "WriteManifest" >> beam.Map(lambda m: _write_text(
                 posixpath.join(staging, "_manifest.json"), json.dumps(sorted(m, key=lambda e: (e[0], e[1]["file"]))))))
    elapsed = time.time() - start
    stats = _read_json(posixpath.join(staging, "_stats.json"))
    shards = {}
    for split, entry in _read_json(posixpath.join(staging, "_manifest.json")):
        shards.setdefault(split, []).append(entry)
    stats["seconds"] = round(elapsed, 1)
    # Move the whole staging directory into place, then write COMPLETED last.
    _delete_tree(posixpath.join(staging, "_pieces"))
    _delete_tree(output_dir)
    FileSystems.mkdirs(output_dir)
    names = [e["file"] for entries in shards.values() for e in entries]
    FileSystems.rename([posixpath.join(staging, n) for n in names],
                       [posixpath.join(output_dir, n) for n in names])
    FileSystems.copy([config.vocab_file], [posixpath.join(output_dir, VOCAB_FILE)])
    _delete_tree(staging)
    info = finalize_dataset(
        output_dir, spec=spec, generation=config.generation(), stats=stats,
        shards={split: sorted(e, key=lambda x: x["file"]) for split, e in shards.items()},
        inputs=[f"{fmt}:{path}" for path, _, fmt in files],
        write_file=_write_text)
    instances = sum(e["records"] for entries in shards.values() for e in entries)
    print(f"Wrote {instances:,} instances in {sum(len(v) for v in shards.values())} shard(s) "
          f"to {output_dir} in {elapsed:.1f} s ({instances / max(elapsed, 1e-9):,.0f} "
          f"instances/s); stats: {json.dumps(stats, sort_keys=True)}", file=sys.stderr)
    return info


def default_beam_args(beam_args: List[str]) -> List[str]:
    """Without --runner: the DirectRunner's batch engine, multi-processing on every core.

    That engine (FnApiRunner) is named directly: Beam 2.77's DirectRunner
    first tries to download its Prism runner from GitHub, which fails (with
    a confusing log) on machines without internet, then falls back to it.
    """
    if any(a.startswith("--runner") for a in beam_args):
        return beam_args
    out = list(beam_args) + [f"--runner={DEFAULT_RUNNER}"]
    if not any(a.startswith("--direct_running_mode") for a in beam_args):
        out.append("--direct_running_mode=multi_processing")
    if not any(a.startswith("--direct_num_workers") for a in beam_args):
        out.append(f"--direct_num_workers={os.cpu_count() or 1}")
    return out
