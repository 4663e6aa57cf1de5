"""Continued pretraining from a published checkpoint: --init_checkpoint, strictly.

The source is a Hugging Face BertModel written by transformers (in .venv-bench) and
imported as published encoders are (model.import_checkpoint), or a pretrainer of ours.
"""

import dataclasses
import json
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from model.networks.model_dir import build_encoder, open_model_dir, restore_encoder, write_model_dir
from model.networks.presets import resolve
from model.training.engine import TrainingError
from model.training.optimization import OptimizerConfig
from model.training.pretraining_run import PretrainConfig, Pretrainer
from tests.conftest import FIXTURES, ROOT, run_module
from tests.model.conftest import make_dataset_dir

VOCAB = FIXTURES / "vocab.txt"


@pytest.fixture(scope="module")
def imported_encoder(tmp_path_factory, bench_python):
    """A small BertModel (no heads, like MiniLM) saved by transformers, then imported."""
    from model.import_checkpoint import import_checkpoint

    root = tmp_path_factory.mktemp("hf_encoder")
    subprocess.run([bench_python, str(ROOT / "tests" / "model" / "hf_reference.py"),
                    "make_encoder", str(root / "hf")], check=True, cwd=ROOT, capture_output=True)
    md = import_checkpoint("hf", str(root / "hf"), str(root / "imported"))
    assert md.kind == "encoder"
    return root / "imported"


def _encoder_weights(model_dir):
    md = open_model_dir(str(model_dir))
    encoder = build_encoder(md.model_config)
    restore_encoder(md, encoder)  # tf.train.Checkpoint's own restore, not warm_start's
    return {w.path: np.asarray(w) for w in encoder.weights}


def _log(proc):
    return [line for line in proc.stderr.splitlines() if line.startswith(("Initialized",
                                                                          "Resuming", "--init"))]


def test_pretrain_from_an_imported_encoder_restores_it_exactly_and_resume_wins(
        imported_encoder, tmp_path):
    ds = make_dataset_dir(tmp_path / "ds")  # NSP pairs, the fixture vocabulary
    out = tmp_path / "continued"
    args = ["--input_file", ds, "--output_dir", out, "--init_checkpoint", imported_encoder,
            "--num_train_steps", 2, "--learning_rate", 0, "--num_warmup_steps", 0,
            "--train_batch_size", 4, "--log_steps", 1, "--noshuffle"]
    proc = run_module("model.pretrain", *args)
    (line,) = _log(proc)
    assert line.startswith(f"Initialized from {imported_encoder}/checkpoints/ckpt-0 (encoder")
    assert "encoder 39/39 variables; created fresh: mlm_head, nsp_head" in line
    # No --preset: the architecture is the checkpoint's (hidden 32, 4 heads; bert_tiny has 128).
    saved = json.loads((out / "config.json").read_text())
    source = json.loads((imported_encoder / "config.json").read_text())
    assert saved["model"] == source["model"] and saved["model"]["hidden_dim"] == 32
    # At learning rate 0, two steps leave every encoder weight as imported, bit for bit.
    before, after = _encoder_weights(imported_encoder), _encoder_weights(out)
    assert before.keys() == after.keys() and len(before) == 39
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)

    # A rerun resumes the run in --output_dir; the checkpoint is not read again.
    proc = run_module("model.pretrain", *args[:-9], "--num_train_steps", 3, *args[-7:])
    assert [line.split(" at step")[0] for line in _log(proc)] == [
        f"Resuming from {out}/checkpoints/ckpt-2",
        f"--init_checkpoint {imported_encoder} is not read: the run in {out} resumes (delete "
        "it, or use another --output_dir, to start over from the checkpoint)"]


