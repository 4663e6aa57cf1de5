"""The pretraining-data job as a library: its config, the pipeline, the run.

`python -m pipeline.create_pretraining_data` is its command line; tests and
other code call `run()` and `build_pretraining_data()` from here (importing
this module defines no flags).
"""

import dataclasses
import errno
import json
import os
import posixpath
import re
import sys
import tempfile
import time
import traceback
from typing import List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import beam_stages, clean_stages, objects
from pipeline.cleaning import CleaningConfig
from pipeline.console import LOG_FILE, PROGRESS_DIR, JobConsole, ProgressPrinter
from pipeline.inputs import UsageError, check_output_dir, match_inputs, plan_work
from pipeline.instances import InstanceConfig
from pipeline.interrupts import Interrupted, JobStopped, StopSignals, stop_child_processes
from pipeline.masking import MaskingConfig
from pipeline.runners import close_dask_client, dask_partitions
from pipeline.tokenization import BertTokenizer, VocabError, load_vocab
from tfrecords.features import FeatureSpecError, spec_from_lengths
from tfrecords.generation import (DEFAULT_MASKED_LM_PROB, DEFAULT_MAX_PREDICTIONS_PER_SEQ,
                                  DEFAULT_MAX_SEQ_LENGTH, Generation)
from tfrecords.lock import LockError, OutputLock
from tfrecords.metadata import COMPLETED_FILE, VOCAB_FILE, finalize_dataset


@dataclasses.dataclass(frozen=True)
class PretrainingDataConfig:
    """Every parameter of a dataset (written to info.json's `generation`)."""

    input_file: Sequence[str]
    input_format: str
    vocab_file: str
    output_dir: str
    text_field: str = "text"
    do_lower_case: bool = True
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    max_predictions_per_seq: int = DEFAULT_MAX_PREDICTIONS_PER_SEQ
    masked_lm_prob: float = DEFAULT_MASKED_LM_PROB
    dupe_factor: int = 10
    short_seq_prob: float = 0.1
    target_length_draw: str = "per_document"
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
    cleaning: CleaningConfig = CleaningConfig()

    def instance_config(self) -> InstanceConfig:
        return InstanceConfig(
            max_seq_length=self.max_seq_length, short_seq_prob=self.short_seq_prob,
            next_sentence_prediction=self.next_sentence_prediction, masking=self.masking,
            packing=self.packing, target_length_draw=self.target_length_draw,
            masked=MaskingConfig(self.masked_lm_prob, self.max_predictions_per_seq,
                                 self.do_whole_word_mask, self.max_ngram_size or 0))

    def generation(self) -> Generation:
        """info.json's block: the typed contract, every other parameter in its details."""
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
        return Generation.from_dict(out)


def build_pretraining_data(root, *, files: List[Tuple[str, int, str]], staging: str,
                           config: PretrainingDataConfig,
                           cleaner: Optional[clean_stages.Cleaner] = None):
    """Adds the job to a pipeline; returns a PCollection of one {stats, manifest}.

    Args:
        root: the pipeline (or TestPipeline) root.
        files: the input files, their sizes and formats, in a fixed order.
        staging: the directory shards and pieces are written to.
        config: all generation parameters.
        cleaner: applies a cleaning decision (clean_stages.run_decision) as documents
            are read; the eval split is then drawn from the kept documents.

    Example:
        >>> with beam.Pipeline() as p:  # doctest: +SKIP
        ...     summary = build_pretraining_data(p, files=files, staging=d, config=cfg)
    """
    plan = beam_stages.make_shard_plan(config.eval_fraction, config.num_shards,
                                       config.num_eval_shards)
    read = root | "ReadCorpus" >> beam_stages.ReadCorpus(
        plan_work(files, config.input_split_mb, config.books_per_item), config.text_field,
        config.random_seed,
        config.eval_fraction, config.bucket_size, config.open_buckets, staging, cleaner)
    created = (
        read
        | "Buckets" >> beam_stages.Select(beam_stages.BUCKET)
        | "CreateInstances" >> beam.ParDo(beam_stages.CreateInstancesFn(config, staging, plan))
    )
    manifest = (created
                | "Pieces" >> beam_stages.Select(beam_stages.PIECE)
                | "MergeShards" >> beam_stages.MergeShards(staging, plan, config.gzip))
    return (
        (read | "ReadStats" >> beam.Filter(lambda e: e[0] in (beam_stages.STATS,
                                                               beam_stages.SAMPLE)),
         created | "CreateStats" >> beam.Filter(lambda e: e[0] == beam_stages.STATS),
         manifest | "TagShards" >> beam.Map(lambda e: (beam_stages.SHARD, e)))
        | "FlattenSummary" >> beam.Flatten()
        | "Summarize" >> beam_stages.Summarize()
    )


