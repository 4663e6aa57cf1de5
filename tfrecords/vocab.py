"""Reading a WordPiece vocab.txt: one token per line, the line number is the id."""

from typing import List

import tensorflow as tf

from tfrecords.shards import DatasetError


def read_vocab(path: str) -> List[str]:
    """The tokens of a vocab.txt, index = id (trailing newline and spaces removed).

    Raises DatasetError naming the file when it is missing, empty, not UTF-8,
    or lists a token twice.

    Example:
        >>> tokens = read_vocab("tests/fixtures/vocab.txt")  # doctest: +SKIP
        >>> tokens[0]  # doctest: +SKIP
        '[PAD]'
    """
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            raw = f.read()
    except tf.errors.NotFoundError:
        raise DatasetError(f"vocabulary file {path} does not exist") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"vocabulary file {path} is not UTF-8 ({e})") from None
    tokens = [line.strip() for line in text.splitlines()]
    while tokens and not tokens[-1]:
        tokens.pop()
    if not tokens:
        raise DatasetError(f"vocabulary file {path} is empty")
    seen = {}
    for index, token in enumerate(tokens):
        if token in seen:
            raise DatasetError(
                f"vocabulary file {path} lists {token!r} twice (lines {seen[token] + 1} "
                f"and {index + 1})"
            )
        seen[token] = index
    return tokens
