"""The Beam transforms of the pretraining-data job, each a named PTransform.

    work items (byte ranges, files) ─ReadCorpus─▶ (split, bucket key) -> documents
        ─CreateInstances─▶ piece files + stats ─MergeShards─▶ shards + manifest
        ─Summarize─▶ one {stats, manifest}

Every DoFn has one output; its elements are (kind, value) pairs (BUCKET,
PIECE or STATS) that `Select(kind)` picks from, and the job ends in one
transform that everything flows into. Tagged side outputs and several
sinks would be simpler, but Beam's DaskRunner supports neither (it mixes
side outputs into the main output and computes only what the last
transform depends on), and the same graph must run on the DirectRunner,
Dask, Dataflow, Flink and Spark.

Randomness is derived, never global: a document's split comes from a hash
of (seed, its range, its ordinal); the dealing of documents into buckets
from (seed, split, work item); a bucket's instances from (seed, split,
bucket key). Work items depend on file names and sizes only. So the same inputs and seed give
the same bytes however the runner distributes the work.
"""

import collections
import gc
import hashlib
import random
import uuid
from typing import Dict, Iterator, List

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipeline import readers
from pipeline.console import ProgressFile
from pipeline.instances import SpecialIds, create_instances
from pipeline.text import split_sentences
from pipeline.tokenization import BertTokenizer, load_vocab
from pipeline.writer import merge_shard, write_pieces
from tfrecords.encode import InstanceEncoder
from tfrecords.features import spec_from_lengths

BUCKET, PIECE, STATS, SHARD, SAMPLE = "bucket", "piece", "stats", "shard", "sample"
NAMESPACE = "pretraining_data"


def derive_seed(seed: int, *parts) -> int:
    """A 64-bit seed from the base seed and a key (stable across processes and runs)."""
    key = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def unit_hash(seed: int, *parts) -> float:
    """A uniform number in [0, 1) from the seed and a key."""
    return derive_seed(seed, *parts) / 2.0 ** 64


class RecordError(RuntimeError):
    """An unexpected failure on one input record, naming it.

    The message is wrapped in <<record: ...>> so the driver can find it in
    whatever the runner wraps a worker's exception in (a traceback text on
    the DirectRunner, the pickled exception on Dask) and print it as one line.
    """

    def __init__(self, where: str, error: BaseException):
        super().__init__(f"<<record: {where}: {type(error).__name__}: {error}>>")


def _where(path: str, ordinal: int, start: int) -> str:
    if start:
        return f"{path}, document {ordinal + 1} of the byte range from {start:,}"
    return f"{path}, document {ordinal + 1}"


class BucketWindow:
    """Deals documents into random buckets, a few open at a time.

    Each document goes to one of `open_buckets` buckets at random; a bucket
    that reaches `bucket_size` documents is handed out and replaced by an
    empty one; at the end the leftovers are pooled and cut into buckets of
    about `bucket_size`. A bucket is thus a random sample of a window of
    about open_buckets x bucket_size consecutive documents, and memory holds
    one window, whatever the corpus size.
    """

    def __init__(self, rng: random.Random, bucket_size: int, open_buckets: int):
        self.rng, self.size = rng, bucket_size
        self.buckets: List[list] = [[] for _ in range(open_buckets)]

    def add(self, doc) -> Iterator[list]:
        index = self.rng.randrange(len(self.buckets))
        bucket = self.buckets[index]
        bucket.append(doc)
        if len(bucket) >= self.size:
            self.buckets[index] = []
            yield bucket

    def flush(self) -> Iterator[list]:
        rest = [doc for bucket in self.buckets for doc in bucket]
        self.buckets = [[] for _ in self.buckets]
        count = max(1, round(len(rest) / self.size))
        for k in range(count):
            chunk = rest[k::count]
            if chunk:
                yield chunk


class SkipCounter:
    """The readers' `skip(reason)`: counts by reason, and by reason and file."""

    def __init__(self):
        self.skipped = collections.Counter()
        self.by_file = collections.defaultdict(collections.Counter)
        self.current = None

    def __call__(self, reason: str) -> None:
        self.skipped[reason] += 1
        self.by_file[self.current][reason] += 1
        beam.metrics.Metrics.counter(NAMESPACE, f"skipped_{reason}").inc()

    def stats(self) -> dict:
        out = {f"skipped_{reason}": n for reason, n in self.skipped.items()}
        if self.by_file:
            out["skipped_by_file"] = {path: dict(c) for path, c in self.by_file.items()}
        return out


