"""Learns a WordPiece vocabulary in BERT's layout from a corpus.

Command line:
    python -m pipeline.build_vocab --input_file 'data/wiki_leads/*.jsonl' --input_format jsonl \\
        --vocab_size 30522 --do_lower_case --output_file vocab.txt [--sample_fraction 0.1]

Layout: [PAD]=0, [unused0]..[unusedN-1], [UNK], [CLS], [SEP], [MASK], then
the learned pieces (the alphabet, whole words and "##" continuations),
exactly --vocab_size lines.

Domain vocabulary (--base_vocab_file, see domain_vocab): a published model's
vocabulary with its [unused*] slots filled by the corpus's most useful words,
every other id unchanged, so that the published checkpoint still fits.

Learner: Hugging Face tokenizers' WordPieceTrainer (Rust). Measured on
4.9 MB of lead sections, 30k entries (shared/MEASURED.md): ~2 s and ~60 MB,
against ~115 s and ~750 MB for keras-hub's compute_word_piece_vocabulary
(tensorflow-text's bert_vocab_from_dataset), which also stopped at ~10.7k
entries on that corpus (its lower_thresh=10 is not exposed by keras-hub).
Its output can differ between runs in a few entries at the frequency
cut-off (see build_vocab). The trainer streams documents and holds only word counts, which grow with
the number of distinct words, not with the corpus; for corpora whose
distinct words do not fit, --sample_fraction keeps a deterministic
(hash-chosen) fraction of the documents.
"""

import collections
import hashlib
import sys
import time
from typing import Dict, Iterator, List, Sequence, Tuple

from apache_beam.io.filesystems import FileSystems
from tokenizers import BertWordPieceTokenizer, normalizers, pre_tokenizers

from pipeline import readers
from pipeline.inputs import UsageError, parse_input
from tfrecords.vocab import SPECIAL_TOKENS, is_unused, wordpiece

def special_tokens(num_unused: int) -> List[str]:
    """BERT's layout: [PAD], [unused0..], [UNK], [CLS], [SEP], [MASK]."""
    pad, *rest = SPECIAL_TOKENS
    return [pad, *(f"[unused{i}]" for i in range(num_unused)), *rest]


def iter_texts(files: Sequence[Tuple[str, str]], text_field: str, sample_fraction: float,
               counts: dict) -> Iterator[str]:
    """Every document's text units (sentences or paragraphs), sampled by document.

    Args:
        files: (path, input format) pairs.
    """
    last = time.time()
    for file_index, (path, input_format) in enumerate(files):
        def skip(reason):
            counts[f"skipped_{reason}"] = counts.get(f"skipped_{reason}", 0) + 1
        with FileSystems.open(path, compression_type="uncompressed") as f:
            for doc in readers.read_documents(path, f, input_format, skip, text_field):
                if sample_fraction < 1.0:
                    key = f"{file_index}:{doc.ordinal}".encode()
                    draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
                    if draw / 2.0 ** 64 >= sample_fraction:
                        continue
                counts["documents"] = counts.get("documents", 0) + 1
                if time.time() - last > 10:
                    last = time.time()
                    print(f"[build_vocab] {counts['documents']:,} documents read", file=sys.stderr,
                          flush=True)
                yield from doc.units


