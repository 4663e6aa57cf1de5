"""Deduplicated, filtered JSONL from raw corpora, on Apache Beam (the cleaning stage alone).

Usage:
    python -m pipeline.clean_corpus \\
        --input_file 'wikipedia:dump.xml.bz2,jsonl:leads.jsonl,books:plays/*.txt' \\
        --output_dir runs/clean [--dedup near|exact|none] [--quality_filter] [--gzip] \\
        [any Beam pipeline option]

The same input specs as create_pretraining_data, the same cleaning flags
(pipeline/cleaning.py; --dedup defaults to near here) and the same decision
(pipeline/clean_stages.py). DIR receives, when the job is whole:
    part-NNNNN-of-MMMMM.jsonl[.gz]  the kept documents, one {"text": ...} per line, in
                                    corpus order (one file per work item); paragraphs
                                    apart by a blank line
    removed_samples.jsonl           a sample of removed clusters, each with its kept member
    stats.json                      every count, by reason and by reason and file
    cleaning.json                   the settings, inputs and files; COMPLETED last
Any tool can read the result; so can create_pretraining_data (`jsonl:DIR/part-*`).
"""

import dataclasses
import json
import logging
import os
import posixpath
import sys
import time
import traceback
from typing import List, Optional, Sequence

logging.getLogger().addHandler(logging.NullHandler())  # as create_pretraining_data

import apache_beam as beam  # noqa: E402
from absl import app, flags  # noqa: E402
from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from pipeline import beam_stages, clean_stages, cleaning, objects  # noqa: E402
from pipeline.cleaning import CleaningConfig  # noqa: E402
from pipeline.interrupts import EXIT_INTERRUPTED  # noqa: E402
from pipeline.console import LOG_FILE, PROGRESS_DIR, JobConsole, ProgressPrinter  # noqa: E402
from pipeline import inputs  # noqa: E402
from pipeline.inputs import UsageError, check_output_dir, match_inputs, plan_work  # noqa: E402
from pipeline.pretraining_data import failure_line  # noqa: E402
from pipeline.runners import (check_beam_args, close_dask_client, dask_partitions,  # noqa: E402
                              default_beam_args)
from tfrecords.cli import fail, flags_parser  # noqa: E402
from tfrecords.lock import LockError, OutputLock  # noqa: E402
from tfrecords.metadata import COMPLETED_FILE  # noqa: E402

SETTINGS_FILE = "cleaning.json"


@dataclasses.dataclass(frozen=True)
class CleanCorpusConfig:
    input_file: Sequence[str]
    output_dir: str
    input_format: str = "sentences"
    text_field: str = "text"
    cleaning: CleaningConfig = CleaningConfig(dedup="near")
    input_split_mb: int = 1
    books_per_item: int = 16
    gzip: bool = False
    overwrite: bool = False


def run(config: CleanCorpusConfig, beam_args: Optional[List[str]] = None,
        verbose: bool = True) -> dict:
    """Cleans the inputs into config.output_dir; returns the stats written."""
    output_dir = config.output_dir.rstrip("/")
    FileSystems.set_options(PipelineOptions(list(beam_args or [])))
    files = match_inputs(config.input_file, config.input_format)
    problem = config.cleaning.check()
    if problem:
        raise UsageError(problem)
    try:
        with OutputLock(output_dir, objects=objects.BeamObjects()):
            return _run_locked(config, beam_args, output_dir, files, verbose)
    except LockError as e:
        raise UsageError(str(e)) from None


