"""The Beam job: transforms on TestPipeline, end-to-end runs, determinism, bad inputs, interop."""

import bz2
import hashlib
import importlib.util
import json
import os

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline import beam_stages
from pipeline.inputs import UsageError
from pipeline.pretraining_data import PretrainingDataConfig, run
from pipeline.runners import DEFAULT_RUNNER, default_beam_args, usable_cpus
from tests.conftest import FIXTURES, ROOT, error_line, run_module, signal_at
from tfrecords.reader import make_dataset, open_source

CORPUS = FIXTURES / "corpus"
VOCAB = str(FIXTURES / "vocab.txt")
IN_MEMORY = [f"--runner={DEFAULT_RUNNER}", "--direct_running_mode=in_memory",
             "--direct_num_workers=1"]


def config(tmp_path, **overrides):
    base = dict(input_file=(str(CORPUS / "sentences.txt"),), input_format="sentences",
                vocab_file=VOCAB, output_dir=str(tmp_path / "ds"), max_seq_length=64,
                max_predictions_per_seq=10, dupe_factor=3, num_shards=2, bucket_size=2)
    base.update(overrides)
    return PretrainingDataConfig(**base)


def shard_digests(directory):
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in sorted(os.listdir(directory)) if ".tfrecord" in name}


# -- transforms on TestPipeline ------------------------------------------------

def test_read_corpus_transform_deals_documents_into_buckets(tmp_path):
    path = tmp_path / "three.txt"
    path.write_text("First doc.\n\nSecond doc, line one.\nLine two.\n\nThird.\n")
    with BeamTestPipeline() as p:
        read = p | beam_stages.ReadCorpus([[(0, str(path), 0, None, "sentences")]], "text", 1,
                                          0.0, bucket_size=10, open_buckets=2)
        # 3 documents, buckets of 10: one bucket at the end, documents in reading order,
        # each with its origin (file, ordinal, range start) for error messages
        assert_that(read | "Buckets" >> beam_stages.Select(beam_stages.BUCKET), equal_to([
            (("train", "000000-000000000000-000000"),
             [(["First doc."], True, (str(path), 0, 0)),
              (["Second doc, line one.", "Line two."], True, (str(path), 1, 0)),
              (["Third."], True, (str(path), 2, 0))]),
        ]), label="CheckBuckets")
        assert_that(read | "Stats" >> beam_stages.Select(beam_stages.STATS),
                    equal_to([{"work_items": 1}]), label="CheckStats")


def test_bucket_window_bounds_memory_and_keeps_every_document():
    import random

    window = beam_stages.BucketWindow(random.Random(3), bucket_size=10, open_buckets=4)
    out = [b for doc in range(95) for b in window.add(doc)]
    assert all(len(b) == 10 for b in out)
    assert sum(len(b) for b in window.buckets) <= 4 * 9  # never more than a window open
    out += list(window.flush())
    assert sorted(d for b in out for d in b) == list(range(95))
    assert max(len(b) for b in out) <= 20 and min(len(b) for b in out) >= 5


def test_create_instances_and_merge_shards_transforms(tmp_path):
    cfg = config(tmp_path, dupe_factor=2)
    docs = [(["The river starts high in the northern hills.", "It runs south."], True,
             ("river.txt", 0, 0)),
            (["Bread is made from flour.", "The dough is kneaded.", "Many bakers start."], True,
             ("bread.txt", 0, 0))]
    staging = str(tmp_path / "staging")
    plan = {"train": 2}
    with BeamTestPipeline() as p:
        created = (p | beam.Create([(("train", "b0"), docs)])
                   | beam.ParDo(beam_stages.CreateInstancesFn(cfg, staging, plan)))
        manifest = (created | "Pieces" >> beam_stages.Select(beam_stages.PIECE)
                    | beam_stages.MergeShards(staging, plan, compress=False))
        counts = (manifest | beam.Map(lambda kv: kv[1]["records"])
                  | beam.CombineGlobally(sum))
        instances = (created | "Stats" >> beam_stages.Select(beam_stages.STATS)
                     | beam.Map(lambda s: s["instances"]))
        # every instance the bucket made is in exactly one shard
        agree = ((counts, instances) | beam.Flatten() | beam.combiners.ToList()
                 | beam.Map(lambda both: len(both) == 2 and both[0] == both[1] > 0))
        assert_that(agree, equal_to([True]))
    names = sorted(os.listdir(staging))
    assert names == ["_pieces", "_progress", "train-00000-of-00002.tfrecord",
                     "train-00001-of-00002.tfrecord"]


