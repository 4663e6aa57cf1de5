"""The cleaning job's Beam stages: what to drop is decided before anything is bucketed.

    pass 1: work items ─Fingerprint─▶ document cache + group records in partition files
            ─(after every item)─▶ partitions ─Resolve─▶ edges, lines ─Decide─▶ decision file
    pass 2: work items ─ReadRangeFn / WriteJsonlFn, a Cleaner applying the decision─▶ ...

Pass 1 reads every document once. It writes the parsed documents that pass the
quality rules to a cache (one file per work item; pass 2 reads that instead of
parsing the raw input again), and small group records keyed by what two
documents must share to be duplicates: the digest of its normalized words
(exact), each LSH band of its MinHash signature (near; the record carries an
8-bit sketch of the signature to verify candidates), the digest of each long
line (repeated lines). The records are spread over partition files by key,
the way MergeShards' pieces are (pipeline/beam_stages.py): the runner's
shuffle carries only file names, and the worker resolving a partition holds
about 1/partitions of the records, so memory does not grow with the corpus on
any runner (the DirectRunner keeps a GroupByKey's input in memory).
Resolve turns each group into edges between duplicates (verified, for bands);
Decide takes the connected components (union-find over the edges, which
number about the duplicates, not the corpus) and keeps each component's
smallest document key, i.e. its first document in corpus order: the same
kept set on any runner and any number of workers. A repeated line is kept in
the first document holding it.

Pass 2 (the pretraining-data job's reader, or clean_corpus's writer) reads
the cache and applies the decision; the eval split is drawn there from the
kept documents, so no eval document has a duplicate (found by these rules)
in train.

Beam's DaskRunner has no side inputs, so the decision travels as a file in
the job's staging directory that pass 2's workers read once per process.
"""

import collections
import gzip
import hashlib
import json
import pickle
import posixpath
import time
import uuid
from typing import Dict, List, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipeline.beam_stages import (NAMESPACE, SAMPLE, STATS, SkipCounter, read_item, sum_stats,
                                  unit_hash)
from pipeline.readers import Document
from pipeline.cleaning import (CleaningConfig, Fingerprinter, digest, document_text,
                               estimated_jaccard, line_digests, quality_failure, sketch,
                               words)
from pipeline import objects
from pipeline.console import ProgressFile, ProgressPrinter
from pipeline.runners import close_dask_client

EDGE, LINE, WRITTEN = "edge", "line", "written"
SAMPLES_FILE = "removed_samples.jsonl"
EXACT, NEAR, BAND, LINE_KEY = b"x", b"n", b"b", b"l"


def file_of(doc_key: str) -> int:
    return int(doc_key.split("-", 1)[0])


class FingerprintFn(beam.DoFn):
    """A work item -> its cache file, its group records in partition files, (STATS, counts).

    Quality rules run first: a document that breaks one is counted and never
    fingerprinted, so it cannot be the member a duplicate cluster keeps. The group
    records are numpy arrays (keys, document keys, sketches) cut by partition, written
    every `flush_documents` documents, so that memory holds a bounded part of even a
    single huge input file.
    """

    def __init__(self, config: CleaningConfig, text_field: str, work: str, partitions: int,
                 flush_documents: int = 20_000):
        self.config, self.text_field = config, text_field
        self.work, self.owner = work, uuid.uuid4().hex[:12]
        self.partitions, self.flush_documents = partitions, flush_documents

    def setup(self):
        self.fingerprinter = Fingerprinter(self.config) if self.config.dedup == "near" else None
        self.progress = ProgressFile.of(self.work, self.owner)

    def finish_bundle(self):
        self.progress.flush()

    def process(self, item):
        skip = SkipCounter()
        with FileSystems.create(cache_file(cache_dir(self.work), item),
                                mime_type="application/octet-stream",
                                compression_type="uncompressed") as cache:
            stats = self._process(item, skip, cache)
        yield STATS, stats
        yield STATS, skip.stats()

    def _process(self, item, skip, cache) -> dict:
        c = self.config
        stats = collections.Counter()
        by_file = collections.defaultdict(collections.Counter)
        chunk = Chunk()
        number = 0
        for path, doc, key, _ in read_item(item, self.text_field, skip, self.progress):
            stats["cleaning_documents_read"] += 1
            if c.quality_filter:
                rule = quality_failure(doc.units, c)
                if rule:
                    stats[f"removed_quality_{rule}"] += 1
                    by_file[path][f"quality_{rule}"] += 1
                    beam.metrics.Metrics.counter(NAMESPACE, f"removed_quality_{rule}").inc()
                    continue
            cache.write(json.dumps([key, doc.presplit, doc.units], ensure_ascii=False
                                   ).encode("utf-8") + b"\n")
            if c.dedup == "none":
                continue
            unit_words = [words(unit) for unit in doc.units]
            text_words = [w for line in unit_words for w in line]
            if not text_words:  # nothing to compare (the instance stage skips it as empty)
                continue
            chunk.add(key, digest(text_words),
                      self.fingerprinter.signature(text_words) if self.fingerprinter else None,
                      line_digests(unit_words, c.dedup_line_min_words)
                      if c.dedup_line_min_words else ())
            if len(chunk.keys) >= self.flush_documents:
                chunk.write(self.work, item, number, self.partitions, c)
                chunk, number = Chunk(), number + 1
        chunk.write(self.work, item, number, self.partitions, c)
        if by_file:
            stats["removed_by_file"] = {path: dict(n) for path, n in by_file.items()}
        return dict(stats)


