"""Reading users' text files: UTF-8, with invalid bytes counted rather than hidden.

Imports nothing heavy (tensorflow only for URLs), so that `model.predict`
(tensorflow and tensorflow_text only) can use it too.
"""

from typing import Tuple

INVALID_UTF8 = "lines with invalid UTF-8 (bytes replaced by U+FFFD)"


def read_text(path: str) -> Tuple[str, int]:
    """(the file's text, how many of its lines had invalid UTF-8, decoded with U+FFFD).

    Local paths and URLs (gs://, through tf.io.gfile). Raises FileNotFoundError / OSError
    as open() does.

    Example:
        >>> text, bad = read_text("tests/fixtures/vocab.txt")  # doctest: +SKIP
    """
    if "://" in path:
        import tensorflow as tf
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                data = f.read()
        except tf.errors.NotFoundError:
            raise FileNotFoundError(2, "No such file or directory", path) from None
        except tf.errors.OpError as e:
            raise OSError(5, e.message, path) from None
    else:
        with open(path, "rb") as f:
            data = f.read()
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    lines, bad = data.split(b"\n"), 0
    for i, line in enumerate(lines):
        try:
            lines[i] = line.decode("utf-8")
        except UnicodeDecodeError:
            lines[i], bad = line.decode("utf-8", "replace"), bad + 1
    return "\n".join(lines), bad