def read_item(item, text_field: str, skip: SkipCounter, progress=None):
    """The documents of one work item: (path, Document, doc key, range start) ...

    A document's key, "FILE-START:ORDINAL" (file index, byte offset of its range,
    its ordinal in the range), orders documents as the corpus does and is the same
    on every runner.
    """
    for file_index, path, start, end, input_format in item:
        range_key = f"{file_index:06d}-{start:012d}"
        skip.current = path
        ordinal = -1
        with FileSystems.open(path, compression_type="uncompressed") as f:
            position = start
            docs = readers.read_documents(path, f, input_format, skip, text_field,
                                          start=start, end=end)
            while True:
                try:
                    doc = next(docs, None)
                except Exception as e:  # a reader's bug or an unforeseen input
                    raise RecordError(_where(path, ordinal + 1, start), e) from e
                if doc is None:
                    break
                ordinal = doc.ordinal
                if progress:
                    now = f.tell()
                    progress.add(bytes=max(0, now - position), documents=1)
                    position = max(position, now)
                yield path, doc, f"{range_key}:{doc.ordinal:010d}", start
            if progress:  # the rest of the range (buffered reads ran ahead)
                size = end if end is not None else FileSystems.match(
                    [path])[0].metadata_list[0].size_in_bytes
                progress.add(bytes=max(0, size - position))


def _select(element, kind):
    if element[0] == kind:
        yield element[1]


def Select(kind: str) -> beam.PTransform:
    """The values of one kind from a (kind, value) PCollection."""
    return beam.FlatMap(_select, kind)


class ReadRangeFn(beam.DoFn):
    """A work item -> (BUCKET, ((split, bucket key), documents)) ..., then (STATS, counts).

    A work item is a list of (file index, path, start, end, format) ranges,
    read in order. Documents are dealt into buckets (BucketWindow) per split
    as they are read, so the raw text never passes through the runner's
    shuffle. With a cleaner (pipeline/clean_stages.py), the item's documents come
    from cleaning's cache, duplicates and repeated lines taken out, before the split
    is drawn: the eval split holds kept documents only.
    """

    def __init__(self, text_field: str, seed: int, eval_fraction: float,
                 bucket_size: int, open_buckets: int, staging: str = "", cleaner=None):
        self.text_field = text_field
        self.seed, self.eval_fraction = seed, eval_fraction
        self.bucket_size, self.open_buckets = bucket_size, open_buckets
        self.staging, self.owner = staging, uuid.uuid4().hex[:12]
        self.cleaner = cleaner

    def setup(self):
        self.progress = ProgressFile.of(self.staging, self.owner) if self.staging else None
        if self.cleaner:
            self.cleaner.setup()

    def finish_bundle(self):
        if self.progress:
            self.progress.flush()

    def process(self, item):
        file_index, _, start, _, _ = item[0]
        item_key = f"{file_index:06d}-{start:012d}"
        skip = SkipCounter()
        stats = collections.Counter()
        windows = {split: BucketWindow(random.Random(derive_seed(self.seed, "deal", split, item_key)),
                                       self.bucket_size, self.open_buckets)
                   for split in ("train", "eval")}
        serial = collections.Counter()

        def emit(split, bucket):
            key = f"{item_key}-{serial[split]:06d}"
            serial[split] += 1
            return BUCKET, ((split, key), bucket)

        documents = 0
        docs = (self.cleaner.documents(item, self.progress) if self.cleaner else
                read_item(item, self.text_field, skip, self.progress))
        for path, doc, doc_key, start in docs:
            units = doc.units
            if self.cleaner:
                units = self.cleaner.apply(doc_key, path, doc, stats)
                if units is None:
                    continue
            split = ("eval" if self.eval_fraction and
                     unit_hash(self.seed, "split", doc_key) < self.eval_fraction
                     else "train")
            documents += 1
            origin = (path, doc.ordinal, start)
            for bucket in windows[split].add((units, doc.presplit, origin)):
                yield emit(split, bucket)
        for split, window in windows.items():
            for bucket in window.flush():
                yield emit(split, bucket)
        beam.metrics.Metrics.counter(NAMESPACE, "documents_read").inc(documents)
        stats = dict(stats, **skip.stats(), work_items=1)
        yield STATS, stats
        if self.cleaner:
            yield from self.cleaner.samples()


class ReadCorpus(beam.PTransform):
    """Reads every work item into buckets of documents, each tagged with its split:
    (BUCKET, ((split, key), docs)) and (STATS, counts) elements."""

    def __init__(self, items: List[List[tuple]], text_field: str, seed: int,
                 eval_fraction: float, bucket_size: int, open_buckets: int,
                 staging: str = "", cleaner=None):
        super().__init__()
        self.items, self.text_field = items, text_field
        self.seed, self.eval_fraction = seed, eval_fraction
        self.bucket_size, self.open_buckets = bucket_size, open_buckets
        self.staging, self.cleaner = staging, cleaner

    def expand(self, root):
        return (
            root
            | "ListWorkItems" >> beam.Create(self.items)
            | "SpreadWorkItems" >> beam.Reshuffle()
            | "ReadAndBucket" >> beam.ParDo(ReadRangeFn(
                self.text_field, self.seed, self.eval_fraction,
                self.bucket_size, self.open_buckets, self.staging, self.cleaner))
        )


