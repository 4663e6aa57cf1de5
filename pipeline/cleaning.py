"""Corpus cleaning, document by document: quality rules and dedup fingerprints.

The Beam stages that use these (pipeline/clean_stages.py) decide, before
any document is bucketed, which documents and repeated lines to drop:

- exact duplicates: the hash of the document's normalized words (lower-cased,
  punctuation dropped), so copies that differ only in case, spacing or
  punctuation are one document;
- near duplicates: MinHash signatures (datasketch) of the word n-gram
  shingles, banded for LSH; documents that share a band are candidates, and a
  candidate pair is a duplicate only when the signatures estimate its Jaccard
  similarity at or above the threshold (so the threshold means what it says,
  whatever the banding);
- repeated lines: a paragraph (a sentence, for presplit corpora) of at least
  `line_min_words` words that occurs in several documents is kept in the first
  one only (boilerplate, a paragraph copied from another document);
- quality rules (Gopher / C4 style), each counted by name.

Everything here is a pure function of one document, so any worker computes
the same thing.
"""

import dataclasses
import hashlib
import re
import zlib
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

DEDUP_MODES = ("none", "exact", "near")
_WORD = re.compile(r"\w+")
_SYMBOL = re.compile(r"[^\w\s.,;:!?'\"()\[\]\-\u2013\u2014\u2018\u2019\u201c\u201d]|[\d_]")


@dataclasses.dataclass(frozen=True)
class CleaningConfig:
    """How a corpus is cleaned (recorded in info.json's generation block)."""

    dedup: str = "none"
    dedup_threshold: float = 0.8
    dedup_ngram_size: int = 5
    dedup_num_perm: int = 128
    dedup_bands: int = 16
    dedup_line_min_words: int = 10
    quality_filter: bool = False
    min_words: int = 5
    max_symbol_ratio: float = 0.3
    min_mean_word_length: float = 2.5
    max_mean_word_length: float = 12.0
    max_repeated_line_fraction: float = 0.5
    removed_samples: int = 100

    @property
    def enabled(self) -> bool:
        return self.dedup != "none" or self.quality_filter

    @property
    def rows(self) -> int:
        return self.dedup_num_perm // self.dedup_bands

    def check(self) -> Optional[str]:
        """The first flag that is out of range, as a message (None: all fine)."""
        if self.dedup not in DEDUP_MODES:
            return f"--dedup must be one of {', '.join(DEDUP_MODES)}, got {self.dedup!r}"
        if not 0.0 < self.dedup_threshold <= 1.0:
            return f"--dedup_threshold must be in (0, 1], got {self.dedup_threshold}"
        if self.dedup_bands < 1 or self.dedup_num_perm % self.dedup_bands:
            return (f"--dedup_bands ({self.dedup_bands}) must divide --dedup_num_perm "
                    f"({self.dedup_num_perm})")
        if self.min_mean_word_length > self.max_mean_word_length:
            return (f"--min_mean_word_length ({self.min_mean_word_length}) is above "
                    f"--max_mean_word_length ({self.max_mean_word_length})")
        return None

    def describe(self) -> str:
        """One line: what cleaning does with these settings."""
        parts = []
        if self.dedup == "exact":
            parts.append("dedup exact")
        elif self.dedup == "near":
            parts.append(
                f"dedup near (word {self.dedup_ngram_size}-gram Jaccard >= "
                f"{self.dedup_threshold}, MinHash {self.dedup_num_perm}, LSH "
                f"{self.dedup_bands} bands x {self.rows} rows)")
        if self.dedup != "none" and self.dedup_line_min_words:
            parts.append(f"lines of {self.dedup_line_min_words}+ words kept in their first "
                         "document only")
        if self.quality_filter:
            parts.append("quality rules on")
        return "; ".join(parts) or "none"