def test_seeds_are_derived_not_global():
    assert beam_stages.derive_seed(1, "bucket", "k") == beam_stages.derive_seed(1, "bucket", "k")
    assert beam_stages.derive_seed(1, "bucket", "k") != beam_stages.derive_seed(2, "bucket", "k")
    assert 0 <= beam_stages.unit_hash(5, "x") < 1


# -- whole job -------------------------------------------------------------------

def test_job_writes_a_complete_readable_dataset(tmp_path):
    info = run(config(tmp_path), IN_MEMORY)
    ds = tmp_path / "ds"
    assert sorted(os.listdir(ds)) == ["COMPLETED", "info.json", "stats.json",
                                      "train-00000-of-00002.tfrecord",
                                      "train-00001-of-00002.tfrecord", "vocab.txt"]
    assert not (tmp_path / "ds.staging").exists()
    stats = json.loads((ds / "stats.json").read_text())
    assert stats["documents"] == 4 and stats["sentences"] == 18  # the fixture, hand-counted
    assert stats["instances"] == sum(s["records"] for s in info["shards"]["train"])
    assert info["generation"]["dupe_factor"] == 3 and "bucketing" in info["generation"]
    batches = list(make_dataset(str(ds), global_batch_size=4, is_training=False))
    assert sum(int(b["input_ids"].shape[0]) for b in batches) == stats["instances"]
    assert batches[0]["input_ids"].shape[1] == 64 and batches[0]["masked_lm_ids"].shape[1] == 10


def test_one_dataset_from_several_formats(tmp_path):
    run(config(tmp_path, input_file=(f"wikipedia:{CORPUS / 'wiki.xml'}",
                                     f"books:{CORPUS / 'books' / '*.txt'}",
                                     str(CORPUS / "docs.jsonl")), input_format="jsonl"), IN_MEMORY)
    info = json.loads((tmp_path / "ds" / "info.json").read_text())
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert stats["documents"] == 2 + 2 + 3  # articles, books, JSONL lines (hand-counted)
    assert [i.split(":")[0] for i in info["inputs"]] == ["wikipedia", "books", "books", "jsonl"]


def test_books_are_grouped_so_negatives_come_from_other_books(tmp_path):
    from pipeline.inputs import plan_work

    files = [(f"b{i}.txt", 100, "books") for i in range(5)] + [("s.txt", 3 << 20, "sentences")]
    items = plan_work(files, split_mb=1, books_per_item=2)
    assert [[r[1] for r in item] for item in items] == [
        ["b0.txt", "b1.txt"], ["b2.txt", "b3.txt"], ["s.txt"], ["s.txt"], ["s.txt"], ["b4.txt"]]
    run(config(tmp_path, input_file=(str(CORPUS / "books" / "*.txt"),), input_format="books"),
        IN_MEMORY)
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert "nsp_negative_unavailable" not in stats and stats["nsp_random_next"] > 0


def test_existing_dataset_needs_overwrite(tmp_path):
    run(config(tmp_path), IN_MEMORY)
    with pytest.raises(UsageError, match="already holds a complete dataset; pass --overwrite"):
        run(config(tmp_path), IN_MEMORY)
    run(config(tmp_path, overwrite=True, dupe_factor=1), IN_MEMORY)
    assert json.loads((tmp_path / "ds" / "info.json").read_text())["generation"]["dupe_factor"] == 1


def test_variants_dynamic_no_nsp_gzip_eval_split(tmp_path):
    run(config(tmp_path, masking="dynamic", next_sentence_prediction=False, gzip=True,
               input_file=(str(CORPUS / "books" / "*.txt"),), input_format="books",
               eval_fraction=0.5, bucket_size=2000), IN_MEMORY)
    ds = tmp_path / "ds"
    info = json.loads((ds / "info.json").read_text())
    assert set(info["shards"]) == {"train", "eval"}
    assert all(s["file"].endswith(".tfrecord.gz") for s in info["shards"]["train"])
    source = open_source(str(ds))
    assert not source.spec.masked and not source.spec.next_sentence


@pytest.mark.multiprocess
def test_same_bytes_with_one_or_two_worker_processes(tmp_path):
    run(config(tmp_path / "a", output_dir=str(tmp_path / "a")), IN_MEMORY)
    run(config(tmp_path / "b", output_dir=str(tmp_path / "b")),
        [f"--runner={DEFAULT_RUNNER}", "--direct_running_mode=multi_processing",
         "--direct_num_workers=2"])
    a, b = shard_digests(tmp_path / "a"), shard_digests(tmp_path / "b")
    assert a == b and len(a) == 2
    other_seed = tmp_path / "c"
    run(config(tmp_path, output_dir=str(other_seed), random_seed=99), IN_MEMORY)
    assert shard_digests(other_seed) != a


