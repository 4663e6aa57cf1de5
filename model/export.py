r"""Model directory -> SavedModels for TF Serving and for TF Hub users.

    python -m model.export --model_dir runs/demo/bert_tiny --export_dir runs/demo/export

writes, for any model directory (pretrained, imported, fine-tuned), version N
(one more than the newest already there, or --version):

    EXPORT_DIR/<name>/N/                    TF Serving model; signatures:
        serving_default  text [B] string (+ text_b [B] string for pair models;
                         "" = no second segment) -> the kind's outputs, tokenized in-graph
        token_ids        input_ids, input_mask, segment_ids [B, L] int32 (+ masked_lm_positions
                         [B, P] for a pretrainer) -> the same outputs, no tokenizer
    EXPORT_DIR/<name>/N/assets.extra/export.json
                                            what was written, the signatures, the tf-text ops
                                            the raw-text model needs, the verification
    EXPORT_DIR/<name>_token_ids/N/          token_ids only: core TensorFlow ops, for servers
                                            without tensorflow-text
    EXPORT_DIR/<name>_encoder/N/            TF Hub reusable BERT encoder (model/hub_export.py)
    EXPORT_DIR/<name>_preprocessor/N/       TF Hub BERT preprocessor: __call__(text),
                                            tokenize(text), bert_pack_inputs(segments,
                                            seq_length=), pair(text, text_b)

The raw-text signatures pack to the length the model was trained or
fine-tuned at (config.json), unless --max_seq_length says otherwise.

Then it checks its own output as the clients run it (model/export_check.py):
in a fresh process importing only tensorflow and tensorflow_text, TF
Serving's graph-mode session loader runs every signature of every
SavedModel, tf.saved_model.load runs the raw-text signature and the TF Hub
encoder, and `saved_model_cli run` runs the token_ids model from an input
file; every output must match the Keras model (max abs diff <= 1e-5).
"""

import json
import os
import shutil
import sys
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
from absl import app, flags

from model.export_check import ClientError, run_clients, saved_model_cli, saved_model_cli_run
from model.hub_export import HubEncoder, HubPreprocessor, hub_inputs
from model.model_dir import (ModelDir, ModelDirError, load_model, open_model_dir,
                             quiet_tensorflow)
from model.preprocessing import BertTextPreprocessor, trim_to_longest
from model.savedmodel import ExportRoot, keras_free, save
from tfrecords.vocab import read_vocab

TOLERANCE = 1e-5
DEFAULT_SEQ_LENGTH = 128  # for a model directory that records no length (an imported encoder)
CHECK_TEXTS = [("The capital of France is [MASK].", ""),
               ("a gripping , funny and moving film", "it was [MASK] bad ."),
               ("", ""), ("Ünïcödé 中文 😀 \x07 text " * 40, "second segment")]


class ExportError(Exception):
    """An export that cannot be made or does not verify; the message says which."""


def _heads(md: ModelDir):
    """(pair input?, function: Keras model, packed inputs -> outputs dict) of a kind."""
    if md.kind == "pretrainer":
        def run(model, x, positions):
            out = model({"input_ids": x["input_ids"], "input_mask": x["input_mask"],
                         "segment_ids": x["segment_ids"], "masked_lm_positions": positions},
                        training=False)
            res = {"mlm_logits": tf.cast(out["mlm_logits"], tf.float32)}
            if "nsp_logits" in out:
                res["nsp_probabilities"] = tf.nn.softmax(tf.cast(out["nsp_logits"], tf.float32))
            return res
        return True, run
    if md.kind == "encoder":
        def run(model, x, positions=None):
            out = model({"token_ids": x["input_ids"], "segment_ids": x["segment_ids"],
                         "padding_mask": x["input_mask"]}, training=False)
            return {k: tf.cast(v, tf.float32) for k, v in out.items()}
        return True, run
    from model import tasks
    return tasks.serving_heads(md)


XLA_LENGTH_MULTIPLE = 16  # --jit_compile: raw-text inputs padded to a multiple of this


