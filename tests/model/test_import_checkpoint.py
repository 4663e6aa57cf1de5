"""Published checkpoints in: the real all-MiniLM-L6-v2 (HF) and TF1-layout files."""

import json
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from model.import_checkpoint import CheckpointImportError, import_checkpoint
from model.networks.preprocessing import BertTextPreprocessor
from model.tasks import load_model
from tests.conftest import ROOT, run_module
from tests.model.conftest import hf_reference

DATA = ROOT / "data"
needs_minilm = pytest.mark.skipif(not (DATA / "minilm" / "model.safetensors").exists(),
                                  reason="needs the sample data (make data)")


def _packed(vocab_file, texts_a, texts_b, seq_length=64):
    pre = BertTextPreprocessor(str(vocab_file), seq_length=seq_length)
    b = pre.tokenize(tf.constant(texts_b)) if texts_b else None
    return {k: v.numpy() for k, v in pre.pack(pre.tokenize(tf.constant(texts_a)), b).items()}


def _encode(encoder, x):
    out = encoder({"token_ids": x["input_ids"], "segment_ids": x["segment_ids"],
                   "padding_mask": x["input_mask"]}, training=False)
    return {k: v.numpy() for k, v in out.items()}


def _max_diff_at_tokens(a, b, mask):
    return float(np.max(np.abs(a - b) * (mask[..., None] > 0)))


@needs_minilm
@pytest.mark.data
def test_minilm_equals_transformers_bert_model(tmp_path, bench_python):
    md = import_checkpoint("hf", str(DATA / "minilm"), str(tmp_path / "minilm"))
    assert md.kind == "encoder" and md.model_config.hidden_act == "gelu"
    config = json.loads((tmp_path / "minilm" / "config.json").read_text())
    assert config["model"]["layer_norm_epsilon"] == 1e-12 and config["tokenizer"]["do_lower_case"]
    _, encoder, _ = load_model(md)  # from the written checkpoint, not the in-memory weights
    leads = [json.loads(line)["text"] for line in
             (DATA / "wiki_leads" / "leads.jsonl").read_text().splitlines()[:16]]
    x = _packed(md.vocab_file, leads[:8], leads[8:], seq_length=128)
    ours = _encode(encoder, x)
    ref = hf_reference(bench_python, DATA / "minilm", x, tmp_path)
    assert _max_diff_at_tokens(ours["sequence_output"], ref["sequence_output"],
                               x["input_mask"]) <= 1e-4
    assert np.max(np.abs(ours["pooled_output"] - ref["pooled_output"])) <= 1e-4
    # The trap the encoder avoids: keras-hub's tanh GELU is ~50x off the tolerance.
    approx = import_checkpoint("hf", str(DATA / "minilm"), str(tmp_path / "approx"))
    cfg = json.loads((tmp_path / "approx" / "config.json").read_text())
    cfg["model"]["hidden_act"] = "gelu_approximate"
    (tmp_path / "approx" / "config.json").write_text(json.dumps(cfg))
    from model.networks.model_dir import open_model_dir
    _, wrong, _ = load_model(open_model_dir(str(tmp_path / "approx")))
    assert _max_diff_at_tokens(_encode(wrong, x)["sequence_output"], ref["sequence_output"],
                               x["input_mask"]) > 1e-3
    del approx


def _tf1_from_hf(hf_dir, out_dir, hidden_act):
    """google-research/bert's file layout and variable names, written from HF weights."""
    from safetensors.numpy import load_file

    out_dir.mkdir()
    cfg = json.loads((hf_dir / "config.json").read_text())
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "max_position_embeddings", "type_vocab_size",
            "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range")
    (out_dir / "bert_config.json").write_text(json.dumps(
        dict({k: cfg[k] for k in keys}, hidden_act=hidden_act)))
    (out_dir / "vocab.txt").write_text((hf_dir / "vocab.txt").read_text())
    variables = {}
    for name, value in load_file(str(hf_dir / "model.safetensors")).items():
        if name.startswith("bert."):
            tf1 = "bert/" + name[5:]
        elif name.startswith("cls."):
            tf1 = name
        else:
            continue
        if name.endswith("position_ids") or "decoder" in name:
            continue
        tf1 = tf1.replace("encoder.layer.", "encoder/layer_").replace(".", "/")
        tf1 = tf1.replace("LayerNorm/weight", "LayerNorm/gamma").replace("LayerNorm/bias",
                                                                        "LayerNorm/beta")
        if tf1.endswith("_embeddings/weight"):
            tf1 = tf1[:-len("/weight")]
        elif tf1 == "cls/predictions/bias":
            tf1 = "cls/predictions/output_bias"
        elif tf1 == "cls/seq_relationship/weight":
            tf1 = "cls/seq_relationship/output_weights"
        elif tf1 == "cls/seq_relationship/bias":
            tf1 = "cls/seq_relationship/output_bias"
        elif tf1.endswith("/weight"):
            tf1, value = tf1[:-len("/weight")] + "/kernel", value.T  # TF1 kernels are [in, out]
        variables[tf1] = tf.Variable(value)
    variables["global_step"] = tf.Variable(0, dtype=tf.int64)
    # run_classifier's task head: outside bert/ and cls/, so not imported, but listed
    variables["output_weights"] = tf.Variable(np.zeros([2, cfg["hidden_size"]], np.float32))
    variables["output_bias"] = tf.Variable(np.zeros([2], np.float32))
    tf.compat.v1.train.Saver(var_list=variables).save(None, str(out_dir / "bert_model.ckpt"))