def test_bad_inputs_are_counted_and_good_documents_kept(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.txt").write_bytes(
        b"A good first sentence here.\nAnd a second one.\n\n"
        b"Only one sentence in this document.\n\n"
        b"\xff\xfe broken bytes line.\nA fine line after it.\n\n"
        + b"huge " * 200_000 + b"\nThe end of the huge document.\n")
    xml = (CORPUS / "wiki.xml").read_bytes()
    (bad / "b.xml").write_bytes(xml.replace(b"<title>Bread</title>", b"<title>Br<ead</title>"))
    (bad / "c.xml.bz2").write_bytes(bz2.compress(xml)[:-30])
    run(config(tmp_path, input_file=(str(bad / "a.txt"),)), IN_MEMORY)
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert stats["skipped_invalid_utf8"] == 1
    # the third document loses its broken line and keeps one sentence, like the second
    assert stats["documents"] == 4 and stats["sentences"] == 6
    assert stats["one_sentence_documents"] == 2
    assert stats["long_sentences_truncated"] == 1
    run(config(tmp_path, input_file=(str(bad / "b.xml"), str(bad / "c.xml.bz2")),
               input_format="wikipedia", output_dir=str(tmp_path / "wiki")), IN_MEMORY)
    stats = json.loads((tmp_path / "wiki" / "stats.json").read_text())
    assert stats["skipped_malformed_page"] == 1 and stats["skipped_truncated_file"] == 1
    assert stats["documents"] == 1  # River Test from b.xml; Bread malformed; c.xml.bz2 cut


def test_cli_errors_are_one_line(tmp_path):
    proc = run_module("pipeline.create_pretraining_data", "--input_file", tmp_path / "nothing*.txt",
                      "--vocab_file", VOCAB, "--output_dir", tmp_path / "ds", check=False)
    assert proc.returncode == 1
    assert error_line(proc.stderr) == (f"create_pretraining_data: --input_file: no files match "
                                       f"'{tmp_path}/nothing*.txt'")
    proc = run_module("pipeline.create_pretraining_data", "--input_file", CORPUS / "sentences.txt",
                      "--vocab_file", tmp_path / "none.txt", "--output_dir", tmp_path / "ds",
                      check=False)
    assert proc.returncode == 1 and \
        error_line(proc.stderr).startswith("create_pretraining_data: cannot read vocabulary file")


def test_default_runner_is_multiprocess_direct():
    args = default_beam_args([])
    assert "--direct_running_mode=multi_processing" in args and f"--runner={DEFAULT_RUNNER}" in args
    assert default_beam_args(["--runner=DataflowRunner", "--project=x"]) == [
        "--runner=DataflowRunner", "--project=x"]
    # Beam has no short name for its DaskRunner; ours does, and gives Dask one bag
    # partition per work item unless told otherwise.
    from pipeline.runners import DASK_RUNNER, dask_partitions
    for given in (["--runner", "DaskRunner"], ["--runner=dask"]):
        assert default_beam_args(given) == [f"--runner={DASK_RUNNER}"]
    assert dask_partitions(["--runner", "DaskRunner"], 7)[-1] == "--dask_npartitions=7"
    assert dask_partitions(["--runner=DaskRunner", "--dask_npartitions=3"], 7) == [
        f"--runner={DASK_RUNNER}", "--dask_npartitions=3"]
    assert dask_partitions([f"--runner={DEFAULT_RUNNER}"], 7) == [f"--runner={DEFAULT_RUNNER}"]
    # The settings line names the cluster the job runs on, however it was given.
    import apache_beam.runners.dask.dask_runner  # noqa: F401  (registers DaskOptions)
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.pretraining_data import _settings_line
    config = PretrainingDataConfig(input_file=["x"], input_format="sentences",
                                   vocab_file="v", output_dir="o")
    for given, where in ((["--dask_scheduler_file=/s/sched.json"], "scheduler file /s/sched.json"),
                         (["--dask_client_address=tcp://h:8786"], "tcp://h:8786"),
                         ([], "local cluster")):
        options = PipelineOptions([f"--runner={DASK_RUNNER}", *given])
        assert _settings_line(config, options).endswith(f"runner DaskRunner ({where})")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_default_workers_are_the_cores_the_process_may_use():
    """One worker per core of the process's affinity (taskset, a container's cpuset), not
    per core of the machine: checked by pinning a fresh process to one core."""
    import subprocess
    import sys
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from pipeline.runners import default_beam_args; "
            "print([a for a in default_beam_args([]) if 'num_workers' in a][0])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout
    assert out.strip() == "--direct_num_workers=1"
    assert f"--direct_num_workers={len(os.sched_getaffinity(0))}" in default_beam_args([])


@pytest.mark.skipif(importlib.util.find_spec("official") is None,
                    reason="the peer reader (tf-models-official) is not installed")
