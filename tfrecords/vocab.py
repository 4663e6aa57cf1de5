"""Reading a WordPiece vocab.txt: one token per line, the line number is the id."""

from typing import Dict, List, Sequence

from tfrecords.generation import MAX_CHARS_PER_WORD
from tfrecords.shards import DatasetError

# BERT's special tokens: every vocabulary of both stages has them (in any order;
# the pipeline's vocabulary learner puts [PAD] first, [unusedN] after it).
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def parse_vocab(raw: bytes, source: str) -> List[str]:
    """The tokens of vocab.txt bytes, index = id; errors name `source`.

    Raises DatasetError when the bytes are empty, not UTF-8, or list a token
    twice (a duplicate would silently shift every later id).

    Example:
        >>> parse_vocab(b"[PAD]\\n[UNK]\\nthe\\n", "vocab.txt")
        ['[PAD]', '[UNK]', 'the']
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"vocabulary file {source} is not UTF-8 ({e})") from None
    tokens = [line.strip() for line in text.splitlines()]
    while tokens and not tokens[-1]:
        tokens.pop()
    if not tokens:
        raise DatasetError(f"vocabulary file {source} is empty")
    seen = {}
    for index, token in enumerate(tokens):
        if token in seen:
            raise DatasetError(
                f"vocabulary file {source} lists {token!r} twice (lines {seen[token] + 1} "
                f"and {index + 1})")
        seen[token] = index
    return tokens


def read_vocab(path: str) -> List[str]:
    """The tokens of a vocab.txt (local, gs://, s3://), index = id.

    Example:
        >>> tokens = read_vocab("tests/fixtures/vocab.txt")  # doctest: +SKIP
        >>> tokens[0]  # doctest: +SKIP
        '[PAD]'
    """
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            raw = f.read()
    except tf.errors.NotFoundError:
        raise DatasetError(f"vocabulary file {path} does not exist") from None
    return parse_vocab(raw, path)


def special_ids(vocab: Sequence[str], source: str = "vocabulary") -> Dict[str, int]:
    """{token: id} of BERT's SPECIAL_TOKENS; a DatasetError naming `source` when one lacks.

    Example:
        >>> special_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the"])["[MASK]"]
        4
    """
    index = {t: i for i, t in enumerate(vocab)}
    missing = [t for t in SPECIAL_TOKENS if t not in index]
    if missing:
        raise DatasetError(f"{source} lacks BERT's special tokens {missing}")
    return {t: index[t] for t in SPECIAL_TOKENS}


def is_unused(token: str) -> bool:
    """BERT's placeholder slots, "[unused0]".."[unused993]": free for domain words."""
    return token.startswith("[unused") and token.endswith("]") and token[7:-1].isdigit()


def wordpiece(word: str, index: Dict[str, int], max_chars: int = MAX_CHARS_PER_WORD) -> List[int]:
    """The WordPiece ids of one already-normalized word: greedy longest match first,
    continuations prefixed "##"; [UNK] alone when any part has no match (BERT's rule).

    The one definition of "the pieces a word had in the base vocabulary", shared by
    the domain-vocabulary builder (pipeline) and the row initialization (model).

    Example:
        >>> index = {t: i for i, t in enumerate(["[UNK]", "run", "##ning", "##n", "##s"])}
        >>> wordpiece("running", index), wordpiece("runs", index), wordpiece("runx", index)
        ([1, 2], [1, 4], [0])
    """
    if len(word) > max_chars:
        return [index["[UNK]"]]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in index:
                pieces.append(index[piece])
                break
            end -= 1
        else:
            return [index["[UNK]"]]
        start = end
    return pieces