_TOKENIZERS: Dict[tuple, tuple] = {}


def _tokenizer(vocab_file: str, do_lower_case: bool):
    """(vocab, BertTokenizer), built once per process: Beam's DaskRunner calls a DoFn's
    setup once per partition, not once per worker."""
    key = (vocab_file, do_lower_case)
    if key not in _TOKENIZERS:
        vocab = load_vocab(vocab_file)
        _TOKENIZERS[key] = vocab, BertTokenizer(vocab, do_lower_case, source=vocab_file)
    return _TOKENIZERS[key]


class CreateInstancesFn(beam.DoFn):
    """((split, bucket key), docs) -> (PIECE, piece descriptor) ..., then (STATS, counts)."""

    def __init__(self, config, staging: str, num_shards: Dict[str, int]):
        self.config, self.staging, self.num_shards = config, staging, num_shards
        self.owner = uuid.uuid4().hex[:12]

    def setup(self):
        c = self.config
        vocab, self.tokenizer = _tokenizer(c.vocab_file, c.do_lower_case)
        t = self.tokenizer
        self.ids = SpecialIds(t.cls_id, t.sep_id, t.mask_id, t.is_continuation, t.replacement_ids)
        self.encoder = InstanceEncoder(
            spec_from_lengths(c.max_seq_length, c.max_predictions_per_seq, masking=c.masking,
                              next_sentence=c.next_sentence_prediction, packed=c.packing),
            vocab_size=len(vocab), validate_ids=False)  # ids are vocabulary indices
        self.instance_config = c.instance_config()
        self.progress = ProgressFile.of(self.staging, self.owner)

    def finish_bundle(self):
        self.progress.flush()

    def _tokenize(self, docs, stats) -> List[List[List[int]]]:
        """Sentence-split and tokenize a bucket's documents (one tokenizer batch)."""
        sentences_per_doc = []
        for units, presplit, _ in docs:
            sentences_per_doc.append(units if presplit else split_sentences(units))
        flat = [s for doc in sentences_per_doc for s in doc]
        ids = self.tokenizer.tokenize_batch(flat)
        cap = self.config.max_seq_length
        tokenized, k = [], 0
        empty_by_file = collections.Counter()
        for (_, _, (path, _, _)), sentences in zip(docs, sentences_per_doc):
            doc = []
            for sentence_ids in ids[k:k + len(sentences)]:
                if len(sentence_ids) > cap:
                    # Only max_seq_length tokens of a sentence can ever be used;
                    # capping keeps truncation linear on a 1 MB "sentence".
                    stats["long_sentences_truncated"] += 1
                    sentence_ids = sentence_ids[:cap]
                if sentence_ids:
                    doc.append(sentence_ids)
            k += len(sentences)
            if not doc:  # nothing but whitespace or characters the vocabulary drops
                stats["skipped_empty_document"] += 1
                empty_by_file[path] += 1
                continue
            if len(doc) == 1:
                stats["one_sentence_documents"] += 1
            stats["documents"] += 1
            stats["sentences"] += len(doc)
            stats["tokens"] += sum(len(s) for s in doc)
            tokenized.append(doc)
        if empty_by_file:  # by file too, as the readers' reasons (sum_stats adds them up)
            stats["skipped_by_file"] = {path: {"empty_document": n}
                                        for path, n in empty_by_file.items()}
        return tokenized

    def process(self, element):
        (split, bucket), docs = element
        try:
            yield from self._process(split, bucket, docs)
        except RecordError:
            raise
        except Exception as e:
            raise RecordError(self._culprit(docs, bucket), e) from e

    def _culprit(self, docs, bucket) -> str:
        """Which document of a failed bucket fails alone (else the bucket is named)."""
        rng = random.Random(0)
        for doc in docs:
            try:
                tokenized = self._tokenize([doc], collections.Counter())
                for _ in create_instances(tokenized, self.instance_config, rng, self.ids, {}):
                    pass
            except Exception:
                return _where(*doc[2])
        return f"bucket {bucket} ({len(docs)} documents, from {_where(*docs[0][2])} on)"

    def _process(self, split, bucket, docs):
        # A bucket makes ~10^5 short-lived lists while its documents (10^5 more) stay alive:
        # the cyclic collector would walk all of them over and over (a third of the
        # instance-making time, measured); nothing here makes cycles, so it waits.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            outputs = self._make(split, bucket, docs)
        finally:
            if gc_was_on:
                gc.enable()
        yield from outputs

    def _make(self, split, bucket, docs) -> list:
        """The bucket's pieces written, as [(PIECE, descriptor)..., (STATS, counts)]."""
        stats = collections.Counter()
        documents = self._tokenize(docs, stats)
        c = self.config
        rng = random.Random(derive_seed(c.random_seed, "instances", split, bucket))
        records = []
        for pass_index in range(c.dupe_factor):
            for inst in create_instances(documents, self.instance_config, rng, self.ids, stats,
                                         pass_index):
                records.append(self.encoder.encode(*inst))
        # Shuffled, then dealt to shards at random (numpy: random.shuffle and randrange run
        # Python code per record).
        shuffle = np.random.default_rng(derive_seed(c.random_seed, "shuffle", split, bucket))
        order = shuffle.permutation(len(records)).tolist()
        shard_of = shuffle.integers(0, self.num_shards[split], len(records)).tolist()
        by_shard: Dict[int, List[bytes]] = collections.defaultdict(list)
        for index, shard in zip(order, shard_of):
            by_shard[shard].append(records[index])
        outputs = [(PIECE, piece) for piece in write_pieces(self.staging, split, bucket, by_shard)]
        stats[f"{split}_instances"] += len(records)
        beam.metrics.Metrics.counter(NAMESPACE, "instances").inc(len(records))
        self.progress.add(instances=len(records))
        return outputs + [(STATS, dict(stats))]