class Chunk:
    """Some documents' group records, gathered per document and cut by partition as arrays.

    Keys: exact, the 16-byte word digest as two uint64; band, the band's index and its
    rows' values (uint32); line, the 8-byte paragraph digest as a uint64. A key's
    partition is one of its uniform parts modulo the number of partitions.
    """

    def __init__(self):
        self.keys: List[str] = []
        self.exact: List[bytes] = []
        self.signatures: List[np.ndarray] = []
        self.line_docs: List[int] = []
        self.line_digests: List[bytes] = []

    def add(self, key: str, exact: bytes, signature, lines) -> None:
        index = len(self.keys)
        self.keys.append(key)
        self.exact.append(exact)
        if signature is not None:
            self.signatures.append(signature)
        for line in lines:
            self.line_docs.append(index)
            self.line_digests.append(line)

    def write(self, work: str, item, number: int, partitions: int,
              config: CleaningConfig) -> None:
        if not self.keys:
            return
        keys = np.array(self.keys)
        parts = collections.defaultdict(dict)

        def cut(kind, group_keys, rows, part_of, sketches=None):
            for p in np.unique(part_of).tolist():
                mask = part_of == p
                parts[p][kind] = (group_keys[mask], keys[rows[mask]],
                                  None if sketches is None else sketches[rows[mask]])

        exact = np.frombuffer(b"".join(self.exact), dtype="<u8").reshape(-1, 2)
        cut(EXACT, exact, np.arange(len(keys)), exact[:, 1] % partitions)
        if self.signatures:
            signatures = np.stack(self.signatures)
            sketches = sketch(signatures)
            r, n = config.rows, len(keys)
            bands = np.concatenate([
                np.column_stack([np.full(n, b, np.uint32), signatures[:, b * r:(b + 1) * r]])
                for b in range(config.dedup_bands)])
            rows = np.tile(np.arange(n), config.dedup_bands)
            cut(BAND, bands, rows, bands[:, -1] % partitions, sketches)
        if self.line_digests:
            lines = np.frombuffer(b"".join(self.line_digests), dtype="<u8")
            cut(LINE_KEY, lines, np.array(self.line_docs), lines % partitions)
        for p, arrays in parts.items():
            write_records(partition_file(work, p, item, number), arrays)


def partition_file(work: str, partition: int, item, chunk: int) -> str:
    file_index, _, start, _, _ = item[0]
    return posixpath.join(work, "groups", f"p{partition:05d}",
                          f"{file_index:06d}-{start:012d}-{chunk:05d}.pkl")


def write_records(path: str, records) -> None:
    with FileSystems.create(path, mime_type="application/octet-stream",
                            compression_type="uncompressed") as f:
        f.write(pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL))