def test_peer_reader_reads_our_output(tmp_path):
    from official.nlp.data import pretrain_dataloader

    run(config(tmp_path), IN_MEMORY)
    params = pretrain_dataloader.BertPretrainDataConfig(
        input_path=str(tmp_path / "ds" / "train-*"), global_batch_size=4, is_training=False,
        seq_length=64, max_predictions_per_seq=10)
    batch = next(iter(pretrain_dataloader.BertPretrainDataLoader(params).load()))
    assert batch["input_word_ids"].shape == (4, 64)
    assert batch["masked_lm_ids"].shape == (4, 10)
    assert set(batch["next_sentence_labels"].numpy().ravel()) <= {0, 1}


def test_packed_dataset_has_document_ids_and_other_readers_still_read_it(tmp_path):
    from official.nlp.data import pretrain_dataloader

    run(config(tmp_path, next_sentence_prediction=False, packing=True, bucket_size=2000,
               open_buckets=1, input_file=(f"sentences:{CORPUS / 'sentences.txt'}",
                           f"books:{CORPUS / 'books' / '*.txt'}")), IN_MEMORY)
    ds = tmp_path / "ds"
    info = json.loads((ds / "info.json").read_text())
    assert info["features"]["packed"] and "packed" in info["generation"]["layout"]
    source = open_source(str(ds))
    assert source.spec.packed and not source.spec.next_sentence
    records = list(make_dataset(str(ds), global_batch_size=1, is_training=False).unbatch())
    lengths = sorted(int(r["input_mask"].numpy().sum()) for r in records)
    # one stream per bucket (here one per input item) and pass: every sequence is full
    # but the last of each
    assert len([n for n in lengths if n < 64]) <= 2 * 3 and len(records) > 10
    for r in records:
        doc_ids, mask = r["document_ids"].numpy(), r["input_mask"].numpy()
        assert ((doc_ids > 0) == (mask > 0)).all() and doc_ids[0] == 1
        assert (0 <= doc_ids[1:][mask[1:] > 0] - doc_ids[:-1][mask[1:] > 0]).all()
    assert max(int(r["document_ids"].numpy().max()) for r in records) >= 2
    # Model Garden's reader asks for features by name: document_ids is simply not read.
    params = pretrain_dataloader.BertPretrainDataConfig(
        input_path=str(ds / "train-*"), global_batch_size=4, is_training=False, seq_length=64,
        max_predictions_per_seq=10, use_next_sentence_label=False)
    batch = next(iter(pretrain_dataloader.BertPretrainDataLoader(params).load()))
    assert batch["input_word_ids"].shape == (4, 64) and "document_ids" not in batch


def test_packing_needs_single_segments(tmp_path):
    with pytest.raises(UsageError, match="--packing .* needs --nonext_sentence_prediction"):
        run(config(tmp_path, packing=True), IN_MEMORY)


# -- reliability (issue 13) -----------------------------------------------------

@pytest.mark.multiprocess
def test_concurrent_writer_is_refused_and_the_dataset_is_a_solo_runs(tmp_path):
    """Two real writers into one directory: the second is refused naming the first."""
    import signal
    import subprocess
    import sys
    import time
    from tests.conftest import ROOT
    out = tmp_path / "ds"

    def args(seed):
        return ["--input_file", CORPUS / "sentences.txt", "--vocab_file", VOCAB,
                "--output_dir", out, "--max_seq_length", "64", "--max_predictions_per_seq", "10",
                "--dupe_factor", "3", "--num_shards", "2", "--bucket_size", "2",
                "--random_seed", str(seed), *IN_MEMORY]

    first = subprocess.Popen(
        [sys.executable, "-m", "pipeline.create_pretraining_data", *map(str, args(1))],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "ds.lock"
    deadline = time.time() + 120
    while (not (lock.exists() and lock.read_text().endswith("\n"))
           and first.poll() is None and time.time() < deadline):
        time.sleep(0.01)
    # Freeze the first writer while it holds the lock, so the second surely meets it.
    first.send_signal(signal.SIGSTOP)
    try:
        assert lock.exists(), "the first writer never took the lock"
        second = run_module("pipeline.create_pretraining_data", *args(2), check=False)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1].startswith(
        f"create_pretraining_data: {out} is being written by pid {first.pid} on ")
    assert f"lock file {lock}" in error_line(second.stderr)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert not lock.exists()
    run(config(tmp_path, output_dir=str(tmp_path / "solo"), random_seed=1), IN_MEMORY)
    assert shard_digests(out) == shard_digests(tmp_path / "solo")


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    import socket
    import subprocess
    import sys
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / "ds.lock").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": int(dead), "started": "earlier"}))
    run(config(tmp_path), IN_MEMORY)
    assert f"taking over {tmp_path}/ds.lock, left by pid {dead}" in capsys.readouterr().err
    assert (tmp_path / "ds" / "COMPLETED").exists() and not (tmp_path / "ds.lock").exists()