def sum_stats(dicts) -> dict:
    """Sums counters key by key; nested dicts (skipped_by_file: {file: {reason: n}}) too."""
    def add(total, d):
        for key, value in d.items():
            if isinstance(value, dict):
                add(total.setdefault(key, {}), value)
            else:
                total[key] = total.get(key, 0) + value
        return total

    def ordered(d):
        return {k: ordered(v) if isinstance(v, dict) else v for k, v in sorted(d.items())}

    total = {}
    for d in dicts:
        add(total, d)
    return ordered(total)


class MergeShardsFn(beam.DoFn):
    """(split, shard) -> its manifest entry, after concatenating its pieces."""

    def __init__(self, staging: str, num_shards: Dict[str, int], compress: bool):
        self.staging, self.num_shards, self.compress = staging, num_shards, compress

    def process(self, element):
        (split, shard), pieces = element
        pieces = [(bucket, count) for bucket, count in pieces if bucket is not None]
        yield split, merge_shard(self.staging, split, shard, self.num_shards[split], pieces,
                                 self.compress)


class MergeShards(beam.PTransform):
    """Turns piece descriptors into whole shards; yields (split, manifest entry)."""

    def __init__(self, staging: str, num_shards: Dict[str, int], compress: bool):
        super().__init__()
        self.staging, self.num_shards, self.compress = staging, num_shards, compress

    def expand(self, pieces):
        every_shard = [((split, s), (None, 0)) for split, n in sorted(self.num_shards.items())
                       for s in range(n)]
        keyed = pieces | "KeyPieceByShard" >> beam.Map(
            lambda p: ((p[0], p[1]), (p[2], p[3])))
        return (
            (keyed, keyed.pipeline | "EveryShard" >> beam.Create(every_shard))
            | "FlattenPieces" >> beam.Flatten()
            | "GroupPiecesByShard" >> beam.GroupByKey()
            | "ConcatenatePieces" >> beam.ParDo(
                MergeShardsFn(self.staging, self.num_shards, self.compress))
        )


def _summary(grouped) -> dict:
    _, elements = grouped
    stats = sum_stats(v for kind, v in elements if kind == STATS)
    manifest = sorted((v for kind, v in elements if kind == SHARD),
                      key=lambda e: (e[0], e[1]["file"]))
    samples = {v[0]: v[1:] for kind, v in elements if kind == SAMPLE}
    return {"stats": stats, "manifest": manifest, "samples": samples}


class Summarize(beam.PTransform):
    """(STATS, counts), (SHARD, (split, entry)) and (SAMPLE, (doc key, ...)) elements ->
    one {stats, manifest, samples}.

    A GroupByKey on one key rather than CombineGlobally: the combiner's
    empty-input default is a side input, which not every runner has.
    """

    def expand(self, tagged):
        return (tagged
                | "KeyAll" >> beam.Map(lambda e: (None, e))
                | "GroupAll" >> beam.GroupByKey()
                | "Summary" >> beam.Map(_summary))


def make_shard_plan(eval_fraction: float, num_shards: int, num_eval_shards: int
                    ) -> Dict[str, int]:
    plan = {"train": num_shards}
    if eval_fraction:
        plan["eval"] = num_eval_shards
    return plan

