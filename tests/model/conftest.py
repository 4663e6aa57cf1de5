"""A small dataset for the model tests: the fixture corpus through our pipeline."""

import pytest

from pipeline.pretraining_data import DEFAULT_RUNNER, PretrainingDataConfig, run
from tests.conftest import FIXTURES

TINY = ["num_layers=2", "hidden_dim=32", "num_heads=2", "intermediate_dim=64",
        "max_sequence_length=64"]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """~300 instances of 32 tokens from the hand-made corpus, fixture vocab, 2 shards + eval."""
    out = tmp_path_factory.mktemp("data") / "ds"
    corpus = FIXTURES / "corpus"
    run(PretrainingDataConfig(
        input_file=(f"sentences:{corpus / 'sentences.txt'}", f"jsonl:{corpus / 'docs.jsonl'}",
                    f"books:{corpus / 'books' / '*.txt'}", f"wikipedia:{corpus / 'wiki.xml'}"),
        input_format="sentences", vocab_file=str(FIXTURES / "vocab.txt"), output_dir=str(out),
        max_seq_length=32, max_predictions_per_seq=5, dupe_factor=20, num_shards=2,
        eval_fraction=0.2, random_seed=3),
        [f"--runner={DEFAULT_RUNNER}", "--direct_running_mode=in_memory", "--direct_num_workers=1"])
    return out


def make_dataset_dir(out, **overrides):
    """The fixture corpus through our pipeline with other generation parameters."""
    corpus = FIXTURES / "corpus"
    params = dict(
        input_file=(f"sentences:{corpus / 'sentences.txt'}", f"books:{corpus / 'books' / '*.txt'}"),
        input_format="sentences", vocab_file=str(FIXTURES / "vocab.txt"), output_dir=str(out),
        max_seq_length=32, max_predictions_per_seq=5, dupe_factor=10, num_shards=1,
        random_seed=4)
    params.update(overrides)
    run(PretrainingDataConfig(**params), [f"--runner={DEFAULT_RUNNER}",
                                          "--direct_running_mode=in_memory",
                                          "--direct_num_workers=1"])
    return out
