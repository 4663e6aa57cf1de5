"""tfrecords.inspect on our datasets, on broken ones, and on the peer generator's output."""

import importlib.util
import re

import pytest

from tests.conftest import FIXTURES, error_line, run_module
from tests.tfrecords.helpers import write_dataset


def _examples(text, marker):
    """Splits printed lines into per-instance dicts {field: value string}."""
    out = []
    for line in text.splitlines():
        if marker in line:
            out.append({})
        elif out and ": " in line:
            key, value = line.split(": ", 1)
            out[-1][key.strip()] = value.strip()
    return out


def test_inspect_prints_metadata_and_decoded_instances(tmp_path):
    write_dataset(str(tmp_path), num_instances=3, num_shards=1,
                  vocab_file=str(FIXTURES / "vocab.txt"))
    proc = run_module("tfrecords.inspect", tmp_path, "--num_examples", 2, "--verify")
    out = proc.stdout
    assert '"instances": 3' in out  # stats.json
    assert "train-00000-of-00001.tfrecord: 3 records, CRC ok" in out
    examples = _examples(out, "*** Example")
    assert len(examples) == 2
    # instance 0: ids [4, 10, 6, 5, 12, 5], original 11; fixture vocab ids (0-based):
    # 4 [CLS], 5 [SEP], 6 [MASK], 10 "!", 11 "?", 12 "-" (hand-checked)
    assert examples[0]["tokens"] == "[CLS] ! [MASK] [SEP] - [SEP]"
    assert examples[0]["masked (position:shown->original)"] == "2:[MASK]->?"
    assert examples[1]["next_sentence_labels"] == "1"


def test_inspect_errors_are_one_line_and_exit_1(tmp_path):
    write_dataset(str(tmp_path))
    (tmp_path / "COMPLETED").unlink()
    proc = run_module("tfrecords.inspect", tmp_path, check=False)
    assert proc.returncode == 1
    assert error_line(proc.stderr).startswith(f"inspect: {tmp_path} has no COMPLETED file")
    assert "Traceback" not in proc.stderr


needs_peer = pytest.mark.skipif(
    importlib.util.find_spec("official") is None,
    reason="tf-models-official (the peer generator) is not installed: "
    "pip install --no-deps -r requirements-peer.txt",
)


@needs_peer
def test_inspect_decodes_the_peer_generators_file_as_the_peer_logged_it(tmp_path):
    output = tmp_path / "peer.tfrecord"
    peer = run_module(
        "official.nlp.data.create_pretraining_data",
        "--input_file", FIXTURES / "corpus" / "sentences.txt",
        "--vocab_file", FIXTURES / "vocab.txt",
        "--output_file", output,
        "--max_seq_length", 64, "--max_predictions_per_seq", 10,
        "--dupe_factor", 5, "--random_seed", 7,
    )
    # absl log lines: "I1125 03:58:32.25 123 create_pretraining_data.py:192] tokens: ..."
    logged = "\n".join(re.sub(r"^[IWE]\d{4} [\d:.]+\s+\d+ \S+\] ", "", line)
                       for line in peer.stderr.splitlines())
    peer_examples = _examples(logged, "*** Example ***")
    assert len(peer_examples) == 20  # the peer logs its first 20 instances
    ours = _examples(run_module(
        "tfrecords.inspect", output, "--vocab_file", FIXTURES / "vocab.txt",
        "--num_examples", 20).stdout, "*** Example")
    assert len(ours) == 20
    vocab = (FIXTURES / "vocab.txt").read_text().split("\n")
    fields = ["tokens", "input_ids", "input_mask", "segment_ids", "masked_lm_positions",
              "masked_lm_ids", "masked_lm_weights", "next_sentence_labels"]
    for theirs, mine in zip(peer_examples, ours):
        for field in fields:
            assert mine[field] == theirs[field], field
        # the masked positions: shown token from the peer's token line, original from its ids
        tokens = theirs["tokens"].split()
        expected = [
            f"{p}:{tokens[int(p)]}->{vocab[int(i)]}"
            for p, i, w in zip(theirs["masked_lm_positions"].split(), theirs["masked_lm_ids"].split(),
                               theirs["masked_lm_weights"].split())
            if float(w) > 0
        ]
        assert mine["masked (position:shown->original)"] == " ".join(expected)


def test_verify_compares_record_counts_with_the_manifest(tmp_path):
    import json
    info = write_dataset(str(tmp_path / "ds"), num_instances=7)
    ok = run_module("tfrecords.inspect", tmp_path / "ds", "--verify", "--num_examples", 0)
    assert "train-00000-of-00002.tfrecord: 4 records, CRC ok, as info.json lists" in ok.stdout
    # a manifest that disagrees with its shard (as two writers mixing one directory left it)
    info["shards"]["train"][0]["records"] = 5
    (tmp_path / "ds" / "info.json").write_text(json.dumps(info))
    proc = run_module("tfrecords.inspect", tmp_path / "ds", "--verify", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"inspect: {tmp_path}/ds/train-00000-of-00002.tfrecord holds 4 records but info.json lists "
        "5: the shard is not the one this dataset wrote (mixed runs or a copy from elsewhere); "
        "regenerate it")
