"""BERT's tokenization (basic tokenizer + WordPiece), exactly as google-research's.

Backed by Hugging Face `tokenizers`' WordPiece model with the BERT normalizer
and pre-tokenizer (Rust). Measured
on the 10,033 Wikipedia lead sections with the uncased vocab
(shared/MEASURED.md): 100.00% of lines get the same ids as the reference
FullTokenizer (`official.nlp.tools.tokenization`), where tensorflow-text's
tokenizers reach 99.87% (NFKC and case folding instead of Python's lower())
and keras-hub's 92.8% (an ASCII-only whitespace split). The Rust pipeline
does ~0.5M tokens/s per core; printable-ASCII sentences take a faster path
(a regular expression and a per-process word cache, ~2.3-3.5x fewer
CPU-seconds: see tokenize_batch). tests/pipeline/test_tokenization.py checks
the agreement on every line of the real lead sections, and on the sentences
the job cuts from them (both paths, cased and uncased).
"""

import re
from typing import Dict, List, Sequence

from apache_beam.io.filesystems import FileSystems
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from tfrecords.generation import MAX_CHARS_PER_WORD
from tfrecords.vocab import SPECIAL_TOKENS, parse_vocab


class VocabError(ValueError):
    """A vocabulary that cannot serve BERT instances; the message names the file."""


def load_vocab(path: str) -> List[str]:
    """vocab.txt from any Beam file system (local, gs://, s3://)."""
    try:
        with FileSystems.open(path) as f:
            raw = f.read()
    except (IOError, OSError) as e:
        raise VocabError(f"cannot read vocabulary file {path}: {e}") from None
    try:
        return parse_vocab(raw, path)
    except Exception as e:  # DatasetError: empty, not UTF-8, duplicates
        raise VocabError(str(e)) from None


# BERT's basic tokenizer on printable ASCII: whitespace separates, every character
# that is not a letter or digit is a word of its own (all of them are punctuation).
_ASCII_WORDS = re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9 ]").findall
# Words whose WordPieces a tokenizer keeps (~30 MB); cleared when full.
_CACHE_WORDS = 200_000


class BertTokenizer:
    """Text to WordPiece ids, BERT's way.

    Args:
        vocab: the tokens, index = id (see load_vocab).
        do_lower_case: lower-case and strip accents (uncased models).
        source: where the vocab came from, for error messages.

    Example:
        >>> tok = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s"])
        >>> tok.tokenize_batch(["The cats!"])
        [[5, 6, 7, 1]]
    """

    def __init__(self, vocab: Sequence[str], do_lower_case: bool = True, source: str = "vocab"):
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise VocabError(f"vocabulary {source} lacks BERT's special tokens {missing}")
        self.vocab = list(vocab)
        self.ids: Dict[str, int] = {token: i for i, token in enumerate(self.vocab)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.ids[t] for t in SPECIAL_TOKENS)
        self.do_lower_case = do_lower_case
        # Built from parts, not with BertWordPieceTokenizer: that one registers
        # [CLS], [SEP], [MASK]... as added tokens, so a literal "[MASK]" in the
        # text would become the mask id; the reference splits it into
        # "[", "mask", "]". strip_accents=None follows lowercase, as BERT's
        # basic tokenizer does.
        # Words longer than MAX_CHARS_PER_WORD (100) characters are [UNK], as in Hugging Face's BertTokenizer,
        # tf-text's and TF Hub's preprocessors and our SavedModel's in-graph tokenizer (so a
        # model sees the same ids in training and serving); tf-models' FullTokenizer cuts
        # them into pieces up to 400 characters (google-research's up to 200).
        tokenizer = Tokenizer(models.WordPiece(self.ids, unk_token="[UNK]",
                                               max_input_chars_per_word=MAX_CHARS_PER_WORD))
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None,
            lowercase=do_lower_case)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._tokenizer = tokenizer
        self._cache: Dict[str, List[int]] = {}
        self.is_continuation = [t.startswith("##") for t in self.vocab]
        # Random replacements in masking draw from real tokens only (not
        # [PAD], [CLS], [unused*]...): the reference draws from the whole
        # vocab, which can put [PAD] or [CLS] mid-sentence.
        self.replacement_ids = [
            i for i, t in enumerate(self.vocab)
            if not (t.startswith("[") and t.endswith("]"))
        ]
        if not self.replacement_ids:
            raise VocabError(f"vocabulary {source} holds only special tokens")

    def tokenize_batch(self, texts: Sequence[str]) -> List[List[int]]:
        """WordPiece ids of each text, without [CLS]/[SEP].

        Printable-ASCII texts (most of an English corpus) take a fast path
        with the same result: for them BERT's basic tokenizer is "lower-case,
        then runs of letters and digits, and every other character alone", a
        regular expression; each word's WordPieces come from a per-process
        cache, and the words not in it yet are encoded in one batch. Other
        texts go through the full Rust tokenizer. The fast path does ~4x
        fewer CPU-seconds per token than the Rust pipeline (whose normalizer,
        pre-tokenizer and Encoding objects cost more than WordPiece itself).
        """
        texts = list(texts)
        out: List[List[int]] = [[]] * len(texts)
        slow, words_of = [], []
        cache, missing = self._cache, set()
        for index, text in enumerate(texts):
            if text.isascii() and text.isprintable():
                words = _ASCII_WORDS(text.lower() if self.do_lower_case else text)
                words_of.append((index, words))
                missing.update(w for w in words if w not in cache)
            else:
                slow.append(index)
        if missing:
            if len(cache) + len(missing) > _CACHE_WORDS:
                # Bounded memory on any corpus: start again from this batch's words.
                cache.clear()
                missing = {w for _, words in words_of for w in words}
            missing = list(missing)
            for word, encoding in zip(missing, self._tokenizer.encode_batch_fast(
                    missing, add_special_tokens=False)):
                cache[word] = encoding.ids
        for index, words in words_of:
            ids: List[int] = []
            for word in words:
                ids += cache[word]
            out[index] = ids
        if slow:
            encodings = self._tokenizer.encode_batch_fast([texts[i] for i in slow],
                                                          add_special_tokens=False)
            for index, encoding in zip(slow, encodings):
                out[index] = encoding.ids
        return out