def build_vocab(files: Sequence[str], *, input_format: str, vocab_size: int,
                do_lower_case: bool = True, num_unused: int = 99, min_frequency: int = 2,
                text_field: str = "text", sample_fraction: float = 1.0) -> List[str]:
    """Learns the vocabulary; returns its tokens in id order.

    Example:
        >>> vocab = build_vocab(["tests/fixtures/corpus/sentences.txt"], input_format="sentences",
        ...                     vocab_size=200, num_unused=2, min_frequency=1)
        >>> vocab[:5], len(vocab)
        (['[PAD]', '[unused0]', '[unused1]', '[UNK]', '[CLS]'], 200)
    """
    specials = special_tokens(num_unused)
    if vocab_size <= len(specials):
        raise UsageError(f"--vocab_size {vocab_size} leaves no room after {len(specials)} "
                         "special tokens")
    counts: dict = {}
    tokenizer = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True,
                                       strip_accents=None, lowercase=do_lower_case)
    tokenizer.train_from_iterator(
        iter_texts([parse_input(f, input_format)[::-1] for f in files], text_field,
                   sample_fraction, counts),
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
        limit_alphabet=1000, wordpieces_prefix="##", show_progress=False)
    learned = set(tokenizer.get_vocab()) - set(specials)
    # The trainer breaks frequency ties in hash-map order, which Rust seeds at
    # random: two runs on the lead sections differed in 8-22 of 30,522 entries
    # (all at the frequency cut-off). The order is made canonical here, so
    # equal sets give equal files: characters, "##" characters, then the rest
    # sorted. (Ids carry no frequency meaning for BERT.)
    tokens = specials + sorted(learned, key=lambda t: (
        0 if len(t) == 1 else 1 if (t.startswith("##") and len(t) == 3) else 2, t))
    if not counts.get("documents"):
        raise UsageError("no documents were read from the input (see the skipped counts: "
                         f"{counts})")
    print(f"[build_vocab] learned {len(tokens):,} entries from {counts['documents']:,} "
          f"documents; {counts}", file=sys.stderr)
    return tokens


def domain_vocab(files: Sequence[str], base: Sequence[str], *, input_format: str,
                 do_lower_case: bool = True, min_frequency: int = 2, text_field: str = "text",
                 sample_fraction: float = 1.0) -> Tuple[List[str], List[Dict]]:
    """The base vocabulary with its [unused*] slots filled by the corpus's words.

    The candidates are whole words (BERT's basic tokenization, lower-cased if
    do_lower_case) seen at least min_frequency times that the base vocabulary
    splits into 2 or more pieces. The most useful go first, into the lowest
    [unused*] ids: usefulness is count x (pieces - 1), the sequence positions
    the word saves over the corpus. Every other id keeps its token and the size
    is the base's, so a checkpoint trained with `base` still fits; model.pretrain
    --init_checkpoint starts each new word's embedding row at the mean of its
    pieces' rows (model/training/warm_start.py).

    Returns:
        (tokens in id order, one record per filled slot: id, slot, word, count, pieces).

    Example:
        >>> base = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "t", "h", "e",
        ...         "##h", "##e"]
        >>> tokens, filled = domain_vocab(["tests/fixtures/corpus/sentences.txt"], base,
        ...                               input_format="sentences", min_frequency=1)
        >>> tokens[1], filled[0]["pieces"]
        ('the', ['t', '##h', '##e'])
    """
    slots = [i for i, token in enumerate(base) if is_unused(token)]
    if not slots:
        raise UsageError("--base_vocab_file has no [unused*] slots to fill")
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                            strip_accents=None, lowercase=do_lower_case)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: dict = {}
    words: collections.Counter = collections.Counter()
    for unit in iter_texts([parse_input(f, input_format)[::-1] for f in files], text_field,
                           sample_fraction, counts):
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(unit)))
    if not counts.get("documents"):
        raise UsageError("no documents were read from the input (see the skipped counts: "
                         f"{counts})")
    index = {token: i for i, token in enumerate(base)}
    candidates = []
    for word, count in words.items():
        if count < min_frequency or word in index:
            continue
        pieces = wordpiece(word, index)
        if len(pieces) >= 2:  # a word that is [UNK] as a whole has no pieces to start from
            candidates.append((count * (len(pieces) - 1), count, word, pieces))
    candidates.sort(key=lambda c: (-c[0], -c[1], c[2]))
    tokens, filled = list(base), []
    for slot, (_, count, word, pieces) in zip(slots, candidates):
        filled.append({"id": slot, "slot": base[slot], "word": word, "count": count,
                       "pieces": [base[p] for p in pieces]})
        tokens[slot] = word
    print(f"[build_vocab] filled {len(filled):,} of {len(slots):,} [unused*] slots from "
          f"{counts['documents']:,} documents ({len(candidates):,} candidate words); {counts}",
          file=sys.stderr)
    return tokens, filled