def _run_locked(config, beam_args, output_dir, files, verbose) -> dict:
    staging = output_dir + ".staging"
    complete = FileSystems.exists(posixpath.join(output_dir, COMPLETED_FILE))
    check_output_dir(output_dir, complete, config.overwrite, "cleaned corpus")
    objects.delete_tree(staging)
    FileSystems.mkdirs(staging)
    items = plan_work(files, config.input_split_mb, config.books_per_item)
    options = PipelineOptions(dask_partitions(beam_args or [], len(items)))
    console = JobConsole(None if verbose else os.path.join(staging, LOG_FILE)
                         if "://" not in staging else None)
    total_bytes = sum(size for _, size, _ in files)
    console.say(f"clean_corpus: {len(files)} input file(s) ({total_bytes / 1e6:,.1f} MB, "
                f"{len(items)} work item(s)) -> {output_dir}; {config.cleaning.describe()}")
    if console.log_path:
        console.say(f"log: {console.log_path} (--verbose prints it here instead)")
    start = time.time()
    summary_path = posixpath.join(staging, "_summary.json")
    try:
        with console:
            decision, decision_path, seconds = clean_stages.run_decision(
                options, items, files, config.cleaning, config.text_field, 0, 0.0, staging,
                console)
            console.say(clean_stages.cleaning_line(decision["stats"], seconds))
            cleaner = clean_stages.Cleaner(config.cleaning, decision_path)
            progress = ProgressPrinter(console, staging, total_bytes, label="writing",
                                       instances=False)
            progress.start()
            root = beam.Pipeline(options=options)
            try:
                with root:
                    _ = (root
                         | "ListWorkItems" >> beam.Create(list(enumerate(items)))
                         | "SpreadWorkItems" >> beam.Reshuffle()
                         | "WriteKept" >> beam.ParDo(clean_stages.WriteJsonlFn(
                             cleaner, config.text_field, staging, len(items), config.gzip))
                         | "KeyAll" >> beam.Map(lambda e: (None, e))
                         | "GroupAll" >> beam.GroupByKey()
                         | "Summary" >> beam.Map(_summary)
                         | "WriteSummary" >> beam.Map(
                             lambda s: objects.write_text(summary_path, json.dumps(s))))
            finally:
                progress.stop()
                close_dask_client(getattr(root, "result", None))
    except Exception as e:
        console.log(traceback.format_exc())
        where = f"; log: {console.log_path}" if console.log_path else ""
        raise UsageError(failure_line(e) + where) from None
    summary = objects.read_json(summary_path)
    stats = beam_stages.sum_stats([summary["stats"], decision["stats"]])
    stats["cleaning_seconds"] = round(seconds, 1)
    stats["seconds"] = round(time.time() - start, 1)
    if not stats.get("documents"):
        objects.delete_tree(staging, keep=LOG_FILE)
        raise UsageError(f"no document kept of {stats.get('cleaning_documents_read', 0)} read "
                         f"from {len(files)} input file(s); {output_dir} was not written "
                         f"(stats: {json.dumps(stats)})")
    paths = [p for p, _, _ in files]
    clean_stages.write_samples(posixpath.join(staging, clean_stages.SAMPLES_FILE), decision,
                               summary["samples"], paths)
    for name in ("_summary.json", PROGRESS_DIR, "_cleaning"):
        objects.delete_tree(posixpath.join(staging, name))
    objects.write_text(posixpath.join(staging, "stats.json"),
                       json.dumps(stats, indent=2, sort_keys=True) + "\n")
    objects.write_text(posixpath.join(staging, SETTINGS_FILE), json.dumps({
        "cleaning": dataclasses.asdict(config.cleaning), "done": config.cleaning.describe(),
        "inputs": [f"{fmt}:{path}" for path, _, fmt in files], "text_field": config.text_field,
        "files": summary["files"]}, indent=2) + "\n")
    objects.write_text(posixpath.join(staging, COMPLETED_FILE), "complete\n")
    replaced = output_dir + ".replaced"
    objects.delete_tree(replaced)
    if objects.tree_exists(output_dir):
        objects.move_tree(output_dir, replaced)
    objects.move_tree(staging, output_dir)
    objects.delete_tree(replaced)
    console.say(f"wrote {stats['documents']:,} documents in {len(summary['files'])} file(s) to "
                f"{output_dir} in {stats['seconds']:.1f} s; removed "
                f"{stats.get('removed_exact_duplicate', 0):,} exact and "
                f"{stats.get('removed_near_duplicate', 0):,} near duplicates, "
                f"{stats.get('removed_repeated_lines', 0):,} repeated lines; samples: "
                f"{posixpath.join(output_dir, clean_stages.SAMPLES_FILE)}")
    return stats


def _summary(grouped) -> dict:
    _, elements = grouped
    stats = beam_stages.sum_stats(v for kind, v in elements if kind == beam_stages.STATS)
    files = sorted(({"file": name, "documents": n} for kind, (name, n) in
                    ((k, v) for k, v in elements if k == clean_stages.WRITTEN)),
                   key=lambda e: e["file"])
    samples = {v[0]: v[1:] for kind, v in elements if kind == beam_stages.SAMPLE}
    return {"stats": stats, "files": files, "samples": samples}


FLAGS = flags.FLAGS
inputs.define_flags(flags)
flags.DEFINE_string("output_dir", None, "The directory to write the cleaned JSONL to.")
flags.DEFINE_integer("input_split_mb", 1,
                     "Uncompressed sentences/JSONL files are read in ranges of this many MB, "
                     "in parallel.", lower_bound=1, upper_bound=4096)
flags.DEFINE_integer("books_per_item", 16, "Book files read (and written) together.",
                     lower_bound=1)
flags.DEFINE_bool("gzip", False, "Write .jsonl.gz files.")
flags.DEFINE_bool("overwrite", False, "Replace an existing cleaned corpus.")
flags.DEFINE_bool("verbose", False,
                  "Print Beam's and its workers' logging on the console instead of into "
                  "pipeline.log.")
cleaning.define_flags(flags)


def main(argv):
    config = CleanCorpusConfig(
        input_file=tuple(FLAGS.input_file), output_dir=FLAGS.output_dir,
        input_format=FLAGS.input_format, text_field=FLAGS.text_field,
        cleaning=cleaning.from_flags(FLAGS, default_dedup="near"),
        input_split_mb=FLAGS.input_split_mb, books_per_item=FLAGS.books_per_item,
        gzip=FLAGS.gzip, overwrite=FLAGS.overwrite)
    try:
        check_beam_args(argv[1:], own_flags=list(FLAGS))
        run(config, default_beam_args(argv[1:]), verbose=FLAGS.verbose)
    except UsageError as e:
        fail("clean_corpus", e)
    except KeyboardInterrupt:
        print(f"stopped: interrupted before the job finished; nothing was written to "
              f"{config.output_dir} (rerun the same command to start over)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def entry_point():
    flags.mark_flags_as_required(["input_file", "output_dir"])
    app.run(main, flags_parser=flags_parser("clean_corpus", known_only=True))


if __name__ == "__main__":
    entry_point()