def test_interrupted_overwrite_keeps_a_complete_dataset(tmp_path, monkeypatch):
    from pipeline import objects, pretraining_data
    from tfrecords.metadata import open_dataset
    run(config(tmp_path), IN_MEMORY)
    old = shard_digests(tmp_path / "ds")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    # killed while the new dataset's metadata is written: the old one is untouched
    monkeypatch.setattr(pretraining_data, "finalize_dataset", killed)
    with pytest.raises(KeyboardInterrupt):
        run(config(tmp_path, overwrite=True, random_seed=7), IN_MEMORY)
    monkeypatch.undo()
    assert shard_digests(tmp_path / "ds") == old and open_dataset(str(tmp_path / "ds"))
    # killed between the two renames: the old dataset is aside, the new one staged, both whole
    real_move, moves = objects.move_tree, []

    def move_once(source, destination):
        moves.append(source)
        if len(moves) == 2:
            raise KeyboardInterrupt("killed")
        real_move(source, destination)

    monkeypatch.setattr(objects, "move_tree", move_once)
    with pytest.raises(KeyboardInterrupt):
        run(config(tmp_path, overwrite=True, random_seed=7), IN_MEMORY)
    monkeypatch.undo()
    assert not (tmp_path / "ds").exists()
    assert open_dataset(str(tmp_path / "ds.replaced")) and open_dataset(str(tmp_path / "ds.staging"))
    # the next run puts the old dataset back before anything else
    with pytest.raises(UsageError, match="already holds a complete dataset"):
        run(config(tmp_path), IN_MEMORY)
    assert shard_digests(tmp_path / "ds") == old and not (tmp_path / "ds.replaced").exists()


def test_fake_gz_is_counted_by_file_and_alone_fails_naming_it(tmp_path):
    fake = tmp_path / "plain.txt.gz"
    fake.write_text("Not gzip at all.\nA second sentence.\n")
    with pytest.raises(UsageError) as e:
        run(config(tmp_path, input_file=(str(fake),)), IN_MEMORY)
    assert str(e.value) == (
        f"no instance from 1 input file(s) ({fake}): 0 document(s) read; skipped: "
        f'{{"{fake}": {{"not_compressed_as_named": 1}}}} (by file); {tmp_path}/ds was not written')
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds.staging").exists()
    # among good files: the good documents are kept, the fake one is counted under its name
    run(config(tmp_path, input_file=(str(fake), str(CORPUS / "sentences.txt"))), IN_MEMORY)
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert stats["skipped_not_compressed_as_named"] == 1 and stats["documents"] == 4
    assert stats["skipped_by_file"] == {str(fake): {"not_compressed_as_named": 1}}


def test_a_document_with_no_token_is_counted_by_file(tmp_path):
    """A document the reader keeps but the tokenizer empties (control characters only)."""
    odd = tmp_path / "odd.txt"
    odd.write_text("\x07 \x07\n\nA real sentence here.\nAnd another one.\n")
    run(config(tmp_path, input_file=(str(odd), str(CORPUS / "sentences.txt"))), IN_MEMORY)
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert stats["skipped_empty_document"] == 1
    assert stats["skipped_by_file"] == {str(odd): {"empty_document": 1}}


def test_unclosed_page_is_counted(tmp_path):
    xml = (CORPUS / "wiki.xml").read_text()
    # the first page loses its closing tag: the next <page> starts before it ends
    cut = xml.replace("</page>", "", 1)
    assert cut.count("<page>") == xml.count("<page>") == cut.count("</page>") + 1
    (tmp_path / "cut.xml").write_text(cut)
    run(config(tmp_path, input_file=(str(tmp_path / "cut.xml"),), input_format="wikipedia"),
        IN_MEMORY)
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert stats["skipped_unclosed_page"] == 1 and stats["documents"] == 1  # of 2 articles
    assert stats["skipped_by_file"][str(tmp_path / "cut.xml")]["unclosed_page"] == 1


