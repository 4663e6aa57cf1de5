"""The dataset directory: shards, vocab.txt, info.json, stats.json, COMPLETED.

A generator writes shards named `<split>-NNNNN-of-MMMMM.tfrecord[.gz]` and
vocab.txt, then calls `finalize_dataset()`, which records every shard's byte
size in info.json, writes stats.json, and writes COMPLETED last. A reader
calls `open_dataset()`, which refuses a directory without COMPLETED, a
missing, extra or resized (truncated) shard, and metadata that does not
parse, each with one message naming the path.

All I/O goes through tf.io.gfile, so local paths, gs:// and s3:// work alike;
TensorFlow is imported only inside the functions that touch files, so a Beam
pipeline can finalize with its own file system (see `finalize_dataset`)
without loading TensorFlow.
"""

import dataclasses
import json
import posixpath
from typing import Callable, Dict, List, Mapping, Optional, Union

from tfrecords.features import FeatureSpec, FeatureSpecError
from tfrecords.generation import Generation
from tfrecords.shards import DatasetError, count_records, list_shards

FORMAT_VERSION = 1
PROJECT_VERSION = "0.1.0"
INFO_FILE = "info.json"
STATS_FILE = "stats.json"
COMPLETED_FILE = "COMPLETED"
VOCAB_FILE = "vocab.txt"


def _gfile_write(path: str, text: str) -> None:
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)


def _to_json(data: Mapping) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def measure_shards(directory: str) -> Dict[str, List[dict]]:
    """Split -> [{file, bytes, records}] for the shards in `directory`.

    Counting reads every shard once more (~450 MB/s here) and checks each
    CRC, so a dataset is never marked COMPLETED over a bad shard.
    """
    import tensorflow as tf

    splits = list_shards(directory)
    if not splits:
        raise DatasetError(f"{directory} holds no shards named <split>-NNNNN-of-MMMMM.tfrecord[.gz]")
    return {
        split: [
            {
                "file": name,
                "bytes": tf.io.gfile.stat(posixpath.join(directory, name)).length,
                "records": count_records(posixpath.join(directory, name)),
            }
            for name in names
        ]
        for split, names in splits.items()
    }


def _read_json(path: str) -> dict:
    import tensorflow as tf

    try:
        with tf.io.gfile.GFile(path, "r") as f:
            return json.loads(f.read())
    except tf.errors.NotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON: {e}") from None


def finalize_dataset(
    directory: str,
    *,
    spec: FeatureSpec,
    generation: Union[Generation, Mapping],
    inputs: List[str],
    stats: Mapping,
    shards: Optional[Mapping[str, List[dict]]] = None,
    write_file: Optional[Callable[[str, str], None]] = None,
) -> dict:
    """Writes info.json (with the shard manifest), stats.json, then COMPLETED.

    Args:
        directory: a dataset directory whose shards (and vocab.txt) are written.
        spec: the features the shards hold.
        generation: every generation parameter (max_seq_length, masking, seed...).
        inputs: the input files or patterns the dataset was made from.
        stats: documents, sentences, tokens, instances, skipped-by-reason counts.
        shards: the manifest, split -> [{file, bytes, records}], when the
            writer already knows it; by default it is measured from the files.
        write_file: writes a text file (path, text); default tf.io.gfile.

    Returns:
        The info dict written.

    Example:
        >>> finalize_dataset("/tmp/ds", spec=FeatureSpec(128, 20),
        ...                  generation={"dupe_factor": 10}, inputs=["wiki.xml.bz2"],
        ...                  stats={"instances": 0})  # doctest: +SKIP
    """
    shards = shards if shards is not None else measure_shards(directory)
    info = {
        "format_version": FORMAT_VERSION,
        "project_version": PROJECT_VERSION,
        "features": spec.to_json(),
        "generation": (generation.to_dict() if isinstance(generation, Generation)
                       else dict(generation)),
        "inputs": list(inputs),
        "shards": shards,
    }
    write = write_file or _gfile_write
    write(posixpath.join(directory, INFO_FILE), _to_json(info))
    write(posixpath.join(directory, STATS_FILE), _to_json(dict(stats)))
    write(posixpath.join(directory, COMPLETED_FILE), "complete\n")
    return info


