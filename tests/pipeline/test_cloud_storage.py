"""The pipeline on gs://, against a real GCS emulator server the test starts.

gcp-storage-emulator (PyPI) serves the GCS JSON API on localhost; Beam's
gs:// file system (google-cloud-storage) honours STORAGE_EMULATOR_HOST and,
with google-auth-httplib2 absent (requirements-test.txt), connects
anonymously. The dataset is written to the bucket
by the default multi-process runner (its workers inherit the variable), read
back through Beam and checked with the project's own reader. TensorFlow's
GCS client cannot be pointed at an emulator (its endpoint is fixed), so the
model side is tested on TF's ram:// file system (tests/model/test_storage.py).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import FIXTURES, run_module

pytest.importorskip("gcp_storage_emulator", reason="needs gcp-storage-emulator "
                    "(requirements-test.txt)")
pytest.importorskip("google.cloud.storage", reason="needs google-cloud-storage "
                    "(requirements-test.txt)")

CORPUS = FIXTURES / "corpus"
BUCKET = "test-bucket"


@pytest.fixture
def gcs(tmp_path, monkeypatch):
    """A GCS emulator on a free localhost port, with one bucket; yields its URL."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "emulator.log", "w")
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator"), "start",
         "--port", str(port), "--in-memory", f"--default-bucket={BUCKET}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("localhost", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, (tmp_path / "emulator.log").read_text()
            time.sleep(0.2)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # no metadata-server probe for credentials
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _objects(prefix):
    from apache_beam.io.filesystems import FileSystems
    return sorted(m.path for r in FileSystems.match([prefix + "**"]) for m in r.metadata_list)


def _download(prefix, local):
    from apache_beam.io.filesystems import FileSystems
    for path in _objects(prefix):
        target = local / path[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileSystems.open(path, compression_type="uncompressed") as f:
            target.write_bytes(f.read())


@pytest.mark.multiprocess
def test_the_pipeline_writes_a_complete_dataset_to_gcs_and_replaces_it_whole(gcs, tmp_path):
    from tfrecords.reader import open_source
    out = f"gs://{BUCKET}/datasets/ds"
    args = ["--input_file", f"{CORPUS / 'sentences.txt'},jsonl:{CORPUS / 'docs.jsonl'}",
            "--vocab_file", FIXTURES / "vocab.txt", "--output_dir", out, "--max_seq_length", 64,
            "--max_predictions_per_seq", 10, "--dupe_factor", 2, "--num_shards", 2]
    first = run_module("pipeline.create_pretraining_data", *args)
    assert f"to {out} in" in first.stderr
    names = [p[len(out) + 1:] for p in _objects(out + "/")]
    # only the dataset: no staging pieces, progress files or lock left in the bucket
    assert names == ["COMPLETED", "info.json", "stats.json", "train-00000-of-00002.tfrecord",
                     "train-00001-of-00002.tfrecord", "vocab.txt"], names
    assert _objects(out + ".") == []  # ds.lock, ds.staging, ds.replaced
    _download(out + "/", tmp_path / "copy")
    source = open_source(str(tmp_path / "copy"), verify=True)
    info = json.loads((tmp_path / "copy" / "info.json").read_text())
    assert sum(s["records"] for s in info["shards"]["train"]) > 0
    assert source.spec.max_seq_length == 64
    assert (tmp_path / "copy" / "vocab.txt").read_bytes() == (FIXTURES / "vocab.txt").read_bytes()
    # a second run is refused, --overwrite replaces the dataset as a whole
    again = run_module("pipeline.create_pretraining_data", *args, check=False)
    assert again.returncode == 1 and "already holds a complete dataset" in again.stderr
    run_module("pipeline.create_pretraining_data", *args, "--overwrite", "--num_shards", 1)
    names = [p[len(out) + 1:] for p in _objects(out + "/")]
    assert names == ["COMPLETED", "info.json", "stats.json", "train-00000-of-00001.tfrecord",
                     "vocab.txt"], names
    shutil.rmtree(tmp_path / "copy")