def test_contradicting_flags_and_incomplete_checkpoints_are_refused_by_name(
        imported_encoder, tmp_path):
    ds = make_dataset_dir(tmp_path / "ds")
    proc = run_module("model.pretrain", "--input_file", ds, "--output_dir", tmp_path / "m",
                      "--init_checkpoint", imported_encoder, "--preset", "bert_tiny",
                      check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        f"pretrain: --preset bert_tiny contradicts --init_checkpoint's {imported_encoder}/"
        "config.json (hidden_dim 128 vs 32, num_heads 2 vs 4, intermediate_dim 512 vs 64); "
        "leave --preset out: the architecture comes from the checkpoint")

    def config(init, **kw):
        return PretrainConfig(input_file=str(ds), output_dir=str(tmp_path / "m"),
                              init_checkpoint=str(init), train_batch_size=4,
                              optimizer=OptimizerConfig(num_train_steps=1), **kw)

    cased = make_dataset_dir(tmp_path / "cased", do_lower_case=False)
    with pytest.raises(TrainingError, match="was tokenized with do_lower_case False, "
                                            "--init_checkpoint's model with True"):
        Pretrainer(dataclasses.replace(config(imported_encoder), input_file=str(cased)))
    with pytest.raises(TrainingError, match=r"--model_override num_layers=3 contradicts .*"
                                            r"\(num_layers 2\); only dropout may change"):
        Pretrainer(config(imported_encoder, model_overrides=("num_layers=3",)))
    assert Pretrainer(config(imported_encoder, model_overrides=(
        "dropout=0.0",))).model_config.dropout == 0.0

    # A checkpoint with one layer where its config.json says two: the missing layer is named.
    md = open_model_dir(str(imported_encoder))
    one_layer = tmp_path / "one_layer"
    tf.train.Checkpoint(encoder=build_encoder(dataclasses.replace(
        md.model_config, num_layers=1))).write(str(one_layer / "checkpoints" / "ckpt-1"))
    write_model_dir(str(one_layer), kind="encoder", model_config=md.model_config,
                    vocab=open(VOCAB).read().split(), do_lower_case=True)
    with pytest.raises(TrainingError, match=r"lacks 16 of the encoder's 39 variables or holds "
                                            r"them in another shape: transformer_layer_1/"):
        Pretrainer(config(one_layer / "checkpoints" / "ckpt-1"))._initialize()
    # ...and a layer of another width is named with both shapes.
    wide = tmp_path / "wide"
    tf.train.Checkpoint(encoder=build_encoder(dataclasses.replace(
        md.model_config, intermediate_dim=48))).write(str(wide / "ckpt-1"))
    with pytest.raises(TrainingError, match=r"transformer_layer_0/feedforward_intermediate_dense/"
                                            r"kernel \(32, 64\) \(checkpoint \(32, 48\)\)"):
        Pretrainer(config(wide / "ckpt-1", model_overrides=(
            "num_layers=2", "hidden_dim=32", "num_heads=4", "intermediate_dim=64",
            "max_sequence_length=64", "layer_norm_epsilon=1e-7")))._initialize()


