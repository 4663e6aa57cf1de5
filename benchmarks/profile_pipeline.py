"""Where the pretraining-data job's time goes, stage by stage, on one core.

    .venv/bin/python benchmarks/profile_pipeline.py [--corpus leads|plays] [--repeats 3]

Runs the job's own stage functions in one process, in the job's order and
with its settings (`--max_seq_length 128 --max_predictions_per_seq 20
--dupe_factor 5`, buckets of 2,000 documents), timing each stage:

    read      readers.read_documents: decode, NFC, document boundaries
    split     sentence splitting (blingfire) of paragraph formats
    tokenize  WordPiece ids of every sentence, one batch per bucket
    pair      instances without masks (target lengths, A/B, NSP, truncation)
    mask      static masking of every instance (80/10/10)
    encode    tf.train.Example bytes
    write     TFRecord framing (CRC32C) and the piece files

(the cyclic garbage collector off during instance making, as in the job),
then the whole job through Beam on one in-process worker
(`--direct_running_mode in_memory`), whose time beyond the stages' sum is
Beam's (bundles, shuffles, the merge of pieces into shards). Prints
microseconds per instance and the share of each stage; medians of
--repeats. The corpus is the benchmark's (`bench_pipeline.make_corpus`:
Wikipedia lead sections, one sentence per line) or the plays as books.
"""

import argparse
import collections
import gc
import glob
import inspect
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
VOCAB = os.path.join(ROOT, "data", "vocab", "uncased_vocab.txt")
STAGES = ("read", "split", "tokenize", "pair", "mask", "encode", "write")


def profile_stages(files, fmt, work):
    from pipeline import beam_stages, readers
    from pipeline.instances import InstanceConfig, SpecialIds, create_instances
    from pipeline.masking import MaskingConfig, mask_tokens
    from pipeline.text import split_sentences
    from pipeline.tokenization import BertTokenizer, load_vocab
    from pipeline.writer import write_pieces
    from tfrecords.encode import InstanceEncoder
    from tfrecords.features import spec_from_lengths

    # Older code (a before/after comparison from a checkout) lacks some parameters.
    masks_with_sep = "first_sep" in inspect.signature(mask_tokens).parameters
    trusted = ({"validate_ids": False}
               if "validate_ids" in inspect.signature(InstanceEncoder).parameters else {})
    pauses_gc = hasattr(beam_stages, "gc")
    vocab = load_vocab(VOCAB)
    tok = BertTokenizer(vocab)
    ids = SpecialIds(tok.cls_id, tok.sep_id, tok.mask_id, tok.is_continuation,
                     tok.replacement_ids)
    masking = MaskingConfig(0.15, 20)
    pair_config = InstanceConfig(max_seq_length=128, masking="dynamic", masked=masking)
    encoder = InstanceEncoder(spec_from_lengths(128, 20), vocab_size=len(vocab), **trusted)
    seconds = collections.Counter()

    t = time.perf_counter()
    docs = []
    for path in files:
        with open(path, "rb") as f:
            docs.extend(d for d in readers.read_documents(path, f, fmt, lambda r: None))
    seconds["read"] = time.perf_counter() - t

    instances = 0
    if pauses_gc:
        gc.disable()  # as CreateInstancesFn does while it makes a bucket's instances
    for b in range(0, len(docs), 2000):
        bucket = docs[b:b + 2000]
        t = time.perf_counter()
        sentences = [d.units if d.presplit else split_sentences(d.units) for d in bucket]
        seconds["split"] += time.perf_counter() - t
        t = time.perf_counter()
        flat = tok.tokenize_batch([s for doc in sentences for s in doc])
        tokenized, k = [], 0
        for doc in sentences:
            tokenized.append([s[:128] for s in flat[k:k + len(doc)] if s])
            k += len(doc)
        tokenized = [d for d in tokenized if d]
        seconds["tokenize"] += time.perf_counter() - t
        rng = random.Random(b)
        t = time.perf_counter()
        made = [inst for p in range(5)
                for inst in create_instances(tokenized, pair_config, rng, ids, {}, p)]
        seconds["pair"] += time.perf_counter() - t
        t = time.perf_counter()
        masked = [(mask_tokens(inst.input_ids, masking, rng, cls_id=ids.cls_id,
                               sep_id=ids.sep_id, mask_id=ids.mask_id,
                               is_continuation=ids.is_continuation,
                               replacement_ids=ids.replacement_ids,
                               **({"first_sep": inst.segment_ids.index(1) - 1}
                                  if masks_with_sep else {})), inst)
                  for inst in made]
        seconds["mask"] += time.perf_counter() - t
        t = time.perf_counter()
        records = [encoder.encode(m[0], inst.segment_ids, m[1], m[2], inst.next_sentence_label)
                   for m, inst in masked]
        seconds["encode"] += time.perf_counter() - t
        t = time.perf_counter()
        by_shard = collections.defaultdict(list)
        for i, r in enumerate(records):
            by_shard[i % 16].append(r)
        write_pieces(work, "train", f"b{b:06d}", by_shard)
        seconds["write"] += time.perf_counter() - t
        instances += len(records)
    gc.enable()
    return seconds, instances


def whole_job(files, fmt, work):
    from pipeline.pretraining_data import PretrainingDataConfig, run
    from pipeline.runners import DEFAULT_RUNNER

    out = os.path.join(work, "job")
    shutil.rmtree(out, ignore_errors=True)
    config = PretrainingDataConfig(
        input_file=tuple(files), input_format=fmt, vocab_file=VOCAB, output_dir=out,
        max_seq_length=128, max_predictions_per_seq=20, dupe_factor=5, num_shards=16)
    t = time.perf_counter()
    run(config, [f"--runner={DEFAULT_RUNNER}", "--direct_running_mode=in_memory",
                 "--direct_num_workers=1"])
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", choices=["leads", "plays"], default="leads")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="profile_pipeline_")
    if args.corpus == "leads":
        from bench_pipeline import make_corpus
        files, fmt = [make_corpus(1, work)], "sentences"
    else:
        files, fmt = sorted(glob.glob(os.path.join(ROOT, "data", "plays", "*.txt"))), "books"
    runs, jobs = [], []
    for _ in range(args.repeats):
        shutil.rmtree(os.path.join(work, "_pieces"), ignore_errors=True)
        runs.append(profile_stages(files, fmt, work))
        jobs.append(whole_job(files, fmt, work))
    instances = runs[0][1]
    per = {s: statistics.median(r[0][s] for r in runs) for s in STAGES}
    job = statistics.median(jobs)
    total = sum(per.values())
    print(f"\n{args.corpus}: {instances:,} instances; one core; medians of {args.repeats}")
    print(f"{'stage':10s} {'s':>7s} {'us/inst':>8s} {'share':>6s}")
    for s in STAGES:
        print(f"{s:10s} {per[s]:7.2f} {1e6 * per[s] / instances:8.1f} {per[s] / job:6.0%}")
    print(f"{'stages':10s} {total:7.2f} {1e6 * total / instances:8.1f} {total / job:6.0%}")
    print(f"{'Beam, rest':10s} {job - total:7.2f} {1e6 * (job - total) / instances:8.1f} "
          f"{(job - total) / job:6.0%}")
    print(f"{'whole job':10s} {job:7.2f} {1e6 * job / instances:8.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
