"""Writing shards without a global shuffle: per-bucket pieces, then a merge.

Each bucket writes its instances, already spread over the shards, into one
piece file per shard it touches: `<staging>/_pieces/<split>-NNNNN/<bucket key>.tfrecord`.
When every bucket is done, each shard is the concatenation of its pieces in
bucket order (TFRecord records are self-delimiting, so concatenation is a
byte copy; .gz shards are compressed while copying). Nothing of the
instances passes through the runner's shuffle, so memory does not grow with
the corpus, and the bytes of every shard depend only on the inputs and the
seed, not on how the runner split the work.

All I/O goes through Beam's FileSystems (local, gs://, s3://...).
"""

import gzip
import posixpath
import struct
from typing import Dict, Iterable, List, Tuple

import google_crc32c
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from tfrecords.shards import shard_name

PIECES_DIR = "_pieces"
# Beam's FileSystems compress by file suffix unless told not to: a .gz shard
# would be gzipped twice.
RAW = CompressionTypes.UNCOMPRESSED
_COPY_CHUNK = 8 << 20


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC32C of the length, data, masked CRC32C of data."""
    length = struct.pack("<Q", len(data))
    return length + _masked_crc(length) + data + _masked_crc(data)


def piece_path(staging: str, split: str, shard: int, bucket: str) -> str:
    return posixpath.join(staging, PIECES_DIR, f"{split}-{shard:05d}", f"{bucket}.tfrecord")


def write_pieces(staging: str, split: str, bucket: str,
                 records_by_shard: Dict[int, List[bytes]]) -> List[Tuple[str, int, str, int]]:
    """Writes one bucket's records; returns (split, shard, bucket key, count) per piece."""
    written = []
    for shard, records in sorted(records_by_shard.items()):
        if not records:
            continue
        path = piece_path(staging, split, shard, bucket)
        with FileSystems.create(path, compression_type=RAW) as f:
            f.write(b"".join(frame_record(r) for r in records))
        written.append((split, shard, bucket, len(records)))
    return written


def merge_shard(staging: str, split: str, shard: int, num_shards: int,
                pieces: Iterable[Tuple[str, int]], compress: bool) -> dict:
    """Concatenates a shard's pieces, (bucket key, count), in bucket-key order.

    Returns the shard's manifest entry {file, bytes, records}. An empty shard
    (a corpus smaller than the shard count) is written as an empty file, so
    the -of-NNNNN names stay whole.
    """
    name = shard_name(split, shard, num_shards, compress)
    path = posixpath.join(staging, name)
    records = 0
    with FileSystems.create(path, compression_type=RAW) as raw:
        # filename="" and mtime=0: no name or time in the header, so the bytes are reproducible
        out = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) if compress else raw
        for bucket, count in sorted(pieces):
            with FileSystems.open(piece_path(staging, split, shard, bucket),
                                  compression_type=RAW) as f:
                while True:
                    chunk = f.read(_COPY_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
            records += count
        if compress:
            out.close()
    size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    return {"file": name, "bytes": size, "records": records}