def test_flag_typos_and_size_bounds_are_one_line(tmp_path):
    base = ["--input_file", CORPUS / "sentences.txt", "--vocab_file", VOCAB,
            "--output_dir", tmp_path / "ds"]
    proc = run_module("pipeline.create_pretraining_data", *base, "--dupe_factr", "1",
                      check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        "create_pretraining_data: unknown flag --dupe_factr (did you mean --dupe_factor?): it is neither this "
        "command's flag nor a Beam pipeline option")
    # an unquoted glob: the shell gives the second file as an argument of its own
    proc = run_module("pipeline.create_pretraining_data", "--input_file",
                      CORPUS / "books" / "the_library.txt", CORPUS / "books" / "the_river.txt",
                      *base[2:], check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        f"create_pretraining_data: unexpected argument '{CORPUS / 'books' / 'the_river.txt'}': a file pattern "
        "the shell expanded? Quote it (--input_file 'data/*.txt') or join files with commas")
    assert not (tmp_path / "ds").exists()
    proc = run_module("pipeline.create_pretraining_data", *base, "--max_seq_lenght=64",
                      check=False)
    assert proc.returncode == 1 and "unknown flag --max_seq_lenght (did you mean " \
        "--max_seq_length?)" in error_line(proc.stderr)
    proc = run_module("pipeline.create_pretraining_data", *base, "--max_seq_length",
                      "100000000", check=False)
    assert proc.returncode != 0 and "--max_seq_length" in error_line(proc.stderr)
    assert "8192" in error_line(proc.stderr) and "Traceback" not in proc.stderr
    assert not (tmp_path / "ds").exists()


def test_directory_as_input_is_one_line(tmp_path):
    proc = run_module("pipeline.create_pretraining_data", "--input_file", CORPUS / "books",
                      "--vocab_file", VOCAB, "--output_dir", tmp_path / "ds", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"create_pretraining_data: --input_file: {CORPUS / 'books'} is a directory; give its files "
        f"(e.g. '{CORPUS / 'books'}/*.txt')")


def test_disk_full_is_one_line_and_removes_staging(tmp_path):
    import random
    import subprocess
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(small)],
                      capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs privileges this machine lacks")
    try:
        sentences = [s for s in (CORPUS / "sentences.txt").read_text().splitlines() if s.strip()]
        rng = random.Random(0)
        corpus = tmp_path / "long.txt"
        corpus.write_text("\n\n".join("\n".join(rng.choice(sentences) for _ in range(6))
                                      for _ in range(3000)) + "\n")
        with pytest.raises(UsageError) as e:
            run(config(tmp_path, input_file=(str(corpus),), output_dir=str(small / "ds")),
                IN_MEMORY)
        assert str(e.value) == (f"no space left on the device of {small}/ds.staging (what "
                                "the job wrote there was removed); free space or pass another "
                                "--output_dir")
        assert os.listdir(small) == []
        # The command line's quiet console logs into staging, on the full disk too: the
        # log loses lines, the job neither hangs (it did: a worker blocked on its log) nor
        # loses the error line; the log is kept, the rest removed.
        proc = run_module("pipeline.create_pretraining_data", "--input_file", corpus,
                          "--vocab_file", VOCAB, "--output_dir", small / "ds", "--dupe_factor",
                          "3", "--num_shards", "2", check=False, timeout=300)
        assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
            f"create_pretraining_data: no space left on the device of {small}/ds.staging (what the job wrote "
            f"there was removed; log: {small}/ds.staging/pipeline.log); free space or pass "
            "another --output_dir")
        assert os.listdir(small / "ds.staging") == ["pipeline.log"]
        # the lines the log lost are counted and said (before the error line)
        assert f"bytes of logging could not be written to {small}/ds.staging/pipeline.log " \
               "(is its disk full?)" in proc.stderr
    finally:
        subprocess.run(["umount", str(small)])


def test_a_directory_that_is_not_a_dataset_is_never_replaced(tmp_path):
    other = tmp_path / "ds"
    other.mkdir()
    (other / "notes.txt").write_text("someone's files")
    with pytest.raises(UsageError, match="exists and is not a dataset directory"):
        run(config(tmp_path, overwrite=True), IN_MEMORY)
    assert (other / "notes.txt").read_text() == "someone's files"