def test_domain_vocabulary_keeps_base_ids_and_new_rows_start_at_the_mean_of_their_pieces(
        pretrained_tiny, tmp_path):
    from pipeline.tokenization import BertTokenizer

    base = open(VOCAB, encoding="utf-8").read().split("\n")[:-1]
    domain = tmp_path / "domain_vocab.txt"
    corpus = FIXTURES / "corpus"
    proc = run_module("pipeline.build_vocab", "--input_file",
                      f"sentences:{corpus / 'sentences.txt'},books:{corpus / 'books' / '*.txt'}",
                      "--base_vocab_file", VOCAB, "--output_file", domain)
    assert "2 domain words" in proc.stderr
    vocab = domain.read_text(encoding="utf-8").split("\n")[:-1]
    record = json.loads((tmp_path / "domain_vocab.replacements.json").read_text())
    assert len(vocab) == len(base) and [r["slot"] for r in record["replaced"]] == [
        "[unused0]", "[unused1]"]
    assert [i for i, (a, b) in enumerate(zip(base, vocab)) if a != b] == [1, 2]
    base_tokenizer = BertTokenizer(base)
    for r in record["replaced"]:
        assert vocab[r["id"]] == r["word"] and r["count"] >= 2
        # The pieces recorded are the pipeline tokenizer's (Hugging Face's WordPiece).
        pieces = base_tokenizer.tokenize_batch([r["word"]])[0]
        assert [base[p] for p in pieces] == r["pieces"] and len(pieces) >= 2
    # The new words are used: the domain tokenizer gives them one id each.
    assert BertTokenizer(vocab).tokenize_batch([record["replaced"][0]["word"]]) == [[1]]

    # MLM-only data in the domain vocabulary; the source is a pretrainer with MLM + NSP,
    # named by a bare checkpoint path (its config.json is found beside checkpoints/).
    ds = make_dataset_dir(tmp_path / "ds", vocab_file=str(domain),
                          next_sentence_prediction=False)
    trainer = Pretrainer(PretrainConfig(
        input_file=str(ds), output_dir=str(tmp_path / "m"), train_batch_size=4,
        init_checkpoint=str(pretrained_tiny / "checkpoints" / "ckpt-30"),
        optimizer=OptimizerConfig(num_train_steps=1)))
    assert "nsp_head" not in [layer.name for layer in trainer.model.layers]
    src_model_dir = open_model_dir(str(pretrained_tiny))
    from model.tasks import load_model
    src_model, src_encoder, _ = load_model(src_model_dir)
    trainer._initialize()
    table = np.asarray(trainer.model.get_layer("backbone").token_embedding.embeddings)
    src_table = np.asarray(src_encoder.token_embedding.embeddings)
    bias = np.asarray([w for w in trainer.model.weights if w.path == "mlm_head/output_bias"][0])
    src_bias = np.asarray([w for w in src_model.weights if w.path == "mlm_head/output_bias"][0])
    index = {t: i for i, t in enumerate(base)}
    for r in record["replaced"]:
        ids = [index[p] for p in r["pieces"]]
        np.testing.assert_allclose(table[r["id"]], src_table[ids].mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(bias[r["id"]], src_bias[ids].mean(), rtol=1e-6)
    others = [i for i in range(len(base)) if i not in (1, 2)]
    np.testing.assert_array_equal(table[others], src_table[others])
    assert np.isfinite(trainer.run()["loss"])

    # A vocabulary whose ids moved is refused, naming the id.
    moved = tmp_path / "moved.txt"
    moved.write_text("\n".join(base[:10] + [base[11], base[10]] + base[12:]) + "\n")
    moved_ds = make_dataset_dir(tmp_path / "moved_ds", vocab_file=str(moved), dupe_factor=1)
    with pytest.raises(TrainingError, match=r"id 10 is .* only \[unused\*\] slots may change"):
        Pretrainer(PretrainConfig(
            input_file=str(moved_ds), output_dir=str(tmp_path / "m2"),
            init_checkpoint=str(pretrained_tiny), optimizer=OptimizerConfig(num_train_steps=1))
        )._initialize()


def test_heads_of_a_classifier_are_not_taken_for_pretraining_heads(tmp_path):
    """A fine-tuned model's `model` is a classifier: only its encoder seeds pretraining."""
    from model.training.warm_start import InitSource, WarmStart
    from model.networks.pretrainer import build_pretrainer

    vocab = open(VOCAB).read().split()
    cfg = resolve("bert_tiny", vocabulary_size=len(vocab), overrides={"num_layers": 1})
    source = build_pretrainer(cfg)  # same layout as ours, but say it is a classifier's dir
    tf.train.Checkpoint(model=source, encoder=source.get_layer("backbone")).write(
        str(tmp_path / "src" / "checkpoints" / "ckpt-1"))
    write_model_dir(str(tmp_path / "src"), kind="classification", model_config=cfg, vocab=vocab,
                    do_lower_case=True)
    target = build_pretrainer(cfg)
    report = WarmStart(InitSource("src", str(tmp_path / "src" / "checkpoints" / "ckpt-1"),
                                  open_model_dir(str(tmp_path / "src"))),
                       target, target.get_layer("backbone"), vocab, "vocab").run()
    assert report.endswith("encoder 23/23 variables; created fresh: mlm_head, nsp_head")