def resolve(kind: bytes, members: list, threshold: float, line: str = ""):
    """A group of 2+ records -> (EDGE, (doc, kept-side doc, reason)) ... or
    (LINE, (line digest, first doc, documents)).

    Exact groups: every member is a copy of the first. Band groups: candidates,
    each compared with the group's cluster leaders (first members of the clusters
    found so far) by estimated Jaccard; a match joins the leader's cluster, a
    member matching several leaders joins their clusters. The edges keep every
    verified link's connectivity with len(members) - 1 edges at most.
    """
    members = sorted(set(members))
    if len(members) < 2:
        return
    if kind == LINE_KEY:
        yield LINE, (line, members[0][0], len(members))
    elif kind == EXACT:
        first = members[0][0]
        for key, _ in members[1:]:
            yield EDGE, (key, first, "exact")
    else:
        leaders: List[tuple] = []
        for key, mini in members:
            matched = [leader for leader in leaders
                       if estimated_jaccard(mini, leader[1]) >= threshold]
            if not matched:
                leaders.append((key, mini))
                continue
            yield EDGE, (key, matched[0][0], "near")
            for other in matched[1:]:
                yield EDGE, (other[0], matched[0][0], "near")


def repeated_groups(group_keys: np.ndarray) -> List[np.ndarray]:
    """The row numbers of each key that occurs twice or more (numpy sorts; Python
    touches only the repeated keys, a small part of a corpus's)."""
    if not len(group_keys):
        return []
    axis = 0 if group_keys.ndim > 1 else None
    _, inverse, counts = np.unique(group_keys, axis=axis, return_inverse=True,
                                   return_counts=True)
    inverse = inverse.reshape(-1)
    rows = np.nonzero(counts[inverse] > 1)[0]
    if not len(rows):
        return []
    rows = rows[np.argsort(inverse[rows], kind="stable")]
    return np.split(rows, np.nonzero(np.diff(inverse[rows]))[0] + 1)


class ResolvePartitionFn(beam.DoFn):
    """A partition number -> the EDGE and LINE elements of its groups.

    Reads the partition's files (what every work item wrote for it) and resolves each
    key that two or more records share; it holds about 1/partitions of the records.
    """

    def __init__(self, work: str, threshold: float):
        self.work, self.threshold = work, threshold

    def process(self, partition):
        pattern = posixpath.join(self.work, "groups", f"p{partition:05d}", "*.pkl")
        paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
        loaded = collections.defaultdict(list)
        for path in paths:
            with FileSystems.open(path, compression_type="uncompressed") as f:
                for kind, arrays in pickle.loads(f.read()).items():
                    loaded[kind].append(arrays)
        for kind, parts in sorted(loaded.items()):
            group_keys = np.concatenate([a[0] for a in parts])
            docs = np.concatenate([a[1] for a in parts])
            sketches = np.concatenate([a[2] for a in parts]) if kind == BAND else None
            for rows in repeated_groups(group_keys):
                members = [(str(docs[i]), sketches[i].tobytes() if kind == BAND else b"")
                           for i in rows.tolist()]
                line = (int(group_keys[rows[0]]).to_bytes(8, "little").hex()
                        if kind == LINE_KEY else "")
                yield from resolve(kind, members, self.threshold, line)


def _partitions_after_all(grouped, partitions: int):
    """After the barrier (every work item's STATS grouped): the partition numbers."""
    return list(range(partitions))


class Components:
    """Union-find over document keys; a component's root is its smallest key."""

    def __init__(self):
        self.parent: Dict[str, str] = {}

    def find(self, x: str) -> str:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while x != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra
            self.parent.setdefault(ra, ra)