@pytest.mark.multiprocess
def test_dask_cluster_writes_the_same_bytes_as_the_direct_runner(tmp_path):
    """`dask scheduler` + two `dask worker` processes, as a cluster's users start them;
    the job is the command line with `--runner DaskRunner --dask_client_address`, with
    near-dedup and the quality rules on (the same kept set, so the same bytes)."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    hook = _failing_splitter_hook(tmp_path)  # for the failure case at the end
    env = dict(os.environ, PYTHONPATH=f"{hook}:{FIXTURES.parent.parent}")
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("scheduler", "w0", "w1")}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stderr=logs["scheduler"],
                              stdout=subprocess.DEVNULL)]
    try:
        for name in ("w0", "w1"):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--name", name],
                env=env, stderr=logs[name], stdout=subprocess.DEVNULL))
        from distributed import Client
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        # Copies of a fixture document: exact, in capitals and edited (dedup is on, and the
        # kept set must be the cluster's on any runner).
        doc = json.loads((CORPUS / "docs.jsonl").read_text().splitlines()[0])["text"]
        copies = tmp_path / "copies.jsonl"
        copies.write_text("".join(json.dumps({"text": t}) + "\n" for t in
                                  (doc, doc.upper(), doc.replace(".", " indeed.", 1), doc)))
        inputs = [f"wikipedia:{CORPUS / 'wiki.xml'}", f"books:{CORPUS / 'books' / '*.txt'}",
                  f"jsonl:{CORPUS / 'docs.jsonl'}", str(CORPUS / "sentences.txt"),
                  f"jsonl:{copies}"]
        flags = ["--input_file", ",".join(inputs), "--vocab_file", VOCAB,
                 "--max_seq_length", "64", "--max_predictions_per_seq", "10",
                 "--dupe_factor", "3", "--num_shards", "3", "--bucket_size", "2",
                 "--eval_fraction", "0.3", "--dedup", "near", "--quality_filter"]
        run_module("pipeline.create_pretraining_data", *flags, "--output_dir",
                   tmp_path / "dask", "--runner", "DaskRunner", "--dask_client_address", address)
        run_module("pipeline.create_pretraining_data", *flags, "--output_dir",
                   tmp_path / "direct", *IN_MEMORY)
        # A document a worker fails on: one line naming it, through Dask's exception too.
        corpus = tmp_path / "bad.jsonl"
        corpus.write_text(json.dumps({"text": "A calm document. Two sentences."}) + "\n"
                          + json.dumps({"text": "This one EXPLODES. Sadly."}) + "\n")
        failed = run_module("pipeline.create_pretraining_data", "--input_file",
                            f"jsonl:{corpus}", "--vocab_file", VOCAB, "--output_dir",
                            tmp_path / "bad", "--runner", "DaskRunner",
                            "--dask_client_address", address, check=False)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        assert failed.stderr.strip().splitlines()[-1] == (
            f"create_pretraining_data: failed on {corpus}, document 2: ValueError: the splitter gave up; "
            f"log: {tmp_path}/bad.staging/pipeline.log")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        for log in logs.values():
            log.close()
    dask_shards, direct_shards = shard_digests(tmp_path / "dask"), shard_digests(tmp_path / "direct")
    assert dask_shards == direct_shards and len(dask_shards) == 4  # 3 train + 1 eval
    stats = json.loads((tmp_path / "dask" / "stats.json").read_text())
    assert stats == {**json.loads((tmp_path / "direct" / "stats.json").read_text()),
                     "seconds": stats["seconds"], "cleaning_seconds": stats["cleaning_seconds"]}
    assert stats["work_items"] == 5 and stats["train_instances"] > 0 < stats["eval_instances"]
    # the copies file: its first document is a copy of docs.jsonl's first, so all four go
    assert stats["removed_by_file"][str(copies)]["exact_duplicate"] == 3
    # The job was the scheduler's client (its tasks ran on the cluster's workers).
    assert "Receive client connection" in (tmp_path / "scheduler.log").read_text()


# -- console -----------------------------------------------------------------------

def test_default_console_is_the_jobs_own_lines_and_verbose_brings_the_rest_back(tmp_path):
    flags = ["--input_file", f"{CORPUS / 'sentences.txt'},jsonl:{CORPUS / 'docs.jsonl'}",
             "--vocab_file", VOCAB, "--max_seq_length", "64", "--max_predictions_per_seq", "10",
             "--dupe_factor", "2", "--num_shards", "2"]
    quiet = run_module("pipeline.create_pretraining_data", *flags, "--output_dir", tmp_path / "q")
    lines = quiet.stderr.strip().splitlines()
    assert 5 <= len(lines) <= 25, quiet.stderr
    assert lines[0].startswith("create_pretraining_data: 2 input file(s) (jsonl, sentences")
    # one worker per core this process may use (its affinity), whatever the machine has
    assert lines[1].startswith("settings: NSP pairs, max_seq_length 64") and \
        f"runner DirectRunner (multi_processing, {usable_cpus()} worker(s))" in lines[1]
    assert lines[-3].startswith("wrote ") and f"to {tmp_path / 'q'} in" in lines[-3]
    assert lines[-1] == f"log: {tmp_path / 'q' / 'pipeline.log'}"
    # Beam's and its workers' logging is in the log, not on the console.
    log = (tmp_path / "q" / "pipeline.log").read_text()
    assert "sdk_worker" in log and "sdk_worker" not in quiet.stderr
    loud = run_module("pipeline.create_pretraining_data", *flags, "--output_dir", tmp_path / "v",
                      "--verbose")
    assert "sdk_worker" in loud.stderr and not (tmp_path / "v" / "pipeline.log").exists()
    assert shard_digests(tmp_path / "q") == shard_digests(tmp_path / "v")


@pytest.mark.multiprocess
def test_sigterm_stops_the_job_without_a_dataset_or_a_lock_and_the_rerun_works(tmp_path):
    """A preempted VM's SIGTERM while the pipeline runs (on the default multi-process
    runner): one line, status 75, no COMPLETED dataset, no lock, no worker process left
    behind, only the log kept; the same command then runs from scratch."""
    import sys
    import time

    import psutil

    from pipeline.interrupts import EXIT_INTERRUPTED
    out = tmp_path / "ds"
    command = [sys.executable, "-m", "pipeline.create_pretraining_data", "--input_file",
               f"{CORPUS / 'sentences.txt'},jsonl:{CORPUS / 'docs.jsonl'}", "--vocab_file",
               VOCAB, "--max_seq_length", "64", "--dupe_factor", "5", "--output_dir", str(out)]
    started = time.time()
    # The "log:" line comes just before the pipeline starts (its workers take seconds);
    # a signal during the checks before it is acted on as the pipeline starts.
    [(code, err)] = signal_at([command], "log: ", tmp=tmp_path)
    assert code == EXIT_INTERRUPTED, err[-3000:]
    log = out.parent / "ds.staging" / "pipeline.log"
    assert err.strip().splitlines()[-1] == (
        f"stopped: SIGTERM: the job stopped before it finished; nothing was written to {out} "
        f"(log: {log}); rerun the same command to start over")
    assert not out.exists() and not (out.parent / "ds.lock").exists()
    assert os.listdir(out.parent / "ds.staging") == ["pipeline.log"]
    assert "Traceback" not in err
    workers = [p for p in psutil.process_iter(["cmdline", "create_time"])
               if p.info["create_time"] >= started - 1 and
               "sdk_worker_main" in " ".join(p.info["cmdline"] or [])]
    assert not workers, [p.info for p in workers]
    rerun = run_module("pipeline.create_pretraining_data", *command[3:])
    assert (out / "COMPLETED").exists() and not (out.parent / "ds.staging").exists()
    assert "stopped" not in rerun.stderr


def test_progress_line_sums_the_workers_files(tmp_path):
    from pipeline.console import JobConsole, ProgressFile, ProgressPrinter, read_progress

    staging = str(tmp_path)
    first, second = ProgressFile(staging, "a"), ProgressFile(staging, "b")
    first.add(bytes=3_000_000, documents=10)
    second.add(bytes=1_000_000, documents=5, instances=400)
    first.flush()
    second.flush()
    assert read_progress(staging) == {"bytes": 4_000_000, "documents": 15, "instances": 400}
    printer = ProgressPrinter(JobConsole(None), staging, total_bytes=8_000_000)
    # 20 s in, half read: 20 s to go (the time is given: a slow moment changes nothing)
    line = printer.line(read_progress(staging), now=printer.start_time + 20)
    assert line.startswith("progress: 4.0 MB of 8.0 MB read (50%), 15 documents, 400 instances")
    assert "ETA 20 s" in line


def _failing_splitter_hook(tmp_path):
    """A directory whose sitecustomize (loaded by every Python process that has it on
    PYTHONPATH, worker processes too) makes the sentence splitter raise on 'EXPLODES'."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import blingfire\n"
        "_split = blingfire.text_to_sentences\n"
        "def _failing(text):\n"
        "    if 'EXPLODES' in text:\n"
        "        raise ValueError('the splitter gave up')\n"
        "    return _split(text)\n"
        "blingfire.text_to_sentences = _failing\n")
    return hook


@pytest.mark.multiprocess
def test_worker_error_is_one_line_naming_the_record_and_the_log(tmp_path):
    """A document that makes the sentence splitter raise, in a worker process of the
    default (multi-process) runner: the patch is a sitecustomize every process loads."""
    import subprocess
    import sys

    hook = _failing_splitter_hook(tmp_path)
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"text": "A calm first document. It has two sentences."}) + "\n"
                      + json.dumps({"text": "The second one EXPLODES here. Sadly."}) + "\n")
    out = tmp_path / "ds"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.create_pretraining_data", "--input_file",
         f"jsonl:{corpus}", "--vocab_file", VOCAB, "--output_dir", out, "--max_seq_length", "64",
         "--max_predictions_per_seq", "10", "--dupe_factor", "1", "--num_shards", "1"],
        cwd=FIXTURES.parent.parent, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=f"{hook}:{FIXTURES.parent.parent}"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    log = f"{out}.staging/pipeline.log"
    assert proc.stderr.strip().splitlines()[-1] == (
        f"create_pretraining_data: failed on {corpus}, document 2: ValueError: the splitter gave up; log: {log}")
    assert "the splitter gave up" in open(log).read() and not out.exists()
