"""model.export: SavedModels reloaded in fresh processes; model.predict; hostile text."""

import json
import random

import numpy as np
import pytest
import tensorflow as tf

from model.preprocessing import OPS_NEEDED
from tests.conftest import ROOT, run_module

DATA = ROOT / "data"


@pytest.fixture(scope="module")
def exported(pretrained_tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    run_module("model.export", "--model_dir", pretrained_tiny, "--export_dir", out,
               "--max_seq_length", 32, "--top_k", 3)
    return out


def test_export_writes_verified_saved_models(exported, pretrained_tiny):
    name = pretrained_tiny.name
    info = json.loads((exported / name / "export.json").read_text())
    assert info["kind"] == "pretrainer" and info["version"] == 1
    for sub in (f"{name}/1", f"{name}_token_ids/1", f"{name}_encoder", f"{name}_preprocessor"):
        assert (exported / sub / "saved_model.pb").exists(), sub
    check = info["verification"]
    assert check["max_abs_diff"] <= 1e-5 and check["ids_equal"]
    # Measured in the fresh process, not declared: the ops its TF lacks without tf-text.
    assert check["tf_text_ops_needed"] == sorted(OPS_NEEDED)
    assert check["token_ids_only_ops_outside_core"] == []
    assert check["modules_imported_by_checker"] == []
    assert sorted(info["signatures"]) == ["serving_default", "token_ids"]
    assert sorted(info["signatures"]["serving_default"]["inputs"]) == ["text", "text_b"]
    assert sorted(info["signatures"]["token_ids"]["inputs"]) == [
        "input_ids", "input_mask", "masked_lm_positions", "segment_ids"]
    # A second export of the same model is the next serving version.
    proc = run_module("model.export", "--model_dir", pretrained_tiny, "--export_dir", exported,
                      "--max_seq_length", 32, "--noverify")
    assert json.loads(proc.stdout.strip().splitlines()[-1])["serving"].endswith(f"{name}/2")


def test_predict_prints_masked_token_predictions(exported, pretrained_tiny, tmp_path):
    serving = exported / pretrained_tiny.name / "1"
    proc = run_module("model.predict", "--saved_model", serving, "--format", "json",
                      "The bread [MASK] in the morning.", "Farmers grow [MASK].")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    # [CLS] the bread [MASK] in the morning . [SEP] farmers grow [MASK] . [SEP]
    assert [m["position"] for m in row["masked"]] == [3, 11]
    assert all(len(m["predictions"]) == 3 for m in row["masked"])
    assert 0.0 <= row["is_random_next"] <= 1.0
    (tmp_path / "in.txt").write_text("the [MASK] rises.\n\nstars [MASK]\tthe sky\n")
    proc = run_module("model.predict", "--saved_model", serving, "--input_file",
                      tmp_path / "in.txt", "--batch_size", 1)
    assert proc.stdout.count("masked:") == 2  # the blank line is not an example
    bad = run_module("model.predict", "--saved_model", exported / "nothing", "x", check=False)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith(
        f"predict: {exported / 'nothing'}: not a SavedModel")


def _hostile_strings(n, seed=0):
    """Empty, far too long, mixed scripts, emoji, controls, invalid UTF-8 byte sequences."""
    rng = random.Random(seed)
    alphabet = ("abc XYZ 0123 .,;!?'\"()[]{}<>$%^&*_~|\\/ éüñçß ΠΌΛΙΣ σς Привет мир "
                "中文日本語한국어 عربى עברית हिन्दी ไทย 😀👍🏽👨‍👩‍👧 \u200b\u200d\ufeff\u202e "
                "\x00\x01\x07\x1b\x7f\t\n\r [MASK] [CLS] [SEP] [PAD] [UNK] ##")
    out = [b"", b" ", b"\x00", b"[MASK]" * 300, ("word " * 5000).encode()]
    while len(out) < n:
        kind = rng.random()
        if kind < 0.6:
            s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))).encode()
        elif kind < 0.8:
            s = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 120)))  # invalid UTF-8
        else:
            s = (" ".join(rng.choice(alphabet.split()) for _ in range(rng.randint(100, 1500)))
                 ).encode()
        out.append(s)
    return out


def test_raw_text_signature_survives_hostile_strings(exported, pretrained_tiny):
    loaded = tf.saved_model.load(str(exported / pretrained_tiny.name / "1"))
    fn = loaded.signatures["serving_default"]
    texts = _hostile_strings(10_240)
    seen = 0
    for i in range(0, len(texts), 512):
        a = tf.constant(texts[i:i + 512])
        b = tf.constant(texts[i + 1:i + 513] + [b""] * (512 - len(texts[i + 1:i + 513])))[
            :len(texts[i:i + 512])]
        out = {k: v.numpy() for k, v in fn(text=a, text_b=b).items()}
        assert out["input_ids"].shape == (len(texts[i:i + 512]), 32)
        assert (out["input_ids"][:, 0] == 4).all()  # [CLS] first, whatever came in
        assert np.isfinite(out["top_k_probabilities"]).all()
        assert np.isfinite(out["nsp_probabilities"]).all()
        np.testing.assert_allclose(out["nsp_probabilities"].sum(-1), 1.0, rtol=1e-5)
        seen += len(texts[i:i + 512])
    assert seen >= 10_000


@pytest.mark.data
@pytest.mark.skipif(not (DATA / "minilm" / "model.safetensors").exists(),
                    reason="needs the sample data (make data)")
def test_imported_minilm_exports_an_encoder(tmp_path):
    run_module("model.import_checkpoint", "--format", "hf", "--checkpoint_dir", DATA / "minilm",
               "--output_dir", tmp_path / "minilm")
    run_module("model.export", "--model_dir", tmp_path / "minilm", "--export_dir", tmp_path / "x")
    info = json.loads((tmp_path / "x" / "minilm" / "export.json").read_text())
    assert info["kind"] == "encoder" and info["verification"]["max_abs_diff"] <= 1e-5
    assert info["model"]["hidden_act"] == "gelu"
    hub = tf.saved_model.load(str(tmp_path / "x" / "minilm_encoder"))
    pre = tf.saved_model.load(str(tmp_path / "x" / "minilm_preprocessor"))
    emb = hub(pre(tf.constant(["a film", "a movie", "tax law"])))["pooled_output"].numpy()
    assert emb.shape == (3, 384) and np.isfinite(emb).all()


def test_export_error_names_the_directory(tmp_path):
    proc = run_module("model.export", "--model_dir", tmp_path, "--export_dir", tmp_path / "x",
                      check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"export: {tmp_path} is not a model directory: no config.json")
