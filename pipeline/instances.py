"""Training instances from tokenized documents: google-research/bert's algorithm.

For each document, sentences are gathered into a chunk until the chunk
reaches a target length (max_seq_length - 3, or with probability
short_seq_prob a random length in [2, max]), drawn once per document and
pass as the reference does (`target_length_draw="per_instance"` draws it
again after every instance instead: fewer short sequences on long
documents, as this project did before); a random split point makes
segment A; segment B is the rest of the chunk (label 0) or, half of the
time, text from a random start in a *different* document (label 1), the
unused sentences of the chunk being put back. The pair is truncated from a
random end of the longer segment until it fits. Then masking
(pipeline.masking), unless masking is dynamic.

The reference draws the random document from the whole corpus held in
memory; here it is drawn from the document's bucket (a few thousand
documents chosen at random by hash), which keeps memory bounded.

Without next-sentence prediction (RoBERTa's DOC-SENTENCES), consecutive
sentences of a document are packed into one segment up to the target length.

Packing (RoBERTa's FULL-SENTENCES; --packing): the bucket's documents are
one token stream, each document followed by [SEP], cut into sequences of
exactly max_seq_length ([CLS] + L - 1 tokens), crossing document
boundaries; a sequence may start or end inside a document. Only the last
sequence of a pass is short. Each token carries its document piece's
number in the sequence (document_ids: 1, 2, ...), so that the trainer can
keep attention within a document. Every pass after the first starts the
stream at a random offset (wrapping around), so that dupe_factor > 1 gives
other sequence boundaries, not copies.
"""

import dataclasses
import random
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence

from pipeline.masking import MaskingConfig, mask_tokens
from tfrecords.generation import DEFAULT_MAX_SEQ_LENGTH

Sentence = List[int]
TokenizedDocument = List[Sentence]


@dataclasses.dataclass(frozen=True)
class InstanceConfig:
    """Generation parameters (google-research/bert's names and defaults)."""

    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    short_seq_prob: float = 0.1
    next_sentence_prediction: bool = True
    masking: str = "static"  # or "dynamic": no masked_lm_* features
    masked: MaskingConfig = MaskingConfig()
    packing: bool = False  # several documents per sequence (no NSP)
    # "per_document": the reference's (one target length per document and pass);
    # "per_instance": a new target after every instance.
    target_length_draw: str = "per_document"


class Instance(NamedTuple):
    """One training instance, unpadded."""

    input_ids: List[int]
    segment_ids: List[int]
    masked_lm_positions: Optional[List[int]]
    masked_lm_ids: Optional[List[int]]
    next_sentence_label: Optional[int]
    document_ids: Optional[List[int]] = None


@dataclasses.dataclass
class SpecialIds:
    cls_id: int
    sep_id: int
    mask_id: int
    is_continuation: Sequence[bool]
    replacement_ids: Sequence[int]


def truncate_pair(a: List[int], b: List[int], max_tokens: int, rng: random.Random) -> None:
    """Trims the longer segment, from a random end, until len(a) + len(b) fits.

    One token at a time as the reference does (the longer side, b on a tie; a coin
    for the end), counted first and cut with one slice per end.
    """
    la, lb = len(a), len(b)
    if la + lb <= max_tokens:
        return
    a_front = a_back = b_front = b_back = 0
    coin = rng.random
    while la + lb > max_tokens:
        if la > lb:
            la -= 1
            if coin() < 0.5:
                a_front += 1
            else:
                a_back += 1
        else:
            lb -= 1
            if coin() < 0.5:
                b_front += 1
            else:
                b_back += 1
    a[:] = a[a_front:len(a) - a_back]
    b[:] = b[b_front:len(b) - b_back]


def _target_length(config: InstanceConfig, max_tokens: int, rng: random.Random,
                   stats: Dict[str, int]) -> int:
    stats["targets"] = stats.get("targets", 0) + 1
    if rng.random() < config.short_seq_prob:
        stats["short_targets"] = stats.get("short_targets", 0) + 1
        return rng.randint(2, max_tokens)
    return max_tokens


