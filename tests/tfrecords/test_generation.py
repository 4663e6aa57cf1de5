"""The generation contract: what the pipeline writes into info.json is what the model reads."""
import pytest

from pipeline.pretraining_data import PretrainingDataConfig
from tfrecords.generation import Generation, GenerationError


def test_the_pipelines_block_reads_back_typed_and_writes_back_unchanged():
    config = PretrainingDataConfig(input_file=["x"], input_format="sentences",
                                   vocab_file="v.txt", output_dir="o", max_seq_length=64,
                                   masked_lm_prob=0.2, do_lower_case=False, masking="dynamic",
                                   packing=True, dupe_factor=3)
    written = config.generation().to_dict()
    read = Generation.from_dict(written)
    assert (read.max_seq_length, read.masked_lm_prob, read.do_lower_case, read.masking,
            read.packing) == (64, 0.2, False, "dynamic", True)
    assert read.details["dupe_factor"] == 3 and "layout" in read.details
    assert read.to_dict() == written
    for key in ("input_file", "output_dir", "overwrite"):  # where, not how: not recorded
        assert key not in written


def test_a_mistyped_field_is_one_error_naming_it():
    with pytest.raises(GenerationError, match=r"generation.do_lower_case must be a bool, "
                                              r"got 'yes'"):
        Generation.from_dict({"do_lower_case": "yes"})
    with pytest.raises(GenerationError, match="generation.max_seq_length must be an int"):
        Generation.from_dict({"max_seq_length": True})
    assert Generation.from_dict({"masked_lm_prob": 1}).masked_lm_prob == 1.0
    assert Generation.from_info({"features": {}}) is None
