"""The recipe flagfiles (configs/recipes/) run as documented: data, then pretraining."""

import json

import pytest

from pipeline.runners import DEFAULT_RUNNER
from tests.conftest import FIXTURES, ROOT, run_module

CORPUS = FIXTURES / "corpus"


@pytest.mark.parametrize("recipe", ["bert2018_mini", "modern_mini"])
def test_recipe_flagfiles_make_a_dataset_and_pretrain_on_it(recipe, tmp_path):
    configs = ROOT / "configs" / "recipes"
    run_module("pipeline.create_pretraining_data", f"--flagfile={configs / recipe}.data.flags",
               "--input_file", f"sentences:{CORPUS / 'sentences.txt'},books:{CORPUS / 'books'}/*.txt",
               "--vocab_file", FIXTURES / "vocab.txt", "--output_dir", tmp_path / "ds",
               "--max_seq_length", 32, "--eval_fraction", 0.2,
               f"--runner={DEFAULT_RUNNER}", "--direct_running_mode=in_memory")
    info = json.loads((tmp_path / "ds" / "info.json").read_text())
    features = info["features"]
    modern = recipe.startswith("modern")
    assert features["packed"] == modern and features["next_sentence"] == (not modern)
    assert features["masked"] == (not modern)
    proc = run_module("model.pretrain", f"--flagfile={configs / recipe}.pretrain.flags",
                      "--input_file", tmp_path / "ds", "--output_dir", tmp_path / "m",
                      "--train_batch_size", 8, "--num_train_steps", 2, "--num_warmup_steps", 0,
                      "--log_steps", 1, "--eval_input_file", tmp_path / "ds")
    assert "eval_mlm_loss" in proc.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["hidden_dim"] == 256  # bert_mini
    if modern:
        assert "Dynamic masking: 30% of each sequence's tokens, at most 10" in proc.stderr
        assert config["model"]["dropout"] == 0.0
        assert "--mixed_precision auto: " in proc.stderr
    else:
        assert "nsp_loss" in proc.stderr


def test_budget_recipe_flagfiles_learn_a_vocabulary_make_a_dataset_and_pretrain(tmp_path):
    """The demo's recipe, its three flagfiles in order, on the fixture corpus."""
    configs = ROOT / "configs" / "recipes"
    corpus = f"sentences:{CORPUS / 'sentences.txt'},books:{CORPUS / 'books'}/*.txt"
    run_module("pipeline.build_vocab", f"--flagfile={configs}/budget_tiny.vocab.flags",
               "--input_file", corpus, "--output_file", tmp_path / "vocab.txt")
    vocab = (tmp_path / "vocab.txt").read_text().splitlines()
    assert vocab[:1] == ["[PAD]"] and "[MASK]" in vocab and len(vocab) <= 8192
    run_module("pipeline.create_pretraining_data", f"--flagfile={configs}/budget_tiny.data.flags",
               "--input_file", corpus, "--vocab_file", tmp_path / "vocab.txt",
               "--output_dir", tmp_path / "ds", "--max_seq_length", 32, "--eval_fraction", 0.2,
               f"--runner={DEFAULT_RUNNER}", "--direct_running_mode=in_memory")
    features = json.loads((tmp_path / "ds" / "info.json").read_text())["features"]
    assert features["next_sentence"] and features["masked"] and not features["packed"]
    proc = run_module("model.pretrain", f"--flagfile={configs}/budget_tiny.pretrain.flags",
                      "--input_file", tmp_path / "ds", "--output_dir", tmp_path / "m",
                      "--train_batch_size", 8, "--train_budget_minutes", 0.05, "--log_steps", 1,
                      "--eval_input_file", tmp_path / "ds")
    assert "to the end of a 0.05-minute budget" in proc.stderr and "nsp_loss" in proc.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model"]["norm_first"] is True and config["model"]["dropout"] == 0.0
    assert config["model"]["hidden_dim"] == 128 and config["vocab_size"] == len(vocab)
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text()
           .splitlines()]
    assert log[-1]["learning_rate"] == 0.0 and log[-1]["budget_spent"] >= 1.0
    # A step count for warmup cannot be honoured when the steps are not known: refused.
    proc = run_module("model.pretrain", f"--flagfile={configs}/budget_tiny.pretrain.flags",
                      "--input_file", tmp_path / "ds", "--output_dir", tmp_path / "m2",
                      "--num_warmup_steps", 100, check=False)
    assert proc.returncode != 0 and "use --warmup_fraction" in proc.stderr