class _XlaModel:
    """A Keras model called through one XLA-compiled tf.function (inference only)."""

    def __init__(self, model):
        self.keras_model = model
        self.fn = tf.function(lambda inputs: model(inputs, training=False), jit_compile=True)

    def __call__(self, inputs, training=False):
        return self.fn(inputs)


class ServingModule(ExportRoot):
    """The TF Serving model: raw-text and token-id signatures around the Keras model.

    With jit_compile, the Keras model (not the tokenizer, nor the string
    outputs, which XLA cannot compile) runs as one XLA cluster, and raw-text
    batches are padded to a multiple of XLA_LENGTH_MULTIPLE tokens: XLA
    compiles once per input shape.
    """

    def __init__(self, md: ModelDir, model, seq_length: int, max_predictions: int, top_k: int,
                 with_text: bool = True, jit_compile: bool = False):
        super().__init__()
        self._model = keras_free(_XlaModel(model) if jit_compile else model)
        self._multiple = XLA_LENGTH_MULTIPLE if jit_compile else 1
        self._signatures = None
        self.kind = md.kind
        self.pairs, self._run = _heads(md)
        self.seq_length, self.max_predictions, self.top_k = seq_length, max_predictions, top_k
        # One read of the vocabulary: its tokens (for top-k and answer text) and the
        # special ids the token_ids-only model needs without a preprocessor.
        vocab = read_vocab(md.vocab_file)
        self.vocab = tf.constant(vocab)
        self.mask_id, self.sep_id = vocab.index("[MASK]"), vocab.index("[SEP]")
        self.preprocessor = BertTextPreprocessor(md.vocab_file, md.do_lower_case, seq_length) \
            if with_text else None
        task = md.config.get("task", {})
        self.labels = tf.constant(task.get("labels") or [""])
        self.version_2 = bool(task.get("version_2"))
        self.max_answer_length = int(task.get("max_answer_length", 30))

    def outputs(self, x: Dict[str, tf.Tensor], positions=None) -> Dict[str, tf.Tensor]:
        return self._run(self._model.obj, x, positions)

    def keras_outputs(self, x: Dict[str, tf.Tensor], positions=None) -> Dict[str, tf.Tensor]:
        """outputs() of the plain Keras model (not XLA-compiled): the verification's reference."""
        model = self._model.obj
        return self._run(getattr(model, "keras_model", model), x, positions)

    def mask_positions(self, input_ids):
        """The first P positions holding [MASK] per row, 0-padded; and their validity."""
        L = tf.shape(input_ids)[1]
        idx = tf.broadcast_to(tf.range(L)[None, :], tf.shape(input_ids))
        key = tf.sort(tf.where(input_ids == self.mask_id, idx, L + idx), axis=1)
        key = key[:, :self.max_predictions]
        valid = key < L
        return tf.where(valid, key, 0), valid

    def text_outputs(self, text, text_b=None):
        if self.kind == "ner":
            return self._ner_text_outputs(text)
        split = self.kind == "pretrainer"
        a = self.preprocessor.tokenize(text, split_on_mask=split)
        b = self.preprocessor.tokenize(text_b, split_on_mask=split) if text_b is not None else None
        x = trim_to_longest(self.preprocessor.pack(a, b), multiple=self._multiple)
        if self.kind == "squad":
            return self._squad_text_outputs(x)
        if self.kind != "pretrainer":
            return dict(self.outputs(x), input_ids=x["input_ids"])
        positions, valid = self.mask_positions(x["input_ids"])
        out = self.outputs(x, positions)
        probs = tf.nn.softmax(out.pop("mlm_logits"))
        top_probs, top_ids = tf.math.top_k(probs, k=self.top_k)
        out.update(input_ids=x["input_ids"], masked_lm_positions=positions,
                   masked_lm_valid=tf.cast(valid, tf.int32), top_k_ids=top_ids,
                   top_k_tokens=tf.gather(self.vocab, top_ids), top_k_probabilities=top_probs)
        return out

    def _ner_text_outputs(self, text):
        """Whitespace words -> one label per word (its first subword's), as fine-tuned."""
        ids, positions, lengths = self.preprocessor.tokenize_words(text)
        x = trim_to_longest(self.preprocessor.pack(ids), multiple=self._multiple)
        out = self.outputs(x)
        fits = positions + lengths <= self.seq_length - 1
        pos = tf.where(fits, positions, 0).to_tensor()
        word_ids = tf.gather(out["token_label_ids"], pos, batch_dims=1)
        # Words cut off by max_seq_length get "O" (the label set's "O", else the first).
        labels = self.labels
        other = tf.cast(tf.argmax(tf.cast(tf.equal(labels, "O"), tf.int32)), tf.int32)
        word_ids = tf.where(fits.to_tensor(), word_ids, other)
        num_words = tf.cast(positions.row_lengths(), tf.int32)
        valid = tf.sequence_mask(num_words, tf.shape(word_ids)[1])
        return dict(out, input_ids=x["input_ids"], num_words=num_words,
                    token_labels=tf.where(valid, tf.gather(labels, word_ids), ""))

    def _squad_text_outputs(self, x):
        """The best span of the context (segment 1, not its [SEP]), its text from WordPieces."""
        out = self.outputs(x)
        s, e = out["start_logits"], out["end_logits"]
        context = tf.logical_and(x["segment_ids"] > 0, x["input_ids"] != self.sep_id)
        L = tf.shape(s)[1]
        i = tf.range(L)
        ok = tf.logical_and(i[None, :, None] <= i[None, None, :],
                            i[None, None, :] - i[None, :, None] < self.max_answer_length)
        ok = tf.logical_and(ok, tf.logical_and(context[:, :, None], context[:, None, :]))
        scores = tf.where(ok, s[:, :, None] + e[:, None, :], -1e9)
        best = tf.argmax(tf.reshape(scores, [tf.shape(s)[0], -1]), -1, output_type=tf.int32)
        start, end = best // L, best % L
        best_score = tf.reduce_max(tf.reshape(scores, [tf.shape(s)[0], -1]), -1)
        span = tf.logical_and(i[None, :] >= start[:, None], i[None, :] <= end[:, None])
        tokens = tf.ragged.boolean_mask(tf.gather(self.vocab, x["input_ids"]), span)
        text = tf.strings.regex_replace(tf.strings.reduce_join(tokens, axis=1, separator=" "),
                                        " ##", "")
        no_answer = tf.logical_or(s[:, 0] + e[:, 0] > best_score,
                                  tf.logical_not(tf.reduce_any(context, 1))) \
            if self.version_2 else tf.logical_not(tf.reduce_any(context, 1))
        return dict(out, input_ids=x["input_ids"], answer_start=tf.where(no_answer, 0, start),
                    answer_end=tf.where(no_answer, 0, end),
                    answer=tf.where(no_answer, "", text), answer_score=best_score)

    def signatures(self) -> dict:
        """name -> concrete function (traced once)."""
        if self._signatures is None:
            self._signatures = self._trace()
        return self._signatures

    def _trace(self) -> dict:
        L = None
        ids = {k: tf.TensorSpec([None, L], tf.int32, name=k)
               for k in ("input_ids", "input_mask", "segment_ids")}
        if self.kind == "pretrainer":
            ids["masked_lm_positions"] = tf.TensorSpec([None, None], tf.int32,
                                                       name="masked_lm_positions")

        @tf.function(input_signature=[ids])
        def token_ids(inputs):
            return self.outputs(inputs, inputs.get("masked_lm_positions"))

        sigs = {"token_ids": token_ids.get_concrete_function()}
        if self.preprocessor is None:
            return sigs
        text = tf.TensorSpec([None], tf.string, name="text")
        if self.pairs:
            @tf.function(input_signature=[text, tf.TensorSpec([None], tf.string, name="text_b")])
            def serving_default(text, text_b):
                return self.text_outputs(text, text_b)
        else:
            @tf.function(input_signature=[text])
            def serving_default(text):
                return self.text_outputs(text)
        sigs["serving_default"] = serving_default.get_concrete_function()
        return sigs


