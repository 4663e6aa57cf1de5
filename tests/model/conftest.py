"""A small dataset for the model tests: the fixture corpus through our pipeline."""

import pytest

from pipeline.pretraining_data import PretrainingDataConfig, run
from pipeline.runners import DEFAULT_RUNNER
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


@pytest.fixture(scope="session")
def pretrained_tiny(tiny_dataset, tmp_path_factory):
    """A tiny pretrainer (MLM + NSP) trained 30 steps on the fixture dataset: a model dir."""
    from model.training.optimization import OptimizerConfig
    from model.training.pretraining_run import PretrainConfig, pretrain

    out = tmp_path_factory.mktemp("pretrained") / "tiny"
    pretrain(PretrainConfig(input_file=str(tiny_dataset), output_dir=str(out),
                      model_overrides=tuple(TINY), train_batch_size=16, log_steps=10,
                      save_checkpoints_steps=30, seed=1,
                      optimizer=OptimizerConfig(learning_rate=5e-3, num_train_steps=30,
                                                num_warmup_steps=3)))
    return out


@pytest.fixture(scope="session")
def bench_python():
    """The Python of .venv-bench (torch + transformers, never the product's), or skip."""
    from tests.conftest import ROOT

    python = ROOT / ".venv-bench" / "bin" / "python"
    if not python.exists():
        pytest.skip("needs .venv-bench with torch and transformers (make test builds it: "
                    "make .venv-bench/.installed)")
    return str(python)


def hf_reference(bench_python, checkpoint_dir, inputs: dict, tmp_path) -> dict:
    """transformers' BertModel (and BertForPreTraining heads) outputs for packed inputs."""
    import subprocess

    import numpy as np

    from tests.conftest import ROOT

    np.savez(tmp_path / "in.npz", **inputs)
    subprocess.run([bench_python, str(ROOT / "tests" / "model" / "hf_reference.py"), "encode",
                    str(checkpoint_dir), str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                   check=True, capture_output=True, cwd=ROOT)
    with np.load(tmp_path / "out.npz") as data:
        return {k: data[k] for k in data.files}