def define_flags(flags) -> None:
    """The cleaning flags (create_pretraining_data and clean_corpus share them)."""
    d = CleaningConfig()
    flags.DEFINE_enum("dedup", None, list(DEDUP_MODES),
                      "Remove duplicate documents before anything else: exact (normalized "
                      "text hash, plus repeated lines across documents) or near (exact, plus "
                      "MinHash/LSH near-duplicates).")
    flags.DEFINE_float("dedup_threshold", d.dedup_threshold,
                       "Near duplicates: the word n-gram Jaccard similarity at or above which "
                       "two documents are one.", lower_bound=0.05, upper_bound=1.0)
    flags.DEFINE_integer("dedup_ngram_size", d.dedup_ngram_size,
                         "Near duplicates: words per shingle.", lower_bound=1, upper_bound=50)
    flags.DEFINE_integer("dedup_num_perm", d.dedup_num_perm,
                         "Near duplicates: MinHash permutations.", lower_bound=16,
                         upper_bound=1024)
    flags.DEFINE_integer("dedup_bands", d.dedup_bands,
                         "Near duplicates: LSH bands (dividing --dedup_num_perm); more bands "
                         "find more candidates at lower similarity.", lower_bound=1,
                         upper_bound=1024)
    flags.DEFINE_integer("dedup_line_min_words", d.dedup_line_min_words,
                         "With --dedup: a paragraph (sentence, for presplit inputs) of at least "
                         "this many words is kept in the first document holding it only; "
                         "0: lines are not deduplicated.", lower_bound=0)
    flags.DEFINE_bool("quality_filter", d.quality_filter,
                      "Drop documents that break a quality rule (the next five flags), each "
                      "counted by rule.")
    flags.DEFINE_integer("min_words", d.min_words, "Quality: fewest words in a document.",
                         lower_bound=0)
    flags.DEFINE_float("max_symbol_ratio", d.max_symbol_ratio,
                       "Quality: largest share of digits and symbols among the non-space "
                       "characters.", lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_float("min_mean_word_length", d.min_mean_word_length,
                       "Quality: shortest mean word length (characters).", lower_bound=0.0)
    flags.DEFINE_float("max_mean_word_length", d.max_mean_word_length,
                       "Quality: longest mean word length (characters).", lower_bound=0.0)
    flags.DEFINE_float("max_repeated_line_fraction", d.max_repeated_line_fraction,
                       "Quality: largest share of a document's lines that repeat an earlier "
                       "line of the same document.", lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_integer("removed_samples", d.removed_samples,
                         "Removed duplicate clusters written, with their kept member, to "
                         "removed_samples.jsonl for inspection.", lower_bound=0)


FLAG_NAMES = tuple(f.name for f in dataclasses.fields(CleaningConfig))


def from_flags(values, default_dedup: str) -> CleaningConfig:
    """A CleaningConfig from parsed flag values (--dedup unset: default_dedup)."""
    kwargs = {name: values[name].value for name in FLAG_NAMES}
    if kwargs["dedup"] is None:
        kwargs["dedup"] = default_dedup
    return CleaningConfig(**kwargs)


# -- one document ------------------------------------------------------------------

def words(text: str) -> List[str]:
    """Normalized words: lower-cased runs of letters and digits (punctuation dropped)."""
    return _WORD.findall(text.lower())


def digest(text_words: Sequence[str], size: int = 16) -> bytes:
    return hashlib.blake2b(" ".join(text_words).encode(), digest_size=size).digest()


def quality_failure(units: Sequence[str], config: CleaningConfig) -> Optional[str]:
    """The name of the first quality rule a document breaks (None: it passes).

    Rules (Rae et al. 2021, "Gopher"; Raffel et al. 2020, "C4"), thresholds from
    the config; the defaults keep clean Wikipedia and books (tests/pipeline/
    test_cleaning.py measures the demo corpus):
        too_few_words, symbol_ratio, mean_word_length, repeated_lines.
    """
    text = "\n".join(units)
    tokens = text.split()
    if len(tokens) < config.min_words:
        return "too_few_words"
    characters = sum(len(t) for t in tokens)
    if characters and len(_SYMBOL.findall(text)) / characters > config.max_symbol_ratio:
        return "symbol_ratio"
    mean = characters / max(len(tokens), 1)
    if not config.min_mean_word_length <= mean <= config.max_mean_word_length:
        return "mean_word_length"
    lines = [" ".join(u.split()) for u in units if u.strip()]
    if len(lines) > 1:
        repeated = len(lines) - len(set(lines))
        if repeated / len(lines) > config.max_repeated_line_fraction:
            return "repeated_lines"
    return None


def shingles(text_words: Sequence[str], n: int) -> List[bytes]:
    """The document's distinct word n-grams (a shorter document is one shingle)."""
    if len(text_words) <= n:
        return [" ".join(text_words).encode()]
    return list({" ".join(text_words[i:i + n]).encode()
                 for i in range(len(text_words) - n + 1)})


_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: multiply-add over uint64 wraps, losing nothing


_WORD_HASHES: Dict[str, int] = {}
_WORD_HASHES_MAX = 2_000_000  # words; about 200 MB, then the cache starts over


def word_hashes(text_words: Sequence[str]) -> np.ndarray:
    """CRC-32 of each word (zlib, in C), through a per-process cache: a corpus's words
    repeat (Zipf), and a dict lookup is a fifth of encoding and hashing a word."""
    cache = _WORD_HASHES
    hashes = [cache.get(w) for w in text_words]
    if None in hashes:
        if len(cache) > _WORD_HASHES_MAX:
            cache.clear()
        for i, h in enumerate(hashes):
            if h is None:
                w = text_words[i]
                hashes[i] = cache[w] = zlib.crc32(w.encode())
    return np.array(hashes, dtype=np.uint64)


def shingle_hashes(text_words: Sequence[str], n: int) -> np.ndarray:
    """32-bit hashes of the document's distinct word n-grams (the set `shingles` names):
    each word hashed once, a shingle's hash a multiply-add chain over its n word hashes
    in numpy (a third of the time of hashing each joined shingle string, measured)."""
    h = word_hashes(text_words)
    count = max(1, len(h) - n + 1)
    acc = np.zeros(count, dtype=np.uint64)
    for k in range(min(n, len(h))):
        acc = acc * _MIX + h[k:k + count]
    return np.unique((acc ^ (acc >> np.uint64(32))) & np.uint64(0xFFFFFFFF))


class Fingerprinter:
    """MinHash signatures (datasketch's MinHash, its "affine32" scheme); clean_stages.Chunk
    cuts them into LSH bands.

    The permutations are drawn once from a fixed seed, so every worker computes the
    same signature for the same text. datasketch hashes each value it is given with
    `hashfunc` and mixes it with MurmurHash3's finalizer before permuting; it is given
    the shingles' 32-bit hashes (shingle_hashes), with `int` as hashfunc. One MinHash
    object is reused (cleared) for every document: a copy per document re-parses the
    permutations, a fifth of the time.
    """

    def __init__(self, config: CleaningConfig):
        from datasketch import MinHash

        self.config = config
        self._minhash = MinHash(num_perm=config.dedup_num_perm, seed=1, hashfunc=int)

    def signature(self, text_words: Sequence[str]) -> np.ndarray:
        m = self._minhash
        m.clear()
        m.update_batch(shingle_hashes(text_words, self.config.dedup_ngram_size).tolist())
        return np.array(m.hashvalues, dtype=np.uint32)


def sketch(signatures: np.ndarray) -> np.ndarray:
    """The signatures' lowest 8 bits (b-bit MinHash, Li and Koenig 2010), any shape: what
    a band record carries to verify its candidates, a quarter of the signature's size."""
    return (signatures & 0xFF).astype(np.uint8)


def estimated_jaccard(a: bytes, b: bytes) -> float:
    """Jaccard similarity from two 8-bit sketches: unrelated values agree 1 time in 256,
    which the estimate takes out."""
    agree = np.count_nonzero(np.frombuffer(a, np.uint8) == np.frombuffer(b, np.uint8))
    p = agree / len(a)
    return max(0.0, (p - 1 / 256) / (1 - 1 / 256))


def line_digests(unit_words: Iterable[Sequence[str]], min_words: int) -> Dict[bytes, int]:
    """{digest: position} of each distinct line (given as its words) with at least
    min_words words."""
    out: Dict[bytes, int] = {}
    for position, line in enumerate(unit_words):
        if len(line) >= min_words:
            out.setdefault(digest(line, 8), position)
    return out


def document_text(units: Sequence[str], presplit: bool) -> str:
    """A document's text as clean_corpus writes it: paragraphs apart by a blank line
    (our jsonl reader reads them back as paragraphs), sentences one per line."""
    return ("\n" if presplit else "\n\n").join(units)
