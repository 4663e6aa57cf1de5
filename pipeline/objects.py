"""File and object-store operations of the jobs' output: whole trees (a dataset
directory on a local disk or under gs:// / s3://) read, listed, moved and deleted through
Beam's FileSystems, and the lock's view of them (BeamObjects, tfrecords/lock.py).
"""

import json
import os
from typing import List, Optional

from apache_beam.io.filesystems import FileSystems

from tfrecords.metadata import COMPLETED_FILE


def write_text(path: str, text: str) -> None:
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


def read_json(path: str):
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


class BeamObjects:
    """The output lock's file operations through Beam's FileSystems (tfrecords/lock.py)."""

    def read(self, path: str) -> Optional[str]:
        if not FileSystems.exists(path):
            return None
        return read_bytes(path).decode("utf-8")

    def exists(self, path: str) -> bool:
        return FileSystems.exists(path)

    def write(self, path: str, text: str) -> None:
        write_text(path, text)

    def remove(self, path: str) -> None:
        if FileSystems.exists(path):
            FileSystems.delete([path])


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type="uncompressed") as f:
        return f.read()


def delete_tree(path: str, keep: Optional[str] = None) -> None:
    """Deletes a directory; with keep, everything in it but that file (the job's log).

    On an object store a "directory" is a name prefix: every object under `path/` is
    deleted (Beam's GCS delete of `path` alone matches only an object of that name, which
    left a dataset's _pieces/ and an old staging directory's files in place: seen on the
    emulator)."""
    if "://" in path:
        under = objects_under(path)
        under += [path] if FileSystems.exists(path) else []
        if keep:
            under = [name for name in under if not name.endswith("/" + keep)]
        if under:
            FileSystems.delete(under)
        return
    if not FileSystems.exists(path):
        return
    if keep and "://" not in path and os.path.exists(os.path.join(path, keep)):
        for name in os.listdir(path):
            if name != keep:
                FileSystems.delete([os.path.join(path, name)])
        return
    FileSystems.delete([path])


def objects_under(path: str) -> List[str]:
    """Every file below a directory of an object store (its name is their prefix)."""
    return [m.path for r in FileSystems.match([path.rstrip("/") + "/**"])
            for m in r.metadata_list]


def tree_exists(path: str) -> bool:
    """A directory exists; on an object store, when an object has its name as prefix (a
    "directory" there is no object: FileSystems.exists says False, and an old dataset
    was not moved aside before the new one came, leaving its extra shards: seen on the
    emulator)."""
    if "://" not in path:
        return FileSystems.exists(path)
    return bool(objects_under(path))


def move_tree(source: str, destination: str) -> None:
    """Renames a directory: one atomic rename on local disks; file by file on object
    stores, which have no directories (COMPLETED, written last, is moved last)."""
    if "://" not in source:
        FileSystems.rename([source], [destination])
        return
    names = objects_under(source)
    names.sort(key=lambda n: n.endswith("/" + COMPLETED_FILE))
    FileSystems.rename(names, [destination + n[len(source):] for n in names])

