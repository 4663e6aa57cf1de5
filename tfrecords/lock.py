"""An output-directory lock: one writer per dataset directory at a time.

`OUTPUT.lock`, beside the directory it guards (so it outlives the swap of a
staged dataset into place), is created atomically (O_CREAT | O_EXCL) and
names the host, pid and start time of its owner. A second writer fails at
once with one line naming the lock; a lock left by a dead process on this
host is taken over with a warning. On object stores (gs://, s3://) there is
no atomic exclusive create: there the lock is written and checked, which
catches runs started seconds apart but not a race within the same second.

Example:
    >>> with OutputLock("/tmp/ds"):  # doctest: +SKIP
    ...     write_the_dataset()
"""

import json
import os
import socket
import sys
import time
from typing import Optional


class LockError(Exception):
    """Another live process holds the lock; the message names it and the lock file."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class GFileObjects:
    """Whole-file operations on object stores through tf.io.gfile (the default)."""

    def read(self, path: str) -> Optional[str]:
        import tensorflow as tf
        try:
            with tf.io.gfile.GFile(path, "r") as f:
                return f.read()
        except tf.errors.NotFoundError:
            return None

    def exists(self, path: str) -> bool:
        import tensorflow as tf
        return tf.io.gfile.exists(path)

    def write(self, path: str, text: str) -> None:
        import tensorflow as tf
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)

    def remove(self, path: str) -> None:
        import tensorflow as tf
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)


class OutputLock:
    """Context manager holding `<directory>.lock` for the duration of a write.

    Args:
        objects: how lock files on object stores are read and written (read, exists,
            write, remove); the pipeline passes Beam's FileSystems, so that the lock
            goes where its job's files go, with the job's credentials.
    """

    def __init__(self, directory: str, objects=None):
        self.objects = objects or GFileObjects()
        self.directory = directory.rstrip("/")
        self.path = self.directory + ".lock"
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(),
                      "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self._held = False

    def _remote(self) -> bool:
        return "://" in self.path

    def _read(self) -> Optional[dict]:
        """The owner the lock file names; None when the file is gone (its owner just
        released it), {} when it cannot be parsed (being written)."""
        if self._remote():
            text = self.objects.read(self.path)
        else:
            try:
                with open(self.path, encoding="utf-8") as f:
                    text = f.read()
            except FileNotFoundError:
                text = None
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return {}

    def _create(self) -> bool:
        text = json.dumps(self.owner) + "\n"
        if self._remote():
            if self.objects.exists(self.path):
                return False
            self.objects.write(self.path, text)
            return True
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return True

    def acquire(self) -> "OutputLock":
        for _ in range(3):
            if self._create():
                self._held = True
                return self
            owner = self._read()
            if owner is None:  # released between our attempt and our read: try again
                continue
            stale = (owner.get("host") == self.owner["host"]
                     and isinstance(owner.get("pid"), int) and not _alive(owner["pid"]))
            if not stale:
                who = (f"pid {owner.get('pid')} on {owner.get('host')} since "
                       f"{owner.get('started')}" if owner else "another process")
                raise LockError(f"{self.directory} is being written by {who} (lock file "
                                f"{self.path}; delete it only if that job is gone)")
            print(f"warning: taking over {self.path}, left by pid {owner['pid']} on this host, "
                  f"which is no longer running", file=sys.stderr)
            self._remove()
        raise LockError(f"could not take {self.path}: other processes keep taking it")

    def _remove(self):
        if self._remote():
            self.objects.remove(self.path)
        else:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def release(self):
        if self._held:
            self._held = False
            self._remove()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
