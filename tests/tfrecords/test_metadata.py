import json

import pytest

from tfrecords.metadata import DatasetError, open_dataset
from tests.tfrecords.helpers import SPEC, write_dataset


def test_finalize_writes_manifest_stats_and_completed(tmp_path):
    info = write_dataset(str(tmp_path), num_instances=7, num_shards=2)
    assert (tmp_path / "COMPLETED").exists()
    on_disk = json.loads((tmp_path / "info.json").read_text())
    assert on_disk == info
    shards = on_disk["shards"]["train"]
    assert [s["file"] for s in shards] == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    assert [s["records"] for s in shards] == [4, 3]  # round-robin of 7
    assert shards[0]["bytes"] == (tmp_path / shards[0]["file"]).stat().st_size
    assert json.loads((tmp_path / "stats.json").read_text()) == {"instances": 7}
    dataset = open_dataset(str(tmp_path))
    assert dataset.spec == SPEC
    assert dataset.num_records() == 7


def test_directory_without_completed_is_refused(tmp_path):
    write_dataset(str(tmp_path))
    (tmp_path / "COMPLETED").unlink()
    with pytest.raises(DatasetError, match=f"{tmp_path} has no COMPLETED file"):
        open_dataset(str(tmp_path))


def test_truncated_shard_is_named(tmp_path):
    write_dataset(str(tmp_path))
    shard = tmp_path / "train-00001-of-00002.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DatasetError, match=f"{shard} is .* bytes but was written as .* truncated"):
        open_dataset(str(tmp_path))


def test_missing_and_unlisted_shards_are_named(tmp_path):
    write_dataset(str(tmp_path))
    extra = tmp_path / "train-00005-of-00009.tfrecord"
    extra.write_bytes(b"")
    with pytest.raises(DatasetError, match="does not list: train-00005-of-00009.tfrecord"):
        open_dataset(str(tmp_path))
    extra.unlink()
    (tmp_path / "train-00000-of-00002.tfrecord").unlink()
    with pytest.raises(DatasetError, match="train-00000-of-00002.tfrecord is listed in info.json but missing"):
        open_dataset(str(tmp_path))


def test_bad_info_json_is_named(tmp_path):
    write_dataset(str(tmp_path))
    (tmp_path / "info.json").write_text("{not json")
    with pytest.raises(DatasetError, match="info.json is not valid JSON"):
        open_dataset(str(tmp_path))