def _pairs(documents: List[TokenizedDocument], index: int, config: InstanceConfig,
           rng: random.Random, stats: Dict[str, int]) -> Iterator[tuple]:
    """(tokens_a, tokens_b, is_random_next) for one document."""
    document = documents[index]
    max_tokens = config.max_seq_length - 3
    target = _target_length(config, max_tokens, rng, stats)
    chunk: List[Sentence] = []
    length = 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            a_end = 1 if len(chunk) < 2 else rng.randint(1, len(chunk) - 1)
            tokens_a = [t for s in chunk[:a_end] for t in s]
            tokens_b: List[int] = []
            if len(chunk) == 1:
                # As in the reference: one sentence cannot be split into A
                # and a true B, so B is random. This skews the label balance
                # above 50% on corpora of short documents.
                stats["nsp_forced_random"] = stats.get("nsp_forced_random", 0) + 1
                is_random_next = True
            else:
                is_random_next = rng.random() < 0.5
            if is_random_next and len(documents) < 2:
                # No other document in the bucket: B can only be the true next.
                stats["nsp_negative_unavailable"] = stats.get("nsp_negative_unavailable", 0) + 1
                is_random_next = False
            if is_random_next:
                other = rng.randrange(len(documents) - 1)
                other = other + 1 if other >= index else other  # never this document
                random_doc = documents[other]
                start = rng.randrange(len(random_doc))
                for sentence in random_doc[start:]:
                    tokens_b.extend(sentence)
                    if len(tokens_b) >= target - len(tokens_a):
                        break
                i -= len(chunk) - a_end  # put the unused sentences back
            else:
                tokens_b = [t for s in chunk[a_end:] for t in s]
            truncate_pair(tokens_a, tokens_b, max_tokens, rng)
            if tokens_a and tokens_b:
                yield tokens_a, tokens_b, is_random_next
            chunk, length = [], 0
            if config.target_length_draw == "per_instance":
                target = _target_length(config, max_tokens, rng, stats)
        i += 1


def _single_segments(document: TokenizedDocument, config: InstanceConfig,
                     rng: random.Random, stats: Dict[str, int]) -> Iterator[List[int]]:
    """Consecutive sentences packed up to the target length (no pairs)."""
    max_tokens = config.max_seq_length - 2
    target = _target_length(config, max_tokens, rng, stats)
    current: List[int] = []
    for sentence in document:
        if current and len(current) + len(sentence) > target:
            yield current[:max_tokens]
            current = []
            if config.target_length_draw == "per_instance":
                target = _target_length(config, max_tokens, rng, stats)
        current.extend(sentence)
    if current:
        yield current[:max_tokens]


def packed_sequences(documents: List[TokenizedDocument], config: InstanceConfig, cls_id: int,
                     sep_id: int, offset: int = 0) -> Iterator[tuple]:
    """(input_ids, document_ids) of the bucket's documents packed into full sequences.

    Example:
        >>> docs = [[[10, 11], [12]], [[20, 21, 22]]]
        >>> for ids, doc_ids in packed_sequences(docs, InstanceConfig(max_seq_length=5), 2, 3):
        ...     print(ids, doc_ids)
        [2, 10, 11, 12, 3] [1, 1, 1, 1, 1]
        [2, 20, 21, 22, 3] [1, 1, 1, 1, 1]
        >>> for ids, doc_ids in packed_sequences(docs, InstanceConfig(max_seq_length=4), 2, 3, 2):
        ...     print(ids, doc_ids)
        [2, 12, 3, 20] [1, 1, 1, 2]
        [2, 21, 22, 3] [1, 1, 1, 1]
        [2, 10, 11] [1, 1, 1]
    """
    tokens: List[int] = []
    tags: List[int] = []
    for index, document in enumerate(documents):
        for sentence in document:
            tokens.extend(sentence)
            tags.extend([index] * len(sentence))
        tokens.append(sep_id)
        tags.append(index)
    if offset:  # a rotation: the wrapped part is another piece even within one document
        n = len(documents)
        tokens = tokens[offset:] + tokens[:offset]
        tags = tags[offset:] + [t + n for t in tags[:offset]]
    step = config.max_seq_length - 1
    for start in range(0, len(tokens), step):
        chunk_tags = tags[start:start + step]
        if chunk_tags == [chunk_tags[0]] and tokens[start] == sep_id:
            continue  # a lone [SEP] left over from a document that just filled a sequence
        doc_ids, number, previous = [], 0, None
        for tag in chunk_tags:
            if tag != previous:
                number, previous = number + 1, tag
            doc_ids.append(number)
        yield [cls_id, *tokens[start:start + step]], [1, *doc_ids]