def decide(elements, config: CleaningConfig, paths: Sequence[str], seed: int,
           eval_fraction: float) -> dict:
    """Every EDGE, LINE and STATS element -> the decision (see the module docstring)."""
    components = Components()
    exact = set()
    lines = {}
    stats_parts = []
    for kind, value in elements:
        if kind == EDGE:
            a, b, reason = value
            components.union(a, b)
            if reason == "exact":
                exact.add(a)
        elif kind == LINE:
            line, keeper, count = value
            lines[line] = keeper
        elif kind == STATS:
            stats_parts.append(value)
    stats = collections.Counter()
    by_file = collections.defaultdict(collections.Counter)
    removed: Dict[str, list] = {}
    clusters = collections.defaultdict(list)
    for key in list(components.parent):
        root = components.find(key)
        if root == key:
            continue
        reason = "exact_duplicate" if key in exact else "near_duplicate"
        removed[key] = [reason, root]
        clusters[root].append(key)
        stats[f"removed_{reason}"] += 1
        by_file[paths[file_of(key)]][reason] += 1
    decontamination = {}
    if eval_fraction:
        def split(key):
            return "eval" if unit_hash(seed, "split", key) < eval_fraction else "train"
        moved = sum(1 for key, (_, root) in removed.items()
                    if split(key) == "eval" and split(root) == "train")
        dropped = sum(1 for key, (_, root) in removed.items()
                      if split(key) == "train" and split(root) == "eval")
        both = sum(1 for key, (_, root) in removed.items()
                   if split(key) == "eval" and split(root) == "eval")
        decontamination = {
            "eval_documents_with_a_duplicate_in_train": 0,
            "why_zero": "the split is drawn after dedup, from the kept documents: of each "
                        "cluster of duplicates one document is kept, in train or in eval",
            "eval_copies_removed_kept_in_train": moved,
            "train_copies_removed_kept_in_eval": dropped,
            "eval_copies_removed_kept_in_eval": both,
        }
    # A sample of clusters for people to look at: chosen by a hash of the kept key, so
    # the same on every run, and spread over the corpus.
    chosen = sorted(clusters, key=lambda root: hashlib.blake2b(
        root.encode(), digest_size=8).digest())[:config.removed_samples]
    samples = [{"kept": root, "removed": [[key, removed[key][0]]
                                          for key in sorted(clusters[root])[:5]],
                "cluster_size": 1 + len(clusters[root])} for root in sorted(chosen)]
    line_stats = {"lines_in_several_documents": len(lines)}
    merged = sum_stats(stats_parts + [dict(stats), line_stats,
                                      {"removed_by_file": {p: dict(c)
                                                           for p, c in by_file.items()}}
                                      if by_file else {}])
    return {"documents": removed, "lines": lines, "samples": samples, "stats": merged,
            "decontamination": decontamination}


class Fingerprint(beam.PTransform):
    """Pass 1: work items -> one decision dict."""

    def __init__(self, items, config: CleaningConfig, text_field: str, work: str,
                 paths: Sequence[str], seed: int, eval_fraction: float, partitions: int):
        super().__init__()
        self.items, self.config, self.text_field = items, config, text_field
        self.work, self.paths, self.partitions = work, list(paths), partitions
        self.seed, self.eval_fraction = seed, eval_fraction

    def expand(self, root):
        stats = (root
                 | "ListWorkItems" >> beam.Create(self.items)
                 | "SpreadWorkItems" >> beam.Reshuffle()
                 | "Fingerprint" >> beam.ParDo(FingerprintFn(self.config, self.text_field,
                                                             self.work, self.partitions)))
        partitions = self.partitions
        resolved = (stats
                    | "KeyStats" >> beam.Map(lambda e: (None, 1))
                    | "AfterEveryItem" >> beam.GroupByKey()
                    | "Partitions" >> beam.FlatMap(_partitions_after_all, partitions)
                    | "SpreadPartitions" >> beam.Reshuffle()
                    | "Resolve" >> beam.ParDo(ResolvePartitionFn(self.work,
                                                                 self.config.dedup_threshold)))
        config, paths, seed, fraction = self.config, self.paths, self.seed, self.eval_fraction
        return (
            (stats, resolved)
            | "FlattenDecisions" >> beam.Flatten()
            | "KeyAll" >> beam.Map(lambda e: (None, e))
            | "GroupAll" >> beam.GroupByKey()
            | "Decide" >> beam.Map(lambda g: decide(g[1], config, paths, seed, fraction))
        )


