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


@pytest.mark.parametrize("edit, message", [
    (lambda info: [info], "expected a JSON object, got list"),
    (lambda info: dict(info, shards="train-00000-of-00002.tfrecord"), "lists no shards"),
    (lambda info: dict(info, shards={"train": "train-00000-of-00002.tfrecord"}),
     "shards.train must be a list, got str"),
    (lambda info: dict(info, shards={"train": [{"file": "train-00000-of-00002.tfrecord",
                                                "records": 5}]}),
     "shards.train[0].bytes must be a non-negative integer, got None"),
    (lambda info: dict(info, shards={"train": [dict(info["shards"]["train"][0], records="5")]}),
     "shards.train[0].records must be a non-negative integer, got '5'"),
    (lambda info: dict(info, shards={"train": [dict(info["shards"]["train"][0],
                                                    file="../elsewhere.tfrecord")]}),
     "shards.train[0].file must be a file name in the dataset directory"),
    (lambda info: dict(info, features=[128, 20]), "'features' must be an object"),
])
def test_malformed_info_json_values_are_one_line_naming_the_field(tmp_path, edit, message):
    info = write_dataset(str(tmp_path))
    (tmp_path / "info.json").write_text(json.dumps(edit(info)))
    with pytest.raises(DatasetError) as e:
        open_dataset(str(tmp_path))
    assert str(e.value) == f"{tmp_path}/info.json: {message}" or \
        str(e.value).startswith(f"{tmp_path}/info.json: {message}")