def run(config: PretrainingDataConfig, beam_args: Optional[List[str]] = None,
        verbose: bool = True) -> dict:
    """Runs the job end to end: checks, lock, pipeline, staged swap into place.

    One writer per output directory (`OUTPUT.lock`, tfrecords/lock.py). The
    dataset is made whole in `OUTPUT.staging` (shards, vocab.txt, info.json,
    COMPLETED), and only then swapped in: the old dataset is moved aside to
    `OUTPUT.replaced`, the staging directory renamed into place, the old one
    deleted. A kill at any moment leaves a complete dataset: the old one, the
    new one, or (between the two renames) both, under `.replaced` and
    `.staging`; the next run puts `.replaced` back before it starts.

    With verbose=False (the command line's default), the job prints only its
    own lines and everything else on stderr goes to `pipeline.log` in the
    staging directory (pipeline/console.py).

    Returns the info.json dict written.
    """
    output_dir = config.output_dir.rstrip("/")
    # The job's own file operations (inputs, the lock, staging, the swap) with the job's
    # options (a project, credentials, --no_auth), as its workers' are.
    FileSystems.set_options(PipelineOptions(list(beam_args or [])))
    files = match_inputs(config.input_file, config.input_format)
    try:
        vocab = load_vocab(config.vocab_file)
        BertTokenizer(vocab, config.do_lower_case, source=config.vocab_file)
    except VocabError as e:
        raise UsageError(str(e)) from None
    if config.target_length_draw not in ("per_document", "per_instance"):
        raise UsageError("--target_length_draw must be per_document or per_instance, got "
                         f"{config.target_length_draw!r}")
    problem = config.cleaning.check()
    if problem:
        raise UsageError(problem)
    if config.packing and config.next_sentence_prediction:
        raise UsageError("--packing puts several documents in one segment: it needs "
                         "--nonext_sentence_prediction")
    try:
        spec = spec_from_lengths(config.max_seq_length, config.max_predictions_per_seq,
                                 masking=config.masking,
                                 next_sentence=config.next_sentence_prediction,
                                 packed=config.packing)
    except FeatureSpecError as e:
        raise UsageError(str(e)) from None
    try:
        # Signals first: a second SIGTERM must not cut the lock's release short.
        with StopSignals() as signals, OutputLock(output_dir, objects=objects.BeamObjects()):
            return _run_locked(config, beam_args, output_dir, files, spec, verbose, signals)
    except LockError as e:
        raise UsageError(str(e)) from None


def _settings_line(config: PretrainingDataConfig, options: PipelineOptions) -> str:
    c = config
    nsp = "NSP pairs" if c.next_sentence_prediction else (
        "packed single segments" if c.packing else "single segments")
    all_options = options.get_all_options()
    runner = (all_options.get("runner") or "DirectRunner").rsplit(".", 1)[-1]
    if runner == "FnApiRunner":
        runner = (f"DirectRunner ({all_options.get('direct_running_mode')}, "
                  f"{all_options.get('direct_num_workers')} worker(s))")
    elif runner == "DaskRunner":
        where = all_options.get("address") or (
            f"scheduler file {all_options['scheduler_file']}"
            if all_options.get("scheduler_file") else "local cluster")
        runner += f" ({where})"
    return (f"settings: {nsp}, max_seq_length {c.max_seq_length}, masking {c.masking} "
            f"({c.masked_lm_prob} up to {c.max_predictions_per_seq}"
            f"{', whole words' if c.do_whole_word_mask else ''}), dupe_factor {c.dupe_factor}, "
            f"short_seq_prob {c.short_seq_prob} drawn {c.target_length_draw.replace('_', ' ')}, "
            f"seed {c.random_seed}, {c.num_shards} shard(s)"
            f"{f', eval_fraction {c.eval_fraction}' if c.eval_fraction else ''}"
            f"{f'; cleaning: {c.cleaning.describe()}' if c.cleaning.enabled else ''}; "
            f"runner {runner}")