def _next_version(export_dir: str, name: str) -> int:
    versions = []
    for sub in (name, f"{name}_token_ids", f"{name}_encoder", f"{name}_preprocessor"):
        base = os.path.join(export_dir, sub)
        if os.path.isdir(base):
            versions += [int(d) for d in os.listdir(base) if d.isdigit()]
    return max(versions, default=0) + 1


def model_seq_length(md: ModelDir) -> int:
    """The length the model was trained or fine-tuned at (0 when the directory does not say)."""
    for section in ("task", "dataset", "training"):
        value = md.config.get(section, {}).get("max_seq_length")
        if value:
            return int(value)
    return 0


def export_model(model_dir: str, export_dir: str, *, version: Optional[int] = None,
                 name: str = "", seq_length: int = 0, max_predictions: int = 20,
                 top_k: int = 5, verify: bool = True, jit_compile: bool = False) -> dict:
    """Writes the SavedModels of a model directory; returns export.json's content.

    Every SavedModel is written into EXPORT_DIR/.staging-<name>-<version>/,
    verified there, and only then moved into its numbered version directory:
    TF Serving, which polls the base directories, never sees a half-written
    or unverified version.

    Args:
        seq_length: packed length of the raw-text signatures; 0 = the length the
            model was trained or fine-tuned at (config.json), else 128.
        jit_compile: XLA-compile the model inside the two serving SavedModels (faster
            on CPU, but stock TF Serving runs XLA only with --xla_cpu_compilation_enabled;
            see WORKSPACE.md). The TF Hub encoder is never compiled (it is fine-tuned).

    Example:
        >>> export_model("runs/demo/bert_tiny", "runs/demo/export")  # doctest: +SKIP
    """
    try:
        md = open_model_dir(model_dir)
        model, encoder = load_model(md)
    except ModelDirError as e:
        raise ExportError(str(e)) from None
    if 0 < seq_length < 8:
        raise ExportError(f"--max_seq_length {seq_length}: at least 8 (or 0 for the model's own)")
    trained_at = model_seq_length(md)
    if not seq_length:
        seq_length = trained_at or min(DEFAULT_SEQ_LENGTH, md.model_config.max_sequence_length)
        source = "the model's own" if trained_at else "default; config.json records none"
        print(f"Exporting at max_seq_length {seq_length} ({source})", file=sys.stderr)
    elif trained_at and seq_length != trained_at:
        print(f"Warning: exporting at --max_seq_length {seq_length}, but {model_dir} was "
              f"{'fine-tuned' if 'task' in md.config else 'trained'} at {trained_at}",
              file=sys.stderr)
    if seq_length > md.model_config.max_sequence_length:
        raise ExportError(f"--max_seq_length {seq_length} exceeds the model's "
                          f"max_sequence_length {md.model_config.max_sequence_length}")
    name = name or os.path.basename(os.path.normpath(model_dir))
    version = version or _next_version(export_dir, name)
    final = {"serving": os.path.join(export_dir, name, str(version)),
             "token_ids_only": os.path.join(export_dir, f"{name}_token_ids", str(version)),
             "encoder": os.path.join(export_dir, f"{name}_encoder", str(version)),
             "preprocessor": os.path.join(export_dir, f"{name}_preprocessor", str(version))}
    taken = [p for p in final.values() if os.path.exists(p)]
    if taken:
        raise ExportError(f"{taken[0]} exists; pass another --version")
    staging = os.path.join(export_dir, f".staging-{name}-{version}")
    shutil.rmtree(staging, ignore_errors=True)
    staged = {k: os.path.join(staging, k) for k in final}

    serving = ServingModule(md, model, seq_length, max_predictions, top_k,
                            jit_compile=jit_compile)
    ids_only = ServingModule(md, model, seq_length, max_predictions, top_k, with_text=False,
                             jit_compile=jit_compile)
    hub_encoder = HubEncoder(encoder)
    hub_preprocessor = HubPreprocessor(serving.preprocessor, seq_length)
    sigs = serving.signatures()
    save(serving, staged["serving"], sigs)
    save(ids_only, staged["token_ids_only"], ids_only.signatures())
    hub_encoder.write(staged["encoder"])
    hub_preprocessor.write(staged["preprocessor"])
    print(f"Wrote 4 SavedModels in {staging}", file=sys.stderr, flush=True)

    info = {"kind": md.kind, "model_dir": os.path.abspath(model_dir), "name": name,
            "version": version, "seq_length": seq_length, "trained_seq_length": trained_at,
            "model": md.config["model"], "do_lower_case": md.do_lower_case,
            "tensorflow": tf.__version__, "tensorflow_text": _tf_text_version(),
            "jit_compile": jit_compile, "saved_models": final, "signatures": _describe(sigs)}
    if verify:
        try:
            info["verification"] = verify_export(serving, hub_encoder, staged)
        except (ExportError, ClientError) as e:
            raise ExportError(f"{e} (the unverified export is left in {staging})") from None
    # Beside the graph, where SavedModel keeps extra files: one record per version.
    extra = os.path.join(staged["serving"], "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "export.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
    for key, path in final.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(staged[key], path)
    shutil.rmtree(staging, ignore_errors=True)
    return info


def _tf_text_version() -> str:
    import tensorflow_text
    return getattr(tensorflow_text, "__version__", "unknown")


def _describe(sigs) -> dict:
    out = {}
    for key, fn in sigs.items():
        inputs = {spec.name: spec for spec in tf.nest.flatten(fn.structured_input_signature)}
        out[key] = {"inputs": {k: f"{v.dtype.name} {v.shape}" for k, v in sorted(inputs.items())},
                    "outputs": {k: f"{v.dtype.name} {v.shape}"
                                for k, v in sorted(fn.structured_outputs.items())}}
    return out


def _expected(serving: "ServingModule", hub_encoder: HubEncoder, text, text_b):
    """The Keras model's outputs on the check texts, keyed as verify_export's calls."""
    pre = serving.preprocessor
    split = serving.kind == "pretrainer"
    a = pre.tokenize(tf.constant(text), split_on_mask=split)
    b = pre.tokenize(tf.constant(text_b), split_on_mask=split) if serving.pairs else None
    x = {k: v.numpy() for k, v in pre.pack(a, b).items()}
    positions = None
    if serving.kind == "pretrainer":
        positions = serving.mask_positions(tf.constant(x["input_ids"]))[0].numpy()
    ids = {k: v.numpy() for k, v in serving.keras_outputs(
        {k: tf.constant(v) for k, v in x.items()},
        None if positions is None else tf.constant(positions)).items()}
    expected = {"ids/" + k: v for k, v in ids.items()}
    expected.update({"ids_only/" + k: v for k, v in ids.items()})
    enc_in = hub_inputs(x)
    enc = hub_encoder.keras_outputs(enc_in)
    expected["enc/sequence_output"] = enc["sequence_output"].numpy()
    expected["enc/pooled_output"] = expected["enc/default"] = enc["pooled_output"].numpy()
    for i, layer in enumerate(enc["encoder_outputs"]):
        expected[f"enc/encoder_outputs_{i}"] = layer.numpy()
    if serving.kind == "ner":
        # NER's text path tokenizes word by word (a word of dropped characters
        # becomes [UNK]); its per-token outputs are checked on its own ids.
        x_text = {k: v.numpy() for k, v in pre.pack(pre.tokenize_words(tf.constant(text))[0])
                  .items()}
        expected.update({"text/" + k: v.numpy() for k, v in serving.keras_outputs(
            {k: tf.constant(v) for k, v in x_text.items()}).items()})
    else:
        x_text = x
        if serving.kind != "pretrainer":
            expected.update({"text/" + k: v for k, v in ids.items()})
    if "nsp_probabilities" in ids:
        expected["text/nsp_probabilities"] = ids["nsp_probabilities"]
    if serving.kind == "pretrainer":  # the raw-text top-k comes from the same logits
        probs = tf.nn.softmax(ids["mlm_logits"])
        expected["text/top_k_probabilities"] = tf.math.top_k(probs, k=serving.top_k)[0].numpy()
        expected["text/masked_lm_positions"] = positions
    single = {k: v.numpy() for k, v in pre.pack(pre.tokenize(tf.constant(text))).items()}
    pair = {k: v.numpy() for k, v in pre.pack(pre.tokenize(tf.constant(text)),
                                              pre.tokenize(tf.constant(text_b))).items()}
    for key, packed in (("pre", single), ("pair", pair)):
        expected.update({f"{key}/{k}": v for k, v in hub_inputs(packed).items()})
    ids_inputs = dict(x, **({} if positions is None else {"masked_lm_positions": positions}))
    masks = {"text": x_text["input_mask"] > 0, "ids": x["input_mask"] > 0}
    return expected, ids_inputs, enc_in, masks


def _compare(expected: dict, got: dict, mask: np.ndarray) -> float:
    """Largest difference of one output (per-token outputs at real tokens only)."""
    v, g = expected, got
    per_token = v.ndim >= 2 and v.shape[:2] == mask.shape
    if per_token and g.shape[1] < v.shape[1]:  # the text path trims padding
        width = g.shape[1]
        if mask[:, width:].any():
            return float("inf")
        v, mask = v[:, :width], mask[:, :width]
    if g.shape != v.shape:
        return float("inf")
    if v.dtype.kind in "iubOS":  # ids, labels: equal or not (at real tokens)
        a = g.astype("S") if v.dtype.kind in "OS" else g
        b = v.astype("S") if v.dtype.kind in "OS" else v
        same = np.array_equal(a[mask], b[mask]) if per_token else np.array_equal(a, b)
        return 0.0 if same else float("inf")
    delta = np.abs(g.astype(np.float64) - v)
    if per_token:
        delta = delta * mask.reshape(mask.shape + (1,) * (v.ndim - 2))
    return float(np.max(delta)) if v.size else 0.0


def verify_export(serving: "ServingModule", hub_encoder: HubEncoder, paths: dict) -> dict:
    """Runs every SavedModel as its clients do, in a fresh process, against the Keras model.

    TF Serving's session loader runs every signature of the four SavedModels;
    tf.saved_model.load runs the raw-text signature (model.predict's path) and
    the TF-Hub encoder's `__call__`; `saved_model_cli run` runs the
    token_ids-only model from an input file. Each output must match the Keras
    model within TOLERANCE (ids and labels exactly).
    """
    text = [a for a, _ in CHECK_TEXTS]
    text_b = [b for _, b in CHECK_TEXTS]
    text_inputs = {"text": text, "text_b": text_b} if serving.pairs else {"text": text}
    expected, ids_inputs, enc_in, masks = _expected(serving, hub_encoder, text, text_b)
    ids_lists = {k: v.tolist() for k, v in ids_inputs.items()}
    enc_lists = {k: v.tolist() for k, v in enc_in.items()}
    session = [("text", paths["serving"], "serving_default", text_inputs),
               ("ids", paths["serving"], "token_ids", ids_lists),
               ("ids_only", paths["token_ids_only"], "token_ids", ids_lists),
               ("pre", paths["preprocessor"], "serving_default", {"text": text}),
               ("pair", paths["preprocessor"], "pair", {"text": text, "text_b": text_b}),
               ("enc", paths["encoder"], "serving_default", enc_lists)]
    tf2 = [("text", paths["serving"], "serving_default", text_inputs),
           ("enc", paths["encoder"], "__call__", enc_lists)]
    report = run_clients(list(paths.values()), session, tf2)
    for path, names in report["signatures"].items():
        if names != report["signatures_run"][path]:
            raise ExportError(f"{path} has signatures {names}; the check ran only "
                              f"{report['signatures_run'][path]}")
    got = report["outputs"]
    cli = saved_model_cli_run(paths["token_ids_only"], "token_ids",
                              {k: v.astype(np.int32) for k, v in ids_inputs.items()})
    got.update({f"cli:ids_only/{k}": v for k, v in cli.items()})

    diffs = {}
    for k, v in expected.items():
        mask = masks["text" if k.startswith("text/") else "ids"]
        clients = [c for c in ("session", "tf2", "cli") if f"{c}:{k}" in got]
        if "session" not in clients:
            raise ExportError(f"the session loader's run has no output {k}")
        for c in clients:
            diffs[f"{c}:{k}"] = _compare(v, got[f"{c}:{k}"], mask)
    worst = max(diffs, key=diffs.get)
    if diffs[worst] > TOLERANCE:
        raise ExportError(f"a client's output differs from the Keras model: {worst} by "
                          f"{diffs[worst]:.2e} (> {TOLERANCE})")
    hub = report.get("hub_variables", {})
    if not hub.get("trainable_variables"):
        raise ExportError(f"{paths['encoder']}: tf.saved_model.load finds no trainable_variables")
    show = saved_model_cli("show", "--dir", paths["serving"], "--all")
    missing = [s for s in ("serving_default", "token_ids") if f"signature_def['{s}']" not in show]
    if missing:
        raise ExportError(f"saved_model_cli show --all does not list {missing}")
    text_ops = sorted(set(report["ops"][paths["serving"]]))
    result = {"max_abs_diff": diffs[worst], "worst_output": worst, "tolerance": TOLERANCE,
              "outputs_compared": len(diffs), "ids_equal": True,
              "clients": ["session loader (TF Serving's path): every signature",
                          "tf.saved_model.load: serving_default, encoder __call__",
                          "saved_model_cli run --inputs: token_ids-only model"],
              "session_signatures_run": {k: report["signatures_run"][p]
                                         for k, p in paths.items()},
              "hub_encoder": hub, "tf_text_ops_needed": text_ops,
              "token_ids_only_ops_outside_core": report["ops"][paths["token_ids_only"]],
              "modules_imported_by_checker": report["modules"],
              "saved_model_cli_signatures": ["serving_default", "token_ids"]}
    print(f"Verified in a fresh process: TF Serving's session loader ran every signature, "
          f"tf.saved_model.load the raw-text signature and the TF-Hub encoder "
          f"({hub['trainable_variables']} trainable variables), saved_model_cli run the "
          f"token_ids model; max abs diff {diffs[worst]:.1e} over {len(diffs)} outputs "
          f"({worst}); raw-text model needs tf-text ops {text_ops}", file=sys.stderr, flush=True)
    return result

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags (defined only when it runs as a command, so that tests and
    other modules can import this one beside other commands)."""
    flags.DEFINE_string("model_dir", None, "A model directory (pretrained, imported, fine-tuned).")
    flags.DEFINE_string("export_dir", None, "Where to write the SavedModels.")
    flags.DEFINE_integer("version", 0, "Serving version (default: one more than the newest).",
                         lower_bound=0)
    flags.DEFINE_string("name", "", "Serving model name (default: the model dir's basename).")
    flags.DEFINE_integer("max_seq_length", 0, "Packed length of the raw-text signatures "
                         "(0: the length the model was trained or fine-tuned at).", lower_bound=0)
    flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions predicted (pretrainer).",
                         lower_bound=1)
    flags.DEFINE_integer("top_k", 5, "Predictions per masked position (pretrainer).", lower_bound=1)
    flags.DEFINE_bool("verify", True, "Run every SavedModel as its clients do (session loader, "
                      "tf.saved_model.load, saved_model_cli) and compare with Keras.")
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the model in the serving SavedModels "
                      "(TF Serving then needs --xla_cpu_compilation_enabled on CPU).")


def main(argv):
    del argv
    quiet_tensorflow()
    try:
        info = export_model(FLAGS.model_dir, FLAGS.export_dir, version=FLAGS.version or None,
                            name=FLAGS.name, seq_length=FLAGS.max_seq_length,
                            max_predictions=FLAGS.max_predictions_per_seq, top_k=FLAGS.top_k,
                            verify=FLAGS.verify, jit_compile=FLAGS.jit_compile)
    except ExportError as e:
        sys.exit(f"export: {e}")
    print(json.dumps({"serving": info["saved_models"]["serving"], "version": info["version"],
                      "seq_length": info["seq_length"], "signatures": sorted(info["signatures"])}))


def entry_point():
    define_flags()
    flags.mark_flags_as_required(["model_dir", "export_dir"])
    app.run(main)


if __name__ == "__main__":
    entry_point()
