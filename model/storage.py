"""Files of model and export directories, local or in the cloud, through tf.io.gfile.

A model directory may be `gs://bucket/run` (TPU and multi-worker training
keep it there): its config.json, vocab.txt, logs and metrics must go where
its checkpoints go. `open`, `os.path` and `os.replace` only know the local
disk: given `gs://b/m` they make a local folder named `gs:`. Everything in
model/ that touches a user's path goes through here instead. Writes are
whole-file (an object store has no append or in-place rename); a local
write goes to a temporary file first and is renamed into place.

Example:
    >>> write_text("/tmp/m/config.json", "{}")  # doctest: +SKIP
    >>> read_text("/tmp/m/config.json")  # doctest: +SKIP
    '{}'
"""

import os
import posixpath

import tensorflow as tf


def is_remote(path: str) -> bool:
    """True for a URL-style path (gs://, s3://, ram://, hdfs://)."""
    return "://" in str(path)


def join(path: str, *names: str) -> str:
    """os.path.join for local paths, '/'-joined for URLs."""
    return posixpath.join(path, *names) if is_remote(path) else os.path.join(path, *names)


def exists(path: str) -> bool:
    return tf.io.gfile.exists(path)


def isdir(path: str) -> bool:
    return tf.io.gfile.isdir(path)


def isfile(path: str) -> bool:
    return tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)


def makedirs(path: str) -> None:
    tf.io.gfile.makedirs(path)


def listdir(path: str) -> list:
    return [name.rstrip("/") for name in tf.io.gfile.listdir(path)]


def read_bytes(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def _replace_object(path: str, data) -> None:
    """One whole-object write. TensorFlow's ram:// file system appends to an existing file
    in "w" mode (measured: writing "a", then "a\\nb" reads back "a\\na\\nb"); object stores
    replace it, so there the old one is deleted first."""
    if path.startswith("ram://") and tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)
    with tf.io.gfile.GFile(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def write_text(path: str, text) -> None:
    """Writes the whole file (text, or bytes as they are): locally through a temporary
    file renamed into place (a reader never sees half of it), elsewhere as one object
    upload."""
    parent = posixpath.dirname(path) if is_remote(path) else os.path.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    if is_remote(path):
        _replace_object(path, text)
        return
    with tf.io.gfile.GFile(path + ".tmp", "wb" if isinstance(text, bytes) else "w") as f:
        f.write(text)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


write_bytes = write_text


def append_line(path: str, line: str) -> None:
    """Adds one line: appended locally, the object rewritten elsewhere (objects are
    immutable; a training log is small)."""
    if not is_remote(path):
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        return
    before = read_text(path) if tf.io.gfile.exists(path) else ""
    _replace_object(path, before + line + "\n")


def rmtree(path: str) -> None:
    """Deletes a directory tree if it exists."""
    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)


def move_tree(source: str, destination: str) -> None:
    """Renames a directory: one rename locally; file by file on object stores, which have
    no directories."""
    if not is_remote(source):
        os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
        os.replace(source, destination)
        return
    names = [posixpath.join(root, name) for root, _, files in tf.io.gfile.walk(source)
             for name in files]  # listed before anything moves
    for src in names:
        dst = destination + src[len(source):]
        tf.io.gfile.makedirs(posixpath.dirname(dst))
        tf.io.gfile.rename(src, dst, overwrite=True)
    tf.io.gfile.rmtree(source)