def failure_line(error: BaseException) -> str:
    """One line for a failed pipeline: the record a worker failed on, when it said so."""
    text = str(error)
    found = re.search(r"<<record: (.*?)>>", text, re.S)
    if found:
        return "failed on " + " ".join(found.group(1).split())
    last = [line for line in text.strip().splitlines() if line.strip()]
    return f"the pipeline failed: {last[-1].strip() if last else type(error).__name__}"


def _run_locked(config, beam_args, output_dir, files, spec, verbose=True,
                signals: Optional[StopSignals] = None) -> dict:
    signals = signals or StopSignals()
    staging, replaced = output_dir + ".staging", output_dir + ".replaced"
    if (FileSystems.exists(posixpath.join(replaced, COMPLETED_FILE))
            and not FileSystems.exists(posixpath.join(output_dir, COMPLETED_FILE))):
        print(f"warning: restoring {output_dir} from {replaced} (a replacement was "
              "interrupted)", file=sys.stderr)
        objects.delete_tree(output_dir)
        objects.move_tree(replaced, output_dir)
    objects.delete_tree(replaced)
    complete = FileSystems.exists(posixpath.join(output_dir, COMPLETED_FILE))
    check_output_dir(output_dir, complete, config.overwrite, "dataset")
    objects.delete_tree(staging)
    FileSystems.mkdirs(staging)
    items = plan_work(files, config.input_split_mb, config.books_per_item)
    options = PipelineOptions(dask_partitions(beam_args or [], len(items)))
    formats = sorted({fmt for _, _, fmt in files})
    total_bytes = sum(size for _, size, _ in files)
    if verbose:
        log_path = None
    elif "://" in staging:  # staging on an object store: the log stays local
        log_path = os.path.join(tempfile.gettempdir(), f"create_pretraining_data-{os.getpid()}.log")
    else:
        log_path = os.path.join(staging, LOG_FILE)
    console = JobConsole(log_path)
    console.say(f"create_pretraining_data: {len(files)} input file(s) ({', '.join(formats)}, "
                f"{total_bytes / 1e6:,.1f} MB, {len(items)} work item(s)) -> {output_dir}")
    console.say(_settings_line(config, options))
    if console.log_path:
        console.say(f"log: {console.log_path} (--verbose prints it here instead)")
    start = time.time()
    progress = ProgressPrinter(console, staging, total_bytes)
    decision, cleaner, cleaning_seconds = None, None, 0.0
    try:
        with console:
            root = beam.Pipeline(options=options)
            try:
                signals.armed = True  # from here a stop signal interrupts the job
                if signals.received:  # one came during the checks
                    raise Interrupted(signals.received)
                if config.cleaning.enabled:
                    decision, decision_path, cleaning_seconds = clean_stages.run_decision(
                        options, items, files, config.cleaning, config.text_field,
                        config.random_seed, config.eval_fraction, staging, console)
                    console.say(clean_stages.cleaning_line(decision["stats"],
                                                           cleaning_seconds))
                    cleaner = clean_stages.Cleaner(config.cleaning, decision_path)
                progress.start_time = time.time()
                progress.start()
                with root:
                    summary = build_pretraining_data(root, files=files, staging=staging,
                                                     config=config, cleaner=cleaner)
                    _ = summary | "WriteSummary" >> beam.Map(
                        lambda s: objects.write_text(posixpath.join(staging, "_summary.json"),
                                              json.dumps(s)))
            except BaseException:
                console.log(traceback.format_exc())
                raise
            finally:
                signals.armed = False
                progress.stop()
                finished = time.time()  # the job's time, not the Dask cluster's shutdown
                close_dask_client(getattr(root, "result", None))
    except (Interrupted, Exception) as e:
        if signals.received:  # or the workers died of the same signal (a process group's)
            stop_child_processes()  # before their output is deleted under them
            objects.delete_tree(staging, keep=LOG_FILE)
            log = f" (log: {console.log_path})" if console.log_path else ""
            raise JobStopped(f"{signals.received}: the job stopped before it finished; nothing "
                             f"was written to {output_dir}{log}; rerun the same command to "
                             "start over") from None
        # A full disk fails in every worker at once: one line, and what filled the disk
        # removed, instead of a traceback per worker.
        if "No space left on device" in str(e) or getattr(e, "errno", None) == errno.ENOSPC:
            objects.delete_tree(staging, keep=LOG_FILE)
            log = f"; log: {console.log_path}" if console.log_path else ""
            raise UsageError(f"no space left on the device of {staging} (what the job wrote "
                             f"there was removed{log}); free space or pass another "
                             "--output_dir") from None
        where = f"; log: {console.log_path}" if console.log_path else ""
        raise UsageError(failure_line(e) + where) from None
    elapsed = finished - start
    summary = objects.read_json(posixpath.join(staging, "_summary.json"))
    stats = summary["stats"]
    generation = config.generation()
    if decision is not None:
        stats, generation = _with_cleaning(stats, generation, decision, cleaning_seconds,
                                           config.cleaning)
        clean_stages.write_samples(posixpath.join(staging, clean_stages.SAMPLES_FILE),
                                   decision, summary["samples"], [p for p, _, _ in files])
    shards = {}
    for split, entry in summary["manifest"]:
        shards.setdefault(split, []).append(entry)
    stats["seconds"] = round(elapsed, 1)
    instances = sum(e["records"] for entries in shards.values() for e in entries)
    if not instances:
        skipped = stats.get("skipped_by_file") or {}
        objects.delete_tree(staging, keep=LOG_FILE)
        raise UsageError(
            f"no instance from {len(files)} input file(s) "
            f"({', '.join(path for path, _, _ in files[:3])}{', ...' if len(files) > 3 else ''}): "
            f"{stats.get('documents', 0)} document(s) read; skipped: "
            f"{json.dumps(skipped) if skipped else 'nothing'} (by file); {output_dir} was not "
            "written")
    # Make the dataset whole in staging (COMPLETED last), then swap it into place.
    for name in ("_pieces", "_summary.json", PROGRESS_DIR, "_cleaning"):
        objects.delete_tree(posixpath.join(staging, name))
    # read and written (Beam's copy cannot go from one file system to another: a local
    # vocabulary into a gs:// dataset)
    with FileSystems.create(posixpath.join(staging, VOCAB_FILE)) as f:
        f.write(objects.read_bytes(config.vocab_file))
    info = finalize_dataset(
        staging, spec=spec, generation=generation, stats=stats,
        shards={split: sorted(e, key=lambda x: x["file"]) for split, e in shards.items()},
        inputs=[f"{fmt}:{path}" for path, _, fmt in files],
        write_file=objects.write_text)
    if objects.tree_exists(output_dir):
        objects.move_tree(output_dir, replaced)
    objects.move_tree(staging, output_dir)
    objects.delete_tree(replaced)
    console.say(_summary_lines(stats, shards, output_dir, elapsed, console.log_path,
                               staging))
    if signals.received:
        console.say(f"{signals.received} came as the job finished: the dataset was completed "
                    "first")
    return info