def create_instances(documents: List[TokenizedDocument], config: InstanceConfig,
                     rng: random.Random, ids: SpecialIds,
                     stats: Dict[str, int], pass_index: int = 0) -> Iterator[Instance]:
    """Every instance of one pass over a bucket of documents, in document order.

    Args:
        documents: tokenized documents (lists of sentences of ids); the
            bucket NSP negatives are drawn from.
        config: lengths, rates, modes.
        rng: the bucket's random source (derived from the seed and bucket).
        ids: special ids and vocabulary facts for masking.
        stats: counters updated in place (instances, NSP labels, masks).
        pass_index: which of the dupe_factor passes this is (packing starts later ones
            at a random offset).

    Example:
        >>> ids = SpecialIds(2, 3, 4, [False] * 50, list(range(5, 50)))
        >>> docs = [[[10, 11], [12, 13]], [[20, 21, 22]]]
        >>> inst = list(create_instances(docs, InstanceConfig(max_seq_length=16), random.Random(0), ids, {}))
        >>> inst[0].input_ids[0], inst[0].input_ids.count(3)
        (2, 2)
    """
    if config.packing:
        total = sum(len(s) for d in documents for s in d) + len(documents)
        offset = rng.randrange(total) if pass_index and total else 0
        for tokens, doc_ids in packed_sequences(documents, config, ids.cls_id, ids.sep_id,
                                                offset):
            yield from _finish(tokens, [0] * len(tokens), None, doc_ids, config, rng, ids, stats)
        return
    for index in range(len(documents)):
        if config.next_sentence_prediction:
            segments = (
                ([ids.cls_id, *a, ids.sep_id, *b, ids.sep_id],
                 [0] * (len(a) + 2) + [1] * (len(b) + 1), int(random_next), len(a) + 1)
                for a, b, random_next in _pairs(documents, index, config, rng, stats))
        else:
            segments = (([ids.cls_id, *a, ids.sep_id], [0] * (len(a) + 2), None, len(a) + 1)
                        for a in _single_segments(documents[index], config, rng, stats))
        for tokens, segment_ids, label, first_sep in segments:
            yield from _finish(tokens, segment_ids, label, None, config, rng, ids, stats,
                               first_sep)


def _finish(tokens, segment_ids, label, document_ids, config: InstanceConfig,
            rng: random.Random, ids: SpecialIds, stats: Dict[str, int],
            first_sep: Optional[int] = None) -> Iterator[Instance]:
    """Counts one instance and masks it (static masking) or leaves it to training."""
    stats["instances"] = stats.get("instances", 0) + 1
    stats["padding_positions"] = stats.get("padding_positions", 0) + \
        config.max_seq_length - len(tokens)
    if label is not None:
        key = "nsp_random_next" if label else "nsp_actual_next"
        stats[key] = stats.get(key, 0) + 1
    if config.masking == "dynamic":
        yield Instance(tokens, segment_ids, None, None, label, document_ids)
        return
    masked, positions, originals = mask_tokens(
        tokens, config.masked, rng, cls_id=ids.cls_id, sep_id=ids.sep_id, mask_id=ids.mask_id,
        is_continuation=ids.is_continuation, replacement_ids=ids.replacement_ids,
        first_sep=first_sep)
    stats["masked_tokens"] = stats.get("masked_tokens", 0) + len(positions)
    yield Instance(masked, segment_ids, positions, originals, label, document_ids)


