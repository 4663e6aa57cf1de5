"""model.export: SavedModels run by their clients in fresh processes (TF Serving's session
loader, saved_model_cli, TF Hub with tf-keras); model.predict; hostile text."""

import base64
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from model.networks.preprocessing import OPS_NEEDED
from tests.conftest import ROOT, run_module

DATA = ROOT / "data"


HERE = ROOT / "tests" / "model"


@pytest.fixture(scope="module")
def exported(pretrained_tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    # No --max_seq_length: the model's own (the tiny dataset's 32).
    run_module("model.export", "--model_dir", pretrained_tiny, "--export_dir", out, "--top_k", 3)
    return out


def export_info(export_dir, name, version=1) -> dict:
    return json.loads((export_dir / name / str(version) / "assets.extra" / "export.json")
                      .read_text())


def session_run(saved_model, signature, batches, tmp_path) -> dict:
    """Runs a signature through the session loader in a fresh process (tests/model/session_client.py)."""
    (tmp_path / "in.json").write_text(json.dumps(batches))
    proc = subprocess.run([sys.executable, str(HERE / "session_client.py"), str(saved_model),
                           signature, str(tmp_path / "in.json"), str(tmp_path / "out.npz")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as data:
        return {k: data[k] for k in data.files}


def b64(strings):
    return {"b64": [base64.b64encode(s if isinstance(s, bytes) else s.encode()).decode()
                    for s in strings]}


def test_export_writes_verified_saved_models(exported, pretrained_tiny):
    name = pretrained_tiny.name
    info = export_info(exported, name)
    assert info["kind"] == "pretrainer" and info["version"] == 1
    assert info["seq_length"] == info["trained_seq_length"] == 32
    for sub in (name, f"{name}_token_ids", f"{name}_encoder", f"{name}_preprocessor"):
        assert (exported / sub / "1" / "saved_model.pb").exists(), sub
    assert not [p for p in os.listdir(exported) if p.startswith(".staging")]
    check = info["verification"]
    assert check["max_abs_diff"] <= 1e-5 and check["ids_equal"]
    # Every signature of every SavedModel ran in TF Serving's loader, and the outputs of
    # the three clients were compared (session loader, tf.saved_model.load, saved_model_cli).
    assert check["session_signatures_run"] == {
        "serving": ["serving_default", "token_ids"], "token_ids_only": ["token_ids"],
        "encoder": ["serving_default"], "preprocessor": ["pair", "serving_default"]}
    assert check["hub_encoder"]["trainable_variables"] == 39  # 2 layers x 16 + 7
    assert check["outputs_compared"] >= 20
    # Measured in the fresh process, not declared: the ops its TF lacks without tf-text.
    assert check["tf_text_ops_needed"] == sorted(OPS_NEEDED)
    assert check["token_ids_only_ops_outside_core"] == []
    assert check["modules_imported_by_checker"] == []
    assert sorted(info["signatures"]) == ["serving_default", "token_ids"]
    assert sorted(info["signatures"]["serving_default"]["inputs"]) == ["text", "text_b"]
    assert sorted(info["signatures"]["token_ids"]["inputs"]) == [
        "input_ids", "input_mask", "masked_lm_positions", "segment_ids"]
    # A second export is the next version of all four, nothing overwritten; another
    # length than the model's is said.
    proc = run_module("model.export", "--model_dir", pretrained_tiny, "--export_dir", exported,
                      "--max_seq_length", 16, "--noverify")
    assert json.loads(proc.stdout.strip().splitlines()[-1])["serving"].endswith(f"{name}/2")
    assert f"exporting at --max_seq_length 16, but {pretrained_tiny} was trained at 32" \
        in proc.stderr
    for sub in (name, f"{name}_token_ids", f"{name}_encoder", f"{name}_preprocessor"):
        assert sorted(os.listdir(exported / sub)) == ["1", "2"], sub
    assert export_info(exported, name, 2)["seq_length"] == 16
    assert export_info(exported, name, 1)["seq_length"] == 32


def test_session_loader_runs_token_ids_as_keras_does(exported, pretrained_tiny, tmp_path):
    """TF Serving's path (the issue's FailedPreconditionError) against the Keras model itself."""
    from model.networks.model_dir import open_model_dir
    from model.tasks import load_model

    rng = np.random.default_rng(0)
    ids = rng.integers(7, 199, size=(3, 32)).astype(np.int32)
    ids[:, 0] = 4
    mask = np.ones_like(ids)
    mask[1, 20:] = 0
    segments = np.zeros_like(ids)
    segments[:, 16:] = 1
    positions = np.array([[1, 2, 3], [5, 6, 0], [30, 31, 1]], np.int32)
    inputs = {"input_ids": ids, "input_mask": mask, "segment_ids": segments,
              "masked_lm_positions": positions}
    model, _, _ = load_model(open_model_dir(str(pretrained_tiny)))
    keras_out = model(inputs, training=False)
    for sub in (pretrained_tiny.name, f"{pretrained_tiny.name}_token_ids"):
        got = session_run(exported / sub / "1", "token_ids",
                          {k: v.tolist() for k, v in inputs.items()}, tmp_path)
        np.testing.assert_allclose(got["mlm_logits/0"], keras_out["mlm_logits"], atol=1e-5)
        np.testing.assert_allclose(got["nsp_probabilities/0"],
                                   tf.nn.softmax(keras_out["nsp_logits"]), atol=1e-5)


def test_saved_model_cli_runs_the_token_ids_model(exported, pretrained_tiny, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    ids = "[[4,150,166,6,5,0,0,0]]"
    zeros = "[[0,0,0,0,0,0,0,0]]"
    proc = subprocess.run(
        [cli, "run", "--dir", str(exported / f"{pretrained_tiny.name}_token_ids" / "1"),
         "--tag_set", "serve", "--signature_def", "token_ids", "--input_exprs",
         f"input_ids={ids};input_mask=[[1,1,1,1,1,0,0,0]];segment_ids={zeros};"
         "masked_lm_positions=[[3]]",
         "--outdir", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    logits = np.load(tmp_path / "out" / "mlm_logits.npy")
    assert logits.shape == (1, 1, 199) and np.isfinite(logits).all()


def test_tf_hub_tutorials_run_on_the_encoder_and_preprocessor(exported, pretrained_tiny,
                                                              tmp_path):
    """hub.KerasLayer(trainable=True) fine-tunes the encoder; the sentence-pair recipe packs."""
    pytest.importorskip("tensorflow_hub")
    name = pretrained_tiny.name
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    proc = subprocess.run([sys.executable, str(HERE / "hub_client.py"),
                           str(exported / f"{name}_preprocessor" / "1"),
                           str(exported / f"{name}_encoder" / "1"), str(tmp_path / "hub.json")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "hub.json").read_text())
    assert report["keras"].startswith("tf_keras")
    assert report["encoder_trainable_weights"] == 39
    assert report["encoder_weights_changed"] == 39  # the encoder itself was fine-tuned
    assert report["dropout_in_training"] and report["encoder_outputs"] == 2
    assert report["special_tokens"] == {"vocab_size": 199, "start_of_sequence_id": 4,
                                        "end_of_segment_id": 5, "padding_id": 0, "mask_id": 6}
    assert report["tokenize_shape"] == [2, 2]  # [batch, words, wordpieces]
    # "the cat sat" -> the | c ##a ##t | s ##a ##t (fixture vocab), "" -> no words.
    assert report["tokenize"] == [[[128], [150, 174, 192], [166, 174, 192]], []]
    pair = report["pair"]
    assert np.array(pair["input_word_ids"]).shape == (2, 24)
    # [CLS] the cat sat [SEP] on the mat [SEP]: segment B and its [SEP] have type id 1.
    row = pair["input_word_ids"][0]
    first_sep = row.index(5)
    assert pair["input_type_ids"][0][:first_sep + 1] == [0] * (first_sep + 1)
    n = sum(pair["input_mask"][0])
    assert row[n - 1] == 5 and pair["input_type_ids"][0][first_sep + 1:n] == [1] * (
        n - first_sep - 1)
    # Too long for 24: trimmed round-robin, so the short segment B keeps all of "short".
    assert sum(pair["input_mask"][1]) == 24 and pair["input_type_ids"][1].count(1) == 6


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


def _check_hostile_batch(out, n):
    assert out["input_ids"].shape[0] == n and out["input_ids"].shape[1] <= 32
    assert (out["input_ids"][:, 0] == 4).all()  # [CLS] first, whatever came in
    assert np.isfinite(out["top_k_probabilities"]).all()
    assert np.isfinite(out["nsp_probabilities"]).all()
    np.testing.assert_allclose(out["nsp_probabilities"].sum(-1), 1.0, rtol=1e-5)


def _hostile_batches(n=10_240, size=512):
    texts = _hostile_strings(n)
    for i in range(0, len(texts), size):
        a = texts[i:i + size]
        b = (texts[i + 1:i + 1 + size] + [b""] * size)[:len(a)]
        yield a, b


def test_raw_text_signature_survives_hostile_strings(exported, pretrained_tiny, tmp_path):
    path = exported / pretrained_tiny.name / "1"
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    seen = 0
    batches = []
    for a, b in _hostile_batches():
        out = {k: v.numpy() for k, v in fn(text=tf.constant(a), text_b=tf.constant(b)).items()}
        _check_hostile_batch(out, len(a))
        batches.append({"text": b64(a), "text_b": b64(b)})
        seen += len(a)
    assert seen >= 10_000
    # The same 10,240 strings through TF Serving's loading path.
    got = session_run(path, "serving_default", batches, tmp_path)
    for i, batch in enumerate(batches):
        _check_hostile_batch({k.split("/")[0]: v for k, v in got.items()
                              if k.endswith(f"/{i}")}, len(batch["text"]["b64"]))


@pytest.mark.data
@pytest.mark.skipif(not (DATA / "minilm" / "model.safetensors").exists(),
                    reason="needs the sample data (make data)")
def test_imported_minilm_exports_an_encoder(tmp_path):
    run_module("model.import_checkpoint", "--format", "hf", "--checkpoint_dir", DATA / "minilm",
               "--output_dir", tmp_path / "minilm")
    run_module("model.export", "--model_dir", tmp_path / "minilm", "--export_dir", tmp_path / "x")
    info = export_info(tmp_path / "x", "minilm")
    assert info["kind"] == "encoder" and info["verification"]["max_abs_diff"] <= 1e-5
    assert info["model"]["hidden_act"] == "gelu"
    assert info["seq_length"] == 128 and info["trained_seq_length"] == 0  # config says none
    assert info["verification"]["session_signatures_run"]["serving"] == [
        "serving_default", "token_ids"]
    assert info["verification"]["hub_encoder"]["trainable_variables"] == 5 + 6 * 16 + 2
    hub = tf.saved_model.load(str(tmp_path / "x" / "minilm_encoder" / "1"))
    pre = tf.saved_model.load(str(tmp_path / "x" / "minilm_preprocessor" / "1"))
    out = hub(pre(tf.constant(["a film", "a movie", "tax law"])))
    emb = out["pooled_output"].numpy()
    assert emb.shape == (3, 384) and np.isfinite(emb).all()
    assert len(out["encoder_outputs"]) == 6


def test_export_error_names_the_directory(tmp_path):
    proc = run_module("model.export", "--model_dir", tmp_path, "--export_dir", tmp_path / "x",
                      check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"export: {tmp_path} is not a model directory: no config.json")


def test_serve_request_refuses_a_pair_instance_without_text_b(exported, pretrained_tiny, tmp_path):
    serving = exported / pretrained_tiny.name / "1"
    script = ROOT / "scripts" / "serve_request.py"
    (tmp_path / "bad.json").write_text(json.dumps({"instances": [{"text": "the cat sat"}]}))
    proc = subprocess.run([sys.executable, str(script), str(serving), str(tmp_path / "bad.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f'serve_request: {tmp_path / "bad.json"}: instance 0 lacks input "text_b" (this model '
        'takes text pairs: send "text_b": "" for a single text)')
    (tmp_path / "ok.json").write_text(json.dumps(
        {"instances": [{"text": "the cat [MASK]", "text_b": ""}]}))
    proc = subprocess.run([sys.executable, str(script), str(serving), str(tmp_path / "ok.json")],
                          capture_output=True, text=True, check=True)
    row = json.loads(proc.stdout.strip().splitlines()[-1])["predictions"][0]
    assert row["masked_lm_valid"][0] == 1 and len(row["top_k_tokens"][0]) == 3


MEMORY_CHILD = r'''
import json, resource, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer's ops, as TF Serving links them)
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
def call(texts):
    return fn(text=tf.constant(texts), text_b=tf.constant([""] * len(texts)))
call(["warm up [MASK] ."])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
texts = [f"an ordinary sentence number {i} without any mask in it ." for i in range(1000)]
texts[7] = "one row asks : the capital of france is [MASK] ."
out = call(texts)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
error = ""
try:
    call(["x"] * 1025)
except tf.errors.InvalidArgumentError as e:
    error = next((line.strip() for line in e.message.splitlines() if "at most" in line), e.message)
print(json.dumps({"grown_mb": grown, "valid": out["masked_lm_valid"].numpy().sum(axis=1).tolist(),
                  "top": out["top_k_tokens"].numpy()[7, 0].astype(str).tolist(), "error": error}))
'''


@pytest.mark.data
@pytest.mark.skipif(not (DATA / "vocab" / "uncased_vocab.txt").exists(),
                    reason="the uncased BERT vocabulary is fetched by `make data`")
def test_raw_text_masked_lm_memory_is_what_the_request_asks(tmp_path):
    """1,000 strings, one with a [MASK], through a 30,522-word pretrainer's raw-text signature:
    the vocabulary projection runs for the one [MASK] only (before: a full-vocabulary softmax
    for 20 slots of every row, ~2.4 GB here)."""
    from model.export.writer import export_model
    from model.training.optimization import OptimizerConfig
    from model.training.pretraining_run import PretrainConfig, pretrain
    from tests.model.conftest import TINY, make_dataset_dir
    vocab = DATA / "vocab" / "uncased_vocab.txt"
    data = make_dataset_dir(tmp_path / "ds", vocab_file=str(vocab), dupe_factor=1)
    pretrain(PretrainConfig(input_file=str(data), output_dir=str(tmp_path / "m"),
                            model_overrides=tuple(TINY), train_batch_size=4, log_steps=1,
                            optimizer=OptimizerConfig(num_train_steps=1, num_warmup_steps=0)))
    export_model(str(tmp_path / "m"), str(tmp_path / "export"), verify=False)
    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(tmp_path / "export" / "m" / "1")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["valid"][7] == 1 and sum(result["valid"]) == 1
    assert len(result["top"]) == 5
    assert result["grown_mb"] < 400, result  # the encoder's activations, not logits
    assert "[at most 1024 strings per request to this signature: split the batch]" in \
        result["error"], result


def test_the_verifier_refuses_an_export_that_differs_from_the_keras_model(pretrained_tiny,
                                                                          tmp_path, monkeypatch):
    """The verification is what stands between a wrong SavedModel and TF Serving: make the
    written SavedModels differ from the Keras model (a 1e-3 shift of the token embeddings
    after writing, far above the 1e-5 tolerance) and the export must be refused, with
    nothing published."""
    import model.export.writer as exporter
    real = exporter.verify_export

    def after_a_change(serving, hub_encoder, staged):
        table = next(w for w in serving.keras_model.weights if "token_embedding" in w.path)
        table.assign(table + 1e-3)
        return real(serving, hub_encoder, staged)

    monkeypatch.setattr(exporter, "verify_export", after_a_change)
    with pytest.raises(exporter.ExportError, match=r"a client's output differs from the Keras "
                                                   r"model: \S+ by [\d.e+-]+ \(> 1e-05\)"):
        exporter.export_model(str(pretrained_tiny), str(tmp_path / "e"))
    assert [p for p in os.listdir(tmp_path / "e")] == [f".staging-{pretrained_tiny.name}-1"]