def _with_cleaning(stats: dict, generation: Generation, decision: dict, seconds: float,
                   cleaning: CleaningConfig) -> tuple:
    """stats.json gets the cleaning counts (by reason, and by reason and file); info.json's
    generation block gets what was done and the eval split's decontamination."""
    stats = beam_stages.sum_stats([stats, decision["stats"]])
    stats["cleaning_seconds"] = round(seconds, 1)
    details = dict(generation.details)
    details["cleaning"] = dict(details["cleaning"], done=cleaning.describe())
    if decision["decontamination"]:
        details["decontamination"] = decision["decontamination"]
    return stats, dataclasses.replace(generation, details=details)


def _summary_lines(stats, shards, output_dir, elapsed, log_path, staging) -> str:
    instances = sum(e["records"] for entries in shards.values() for e in entries)
    splits = ", ".join(f"{split} {sum(e['records'] for e in entries):,}"
                       for split, entries in sorted(shards.items(), reverse=True))
    skipped = sum(v for k, v in stats.items() if k.startswith("skipped_") and
                  isinstance(v, int))
    lines = [
        f"wrote {instances:,} instances ({splits}) in "
        f"{sum(len(v) for v in shards.values())} shard(s) to {output_dir} in "
        f"{elapsed:.1f} s ({instances / max(elapsed, 1e-9):,.0f} instances/s)",
        f"from {stats.get('documents', 0):,} documents, {stats.get('sentences', 0):,} "
        f"sentences, {stats.get('tokens', 0):,} tokens; {skipped:,} record(s) skipped"
        f"{' (by reason and file in stats.json)' if skipped else ''}; "
        f"stats: {posixpath.join(output_dir, 'stats.json')}"]
    if log_path:
        lines.append("log: " + (posixpath.join(output_dir, LOG_FILE)
                                if log_path.startswith(staging) else log_path))
    return "\n".join(lines)