@pytest.fixture(scope="module")
def hf_pretraining(tmp_path_factory, bench_python):
    """A small BertForPreTraining (MLM + NSP heads) with tanh GELU, saved by transformers."""
    out = tmp_path_factory.mktemp("hf") / "bert"
    subprocess.run([bench_python, str(ROOT / "tests" / "model" / "hf_reference.py"),
                    "make_pretraining", str(out), "gelu_new"], check=True, cwd=ROOT,
                   capture_output=True)
    return out


def test_heads_import_and_tf1_layout_match_transformers(hf_pretraining, bench_python, tmp_path):
    x = _packed(hf_pretraining / "vocab.txt", ["the bread rises in the morning."],
                ["farmers grow wheat and barley."], seq_length=24)
    ref = hf_reference(bench_python, hf_pretraining, x, tmp_path)
    positions = np.array([[1, 3, 7]], np.int32)
    for fmt, source in (("hf", hf_pretraining), ("tf1", tmp_path / "tf1")):
        if fmt == "tf1":  # google-research's "gelu" is the tanh form = HF's gelu_new
            _tf1_from_hf(hf_pretraining, source, hidden_act="gelu")
        md = import_checkpoint(fmt, str(source), str(tmp_path / f"out_{fmt}"))
        assert md.kind == "pretrainer" and md.model_config.hidden_act == "gelu_approximate"
        if fmt == "tf1":  # what was not imported is listed (global_step is not a weight)
            saved = json.loads((tmp_path / "out_tf1" / "config.json").read_text())
            assert saved["source"]["ignored"] == ["output_bias", "output_weights"], saved
        assert md.model_config.layer_norm_epsilon == (1e-7 if fmt == "hf" else 1e-12)
        model, encoder, _ = load_model(md)
        out = model(dict(x, masked_lm_positions=positions), training=False)
        seq = _encode(encoder, x)["sequence_output"]
        # TF1 configs carry no epsilon (google-research used 1e-12), hence 1e-4 there.
        tol = 1e-5 if fmt == "hf" else 1e-4
        assert _max_diff_at_tokens(seq, ref["sequence_output"], x["input_mask"]) <= tol, fmt
        mlm_ref = np.take_along_axis(ref["mlm_logits"], positions[..., None], axis=1)
        assert np.max(np.abs(out["mlm_logits"].numpy() - mlm_ref)) <= 10 * tol, fmt
        assert np.max(np.abs(out["nsp_logits"].numpy() - ref["nsp_logits"])) <= tol, fmt


def test_import_errors_name_the_file(tmp_path):
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(CheckpointImportError, match="config.json not found"):
        import_checkpoint("hf", str(tmp_path / "ckpt"), str(tmp_path / "out"))
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckpointImportError, match="gpt2.* is not BERT"):
        import_checkpoint("hf", str(tmp_path / "ckpt"), str(tmp_path / "out"))
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({
        "model_type": "bert", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16}))
    with pytest.raises(CheckpointImportError, match="neither model.safetensors"):
        import_checkpoint("hf", str(tmp_path / "ckpt"), str(tmp_path / "out"))
    proc = run_module("model.import_checkpoint", "--format", "tf1", "--checkpoint_dir",
                      tmp_path / "ckpt", "--output_dir", tmp_path / "out", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        f"import_checkpoint: {tmp_path / 'ckpt' / 'bert_config.json'} not found"