@dataclasses.dataclass(frozen=True)
class Dataset:
    """An opened, checked dataset directory.

    Attributes:
        directory: the directory path.
        spec: the FeatureSpec from info.json.
        info: info.json as a dict.
        stats: stats.json as a dict.
    """

    directory: str
    spec: FeatureSpec
    info: dict
    stats: dict

    def num_records(self, split: str = "train") -> int:
        """Records in one split, from the manifest (no reading)."""
        self.files(split)
        return sum(s["records"] for s in self.info["shards"][split])

    def files(self, split: str = "train") -> List[str]:
        """Full paths of one split's shards, in order."""
        shards = self.info["shards"].get(split)
        if not shards:
            raise DatasetError(
                f"{self.directory} has no '{split}' split (it has: "
                f"{', '.join(sorted(self.info['shards'])) or 'none'})"
            )
        return [posixpath.join(self.directory, s["file"]) for s in shards]

    @property
    def splits(self) -> List[str]:
        return sorted(self.info["shards"])

    @property
    def vocab_file(self) -> Optional[str]:
        import tensorflow as tf

        path = posixpath.join(self.directory, VOCAB_FILE)
        return path if tf.io.gfile.exists(path) else None


def _check_info(info, info_path: str) -> None:
    """info.json's structure, checked before anything reads it: one line naming the field
    (a hand-edited or foreign info.json must not surface as a TypeError/KeyError later)."""
    def fail(what):
        raise DatasetError(f"{info_path}: {what}")

    if not isinstance(info, dict):
        fail(f"expected a JSON object, got {type(info).__name__}")
    if not isinstance(info.get("features", {}), dict):
        fail("'features' must be an object")
    if not isinstance(info.get("generation", {}), dict):
        fail("'generation' must be an object")
    shards = info.get("shards")
    if not isinstance(shards, dict) or not shards:
        fail("lists no shards ('shards' must be an object of split -> list of shards)")
    for split, entries in shards.items():
        if not isinstance(entries, list):
            fail(f"shards.{split} must be a list, got {type(entries).__name__}")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                fail(f"shards.{split}[{i}] must be an object, got {type(entry).__name__}")
            for key, kind in (("file", str), ("bytes", int), ("records", int)):
                value = entry.get(key)
                if not isinstance(value, kind) or isinstance(value, bool) or (
                        kind is int and value < 0):
                    fail(f"shards.{split}[{i}].{key} must be "
                         f"{'a file name' if kind is str else 'a non-negative integer'}, "
                         f"got {value!r}")
            if "/" in entry["file"] or entry["file"] in ("", ".", ".."):
                fail(f"shards.{split}[{i}].file must be a file name in the dataset directory, "
                     f"got {entry['file']!r}")


def open_dataset(directory: str) -> Dataset:
    """Opens a dataset directory after checking it is whole.

    Raises DatasetError (naming the directory or file) when COMPLETED is
    missing, info.json or stats.json do not parse, a listed shard is missing
    or has another size than recorded (a truncated copy), or a shard is
    present that info.json does not list.

    Example:
        >>> ds = open_dataset("data/wiki_dataset")  # doctest: +SKIP
        >>> ds.spec.max_seq_length  # doctest: +SKIP
        128
    """
    import tensorflow as tf

    directory = directory.rstrip("/")
    if not tf.io.gfile.isdir(directory):
        raise DatasetError(f"{directory} is not a directory")
    if not tf.io.gfile.exists(posixpath.join(directory, COMPLETED_FILE)):
        raise DatasetError(
            f"{directory} has no {COMPLETED_FILE} file: the dataset is incomplete "
            "(its generator did not finish, or is still running). Rerun the generator."
        )
    info_path = posixpath.join(directory, INFO_FILE)
    info = _read_json(info_path)
    _check_info(info, info_path)
    version = info.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"{info_path}: format_version {version!r} is not supported "
            f"(this reader knows version {FORMAT_VERSION})"
        )
    try:
        spec = FeatureSpec.from_json(info.get("features", {}), source=info_path)
    except FeatureSpecError as e:
        raise DatasetError(str(e)) from None
    stats = _read_json(posixpath.join(directory, STATS_FILE))
    if not isinstance(stats, dict):
        raise DatasetError(f"{posixpath.join(directory, STATS_FILE)} is not a JSON object")
    listed = info["shards"]
    present = {name for names in list_shards(directory).values() for name in names}
    for split, shards in listed.items():
        for shard in shards:
            path = posixpath.join(directory, shard["file"])
            if shard["file"] not in present:
                raise DatasetError(f"{path} is listed in info.json but missing")
            size = tf.io.gfile.stat(path).length
            if size != shard["bytes"]:
                raise DatasetError(
                    f"{path} is {size} bytes but was written as {shard['bytes']} bytes: "
                    "the shard is truncated or corrupted (copy it again or regenerate)"
                )
            present.discard(shard["file"])
    if present:
        raise DatasetError(
            f"{directory} holds shards that info.json does not list: "
            f"{', '.join(sorted(present))} (left over from another run?)"
        )
    return Dataset(directory=directory, spec=spec, info=info, stats=stats)