def partitions_for(total_bytes: int) -> int:
    """Group partitions: one per 4 MB of input (at least 4, at most 4,096), so that the
    worker resolving one holds the records of about 4 MB of text (~40 MB measured)."""
    return max(4, min(4096, -(-total_bytes // (4 << 20))))


def run_decision(options, items, files, config: CleaningConfig, text_field: str, seed: int,
                 eval_fraction: float, staging: str, console) -> tuple:
    """Pass 1 as a pipeline of its own; returns (decision, its path, seconds).

    The decision is written to <staging>/_cleaning/decision-<run id>.json, where pass 2's
    workers read it (the caller deletes _cleaning with the rest of the staging files).
    """
    work = posixpath.join(staging, "_cleaning")
    FileSystems.mkdirs(cache_dir(work))
    total_bytes = sum(size for _, size, _ in files)
    # A name of its own per run: a Dask worker outlives a job and caches decisions by path
    # (load_decision), and a rerun into the same output directory has the same staging.
    path = posixpath.join(work, f"decision-{uuid.uuid4().hex[:12]}.json")
    progress = ProgressPrinter(console, work, total_bytes, label="cleaning", instances=False)
    start = time.time()
    progress.start()
    root = beam.Pipeline(options=options)
    try:
        with root:
            _ = (root
                 | "Clean" >> Fingerprint(items, config, text_field, work,
                                          [p for p, _, _ in files], seed, eval_fraction,
                                          partitions_for(total_bytes))
                 | "WriteDecision" >> beam.Map(
                     lambda d: objects.write_text(path, json.dumps(d, sort_keys=True))))
    finally:
        progress.stop()
        seconds = time.time() - start
        close_dask_client(getattr(root, "result", None))
    return objects.read_json(path), path, seconds


def cleaning_line(stats: dict, seconds: float) -> str:
    """The console's one line on what cleaning removed."""
    quality = sum(v for k, v in stats.items() if k.startswith("removed_quality_"))
    return (f"cleaning: {stats.get('cleaning_documents_read', 0):,} documents read; removed "
            f"{stats.get('removed_exact_duplicate', 0):,} exact and "
            f"{stats.get('removed_near_duplicate', 0):,} near duplicates, "
            f"{quality:,} by quality rules; {stats.get('lines_in_several_documents', 0):,} lines found in "
            f"several documents (kept in the first only); {seconds:.1f} s")


def cache_dir(work: str) -> str:
    return posixpath.join(work, "documents")


def cache_file(cache: str, item) -> str:
    file_index, _, start, _, _ = item[0]
    return posixpath.join(cache, f"{file_index:06d}-{start:012d}.jsonl")


def read_cached(item, cache: str, progress=None):
    """A work item's documents as pass 1 read them (parsed, quality-filtered), from its
    cache file: (path, Document, doc key, range start) ..., as beam_stages.read_item.
    Pass 2 does not parse the raw input again (Wikipedia's markup is most of a read)."""
    paths = {file_index: path for file_index, path, _, _, _ in item}
    raw_bytes = sum((end if end is not None else FileSystems.match([path])[0].metadata_list[0]
                     .size_in_bytes) - start for _, path, start, end, _ in item)
    with FileSystems.open(cache_file(cache, item), compression_type="uncompressed") as f:
        data = f.read()
    if progress:  # the raw bytes the cache stands for, in proportion
        per_byte = (raw_bytes or len(data)) / max(len(data), 1)
    for line in data.splitlines():
        key, presplit, units = json.loads(line)
        file_index, rest = key.split("-", 1)
        start = int(rest.split(":", 1)[0])
        doc = Document(int(rest.rsplit(":", 1)[1]), units, presplit)
        if progress:
            progress.add(bytes=int(len(line) * per_byte), documents=1)
        yield paths[int(file_index)], doc, key, start


_DECISIONS: Dict[str, dict] = {}


def load_decision(path: str) -> dict:
    """The decision file, read once per process (Dask calls setup once per partition)."""
    if path not in _DECISIONS:
        with FileSystems.open(path) as f:
            decision = json.loads(f.read().decode("utf-8"))
        decision["sample_keys"] = {s["kept"] for s in decision["samples"]} | {
            key for s in decision["samples"] for key, _ in s["removed"]}
        _DECISIONS[path] = decision
    return _DECISIONS[path]


class Cleaner:
    """Pass 2: applies the decision to each document as it is read.

    `apply` returns the units to keep (repeated lines taken out) or None; it counts
    what it takes out in `stats` (documents removed are counted in pass 1).
    """

    def __init__(self, config: CleaningConfig, decision_path: str):
        self.config, self.decision_path = config, decision_path
        self.cache = cache_dir(posixpath.dirname(decision_path))
        self._samples: List[tuple] = []

    def documents(self, item, progress=None):
        """The work item's documents, read from pass 1's cache."""
        return read_cached(item, self.cache, progress)

    def setup(self):
        self.decision = load_decision(self.decision_path)

    def apply(self, doc_key: str, path: str, doc, stats) -> Optional[List[str]]:
        c, d = self.config, self.decision
        if doc_key in d["sample_keys"]:
            self._samples.append((SAMPLE, (doc_key, path, doc.ordinal,
                                           document_text(doc.units, doc.presplit))))
        if doc_key in d["documents"]:
            return None
        units = doc.units
        if d["lines"] and c.dedup_line_min_words:
            kept = []
            for unit in units:
                unit_words = words(unit)
                if len(unit_words) >= c.dedup_line_min_words:
                    keeper = d["lines"].get(digest(unit_words, 8).hex())
                    if keeper is not None and keeper != doc_key:
                        stats["removed_repeated_lines"] = stats.get("removed_repeated_lines",
                                                                    0) + 1
                        by_file = stats.setdefault("removed_by_file", {})
                        counts = by_file.setdefault(path, {})
                        counts["repeated_line"] = counts.get("repeated_line", 0) + 1
                        continue
                kept.append(unit)
            if not kept:
                stats["removed_all_lines_repeated"] = stats.get(
                    "removed_all_lines_repeated", 0) + 1
                counts = stats.setdefault("removed_by_file", {}).setdefault(path, {})
                counts["all_lines_repeated"] = counts.get("all_lines_repeated", 0) + 1
                return None
            units = kept
        return units

    def samples(self) -> List[tuple]:
        out, self._samples = self._samples, []
        return out


class WriteJsonlFn(beam.DoFn):
    """(index, work item) -> its kept documents as one JSONL shard; yields (WRITTEN,
    (file name, documents)), (SAMPLE, ...) and (STATS, counts)."""

    def __init__(self, cleaner: Cleaner, text_field: str, staging: str, num_items: int,
                 compress: bool):
        self.cleaner, self.text_field, self.staging = cleaner, text_field, staging
        self.num_items, self.compress = num_items, compress
        self.owner = uuid.uuid4().hex[:12]

    def setup(self):
        self.cleaner.setup()
        self.progress = ProgressFile.of(self.staging, self.owner)

    def finish_bundle(self):
        self.progress.flush()

    def process(self, element):
        index, item = element
        name = f"part-{index:05d}-of-{self.num_items:05d}.jsonl" + (".gz" if self.compress
                                                                       else "")
        stats, written = collections.Counter(), 0
        with FileSystems.create(posixpath.join(self.staging, name),
                                mime_type="application/octet-stream",
                                compression_type="uncompressed") as raw:
            out = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if self.compress else raw
            for path, doc, key, _ in self.cleaner.documents(item, self.progress):
                units = self.cleaner.apply(key, path, doc, stats)
                if units is None:
                    continue
                out.write(json.dumps({"text": document_text(units, doc.presplit)},
                                     ensure_ascii=False).encode("utf-8") + b"\n")
                written += 1
            if self.compress:
                out.close()
        stats["documents"] += written
        yield from self.cleaner.samples()
        yield WRITTEN, (name, written)
        yield STATS, dict(stats, work_items=1)


def write_samples(path: str, decision: dict, texts: Dict[str, list], paths: Sequence[str]
                  ) -> int:
    """removed_samples.jsonl: per sampled cluster, the kept document and the removed ones
    (up to 5), each with its file, ordinal and text. Returns the clusters written."""
    def member(key, reason=None):
        text = texts.get(key, (None, None, None))[2]
        out = {"file": paths[file_of(key)], "key": key, "text": text}
        if reason:
            out["reason"] = reason
        return out

    lines = []
    for sample in decision["samples"]:
        lines.append(json.dumps({
            "cluster_size": sample["cluster_size"], "kept": member(sample["kept"]),
            "removed": [member(key, reason) for key, reason in sample["removed"]]},
            ensure_ascii=False))
    objects.write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)
