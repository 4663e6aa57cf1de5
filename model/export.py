r"""Model directory -> SavedModels for TF Serving and for other TensorFlow code.

    python -m model.export --model_dir runs/demo/bert_tiny --export_dir runs/demo/export

writes, for any model directory (pretrained, imported, fine-tuned):

    EXPORT_DIR/<name>/<version>/            TF Serving model; signatures:
        serving_default  text [B] string (+ text_b [B] string for pair models;
                         "" = no second segment) -> the kind's outputs, tokenized in-graph
        token_ids        input_ids, input_mask, segment_ids [B, L] int32 (+ masked_lm_positions
                         [B, P] for a pretrainer) -> the same outputs, no tokenizer
    EXPORT_DIR/<name>_token_ids/<version>/  token_ids only: core TensorFlow ops, for servers
                                            without tensorflow-text
    EXPORT_DIR/<name>_encoder/              TF-Hub style: {input_word_ids, input_mask,
                                            input_type_ids} -> {sequence_output, pooled_output}
    EXPORT_DIR/<name>_preprocessor/         TF-Hub style: text -> those three inputs;
                                            tokenize(text), bert_pack_inputs(a, b), pair(a, b)
    EXPORT_DIR/<name>/export.json           what was written, the signatures, the tf-text ops
                                            the raw-text model needs, the verification

Then it checks its own output: a fresh process importing only tensorflow and
tensorflow_text loads every SavedModel and compares it with the Keras model
on the same inputs (max abs diff <= 1e-5), and `saved_model_cli show --all`
must list the signatures.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, Optional

import numpy as np
import tensorflow as tf
from absl import app, flags

from model.model_dir import (ModelDir, ModelDirError, load_model, open_model_dir,
                             quiet_tensorflow)
from model.preprocessing import BertTextPreprocessor, trim_to_longest
from tfrecords.vocab import read_vocab

TOLERANCE = 1e-5
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


class ServingModule(tf.Module):
    """The TF Serving model: raw-text and token-id signatures around the Keras model."""

    def __init__(self, md: ModelDir, model, seq_length: int, max_predictions: int, top_k: int,
                 with_text: bool = True):
        super().__init__(name="bert_serving")
        self.model = model
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
        return self._run(self.model, x, positions)

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
        x = trim_to_longest(self.preprocessor.pack(a, b))
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
        x = trim_to_longest(self.preprocessor.pack(ids))
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


class EncoderModule(tf.Module):
    """TF-Hub style encoder: {input_word_ids, input_mask, input_type_ids} -> outputs."""

    def __init__(self, encoder):
        super().__init__(name="bert_encoder")
        self.encoder = encoder

    @tf.function(input_signature=[{k: tf.TensorSpec([None, None], tf.int32, name=k)
                                   for k in ("input_word_ids", "input_mask", "input_type_ids")}])
    def __call__(self, inputs):
        out = self.encoder({"token_ids": inputs["input_word_ids"],
                            "segment_ids": inputs["input_type_ids"],
                            "padding_mask": inputs["input_mask"]}, training=False)
        return {"sequence_output": tf.cast(out["sequence_output"], tf.float32),
                "pooled_output": tf.cast(out["pooled_output"], tf.float32),
                "default": tf.cast(out["pooled_output"], tf.float32)}


class PreprocessorModule(tf.Module):
    """TF-Hub style preprocessor: text -> {input_word_ids, input_mask, input_type_ids}."""

    def __init__(self, preprocessor: BertTextPreprocessor):
        super().__init__(name="bert_preprocessor")
        self.preprocessor = preprocessor

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def __call__(self, text):
        return self._hub_names(self.preprocessor.pack(self.preprocessor.tokenize(text)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, text):
        return self.preprocessor.tokenize(text)

    @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.int32),
                                  tf.RaggedTensorSpec([None, None], tf.int32)])
    def bert_pack_inputs(self, a, b):
        return self._hub_names(self.preprocessor.pack(a, b))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([None], tf.string, name="text_b")])
    def pair(self, text, text_b):
        p = self.preprocessor
        return self._hub_names(p.pack(p.tokenize(text), p.tokenize(text_b)))

    @staticmethod
    def _hub_names(x):
        return {"input_word_ids": x["input_ids"], "input_mask": x["input_mask"],
                "input_type_ids": x["segment_ids"]}


# Run in a fresh process: only tensorflow and tensorflow_text are imported.
_CHECK_SCRIPT = r'''
import json, sys
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

spec = json.load(open(sys.argv[1]))

def ops_not_in_core(path):
    sm = saved_model_pb2.SavedModel()
    with open(path + "/saved_model.pb", "rb") as f:
        sm.ParseFromString(f.read())
    names = set()
    for mg in sm.meta_graphs:
        names |= {n.op for n in mg.graph_def.node}
        for fn in mg.graph_def.library.function:
            names |= {n.op for n in fn.node_def}
    return sorted(n for n in names if op_def_registry.get(n) is None)

report = {"ops": {path: ops_not_in_core(path) for path in spec["paths"]}}
import tensorflow_text  # noqa: F401  registers its ops
out = {}
for key, path, fn, inputs in spec["calls"]:
    loaded = tf.saved_model.load(path)
    inputs = {k: (tf.constant(v, tf.string) if isinstance(v[0], str) else tf.constant(v, tf.int32))
              for k, v in inputs.items()}
    if fn in loaded.signatures:
        result = loaded.signatures[fn](**inputs)
    elif fn == "__call__":
        result = loaded(inputs)
    else:
        result = getattr(loaded, fn)(*inputs.values())
    for name, value in result.items():
        value = value.numpy()
        out[key + "/" + name] = value.astype("S") if value.dtype == object else value
np.savez(spec["output"], **out)
report["modules"] = sorted(m for m in ("keras_hub", "model", "pipeline", "tfrecords")
                           if m in sys.modules)
print(json.dumps(report))
'''


def _check_in_fresh_process(paths, calls) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"paths": paths, "calls": calls, "output": os.path.join(tmp, "out.npz")}
        with open(os.path.join(tmp, "spec.json"), "w") as f:
            json.dump(spec, f)
        proc = subprocess.run([sys.executable, "-c", _CHECK_SCRIPT, os.path.join(tmp, "spec.json")],
                              capture_output=True, text=True)
        if proc.returncode:
            raise ExportError("the export does not load in a fresh process:\n"
                              + proc.stderr.strip().splitlines()[-1])
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        with np.load(spec["output"]) as data:
            report["outputs"] = {k: data[k] for k in data.files}
    return report


def _saved_model_cli_signatures(path: str) -> str:
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        raise ExportError(f"saved_model_cli not found beside {sys.executable}")
    proc = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True)
    if proc.returncode:
        raise ExportError(f"saved_model_cli show --all {path} failed: "
                          + proc.stderr.strip().splitlines()[-1])
    return proc.stdout


def _next_version(base: str) -> int:
    versions = [int(d) for d in os.listdir(base) if d.isdigit()] if os.path.isdir(base) else []
    return max(versions, default=0) + 1


def export_model(model_dir: str, export_dir: str, *, version: Optional[int] = None,
                 name: str = "", seq_length: int = 128, max_predictions: int = 20,
                 top_k: int = 5, verify: bool = True) -> dict:
    """Writes the SavedModels of a model directory; returns export.json's content.

    Example:
        >>> export_model("runs/demo/bert_tiny", "runs/demo/export")  # doctest: +SKIP
    """
    try:
        md = open_model_dir(model_dir)
        model, encoder = load_model(md)
    except ModelDirError as e:
        raise ExportError(str(e)) from None
    if seq_length > md.model_config.max_sequence_length:
        raise ExportError(f"--max_seq_length {seq_length} exceeds the model's "
                          f"max_sequence_length {md.model_config.max_sequence_length}")
    name = name or os.path.basename(os.path.normpath(model_dir))
    version = version or _next_version(os.path.join(export_dir, name))
    serving_path = os.path.join(export_dir, name, str(version))
    ids_path = os.path.join(export_dir, f"{name}_token_ids", str(version))
    encoder_path = os.path.join(export_dir, f"{name}_encoder")
    pre_path = os.path.join(export_dir, f"{name}_preprocessor")
    if os.path.exists(serving_path):
        raise ExportError(f"{serving_path} exists; pass another --version")

    serving = ServingModule(md, model, seq_length, max_predictions, top_k)
    ids_only = ServingModule(md, model, seq_length, max_predictions, top_k, with_text=False)
    preprocessor = PreprocessorModule(serving.preprocessor)
    hub_encoder = EncoderModule(encoder)
    for path, module, sigs in (
            (serving_path, serving, serving.signatures()),
            (ids_path, ids_only, ids_only.signatures()),
            (encoder_path, hub_encoder, {"serving_default": hub_encoder.__call__}),
            (pre_path, preprocessor, {"serving_default": preprocessor.__call__})):
        if os.path.exists(path):
            shutil.rmtree(path)
        tf.saved_model.save(module, path, signatures=sigs)
        print(f"Wrote {path}", file=sys.stderr, flush=True)

    info = {"kind": md.kind, "model_dir": os.path.abspath(model_dir), "name": name,
            "version": version, "seq_length": seq_length, "model": md.config["model"],
            "do_lower_case": md.do_lower_case,
            "tensorflow": tf.__version__, "tensorflow_text": _tf_text_version(),
            "saved_models": {"serving": serving_path, "token_ids_only": ids_path,
                             "encoder": encoder_path, "preprocessor": pre_path},
            "signatures": _describe(serving.signatures())}
    if verify:
        info["verification"] = verify_export(serving, encoder, info)
    # Beside the versions: TF Serving only looks at numeric subdirectories.
    with open(os.path.join(export_dir, name, "export.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)
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


def verify_export(serving: ServingModule, encoder, info: dict) -> dict:
    """Reloads every SavedModel in a fresh process and compares it with the Keras model."""
    paths = info["saved_models"]
    text = [a for a, _ in CHECK_TEXTS]
    text_b = [b for _, b in CHECK_TEXTS]
    text_inputs = {"text": text, "text_b": text_b} if serving.pairs else {"text": text}
    pre = serving.preprocessor
    split = serving.kind == "pretrainer"
    a = pre.tokenize(tf.constant(text), split_on_mask=split)
    b = pre.tokenize(tf.constant(text_b), split_on_mask=split) if serving.pairs else None
    x = {k: v.numpy() for k, v in pre.pack(a, b).items()}
    ids_inputs = dict(x)
    positions = None
    if serving.kind == "pretrainer":
        positions = serving.mask_positions(tf.constant(x["input_ids"]))[0].numpy()
        ids_inputs["masked_lm_positions"] = positions
    calls = [
        ("text", paths["serving"], "serving_default", text_inputs),
        ("ids", paths["serving"], "token_ids", {k: v.tolist() for k, v in ids_inputs.items()}),
        ("ids_only", paths["token_ids_only"], "token_ids",
         {k: v.tolist() for k, v in ids_inputs.items()}),
        ("pre", paths["preprocessor"], "serving_default", {"text": text}),
        ("enc", paths["encoder"], "serving_default",
         {"input_word_ids": x["input_ids"].tolist(), "input_mask": x["input_mask"].tolist(),
          "input_type_ids": x["segment_ids"].tolist()}),
    ]
    report = _check_in_fresh_process(list(paths.values()), calls)
    got = report["outputs"]
    expected = {"ids/" + k: v.numpy() for k, v in serving.outputs(
        {k: tf.constant(v) for k, v in x.items()},
        None if positions is None else tf.constant(positions)).items()}
    expected.update({"ids_only/" + k[4:]: v for k, v in expected.items()})
    enc = encoder({"token_ids": x["input_ids"], "segment_ids": x["segment_ids"],
                   "padding_mask": x["input_mask"]}, training=False)
    expected["enc/sequence_output"] = enc["sequence_output"].numpy()
    expected["enc/pooled_output"] = enc["pooled_output"].numpy()
    if serving.kind == "ner":
        # NER's text path tokenizes word by word (a word of dropped characters
        # becomes [UNK]); its per-token outputs are checked on its own ids.
        x_text = {k: v.numpy() for k, v in pre.pack(pre.tokenize_words(tf.constant(text))[0])
                  .items()}
        expected.update({"text/" + k: v.numpy() for k, v in serving.outputs(
            {k: tf.constant(v) for k, v in x_text.items()}).items()})
    else:
        x_text = x
        for k, v in list(expected.items()):
            if k.startswith("ids/") and serving.kind != "pretrainer":
                expected["text/" + k[4:]] = v
    if "ids/nsp_probabilities" in expected:
        expected["text/nsp_probabilities"] = expected["ids/nsp_probabilities"]
    if serving.kind == "pretrainer":  # the raw-text top-k comes from the same logits
        probs = tf.nn.softmax(expected["ids/mlm_logits"])
        expected["text/top_k_probabilities"] = tf.math.top_k(probs, k=serving.top_k)[0].numpy()
        expected["text/masked_lm_positions"] = positions
    diffs = {}
    # Per-token outputs are compared at real tokens only: at [PAD] positions they
    # mean nothing, and eager vs graph execution alone moves them by ~5e-5 (MiniLM).
    for k, v in expected.items():
        if k not in got:
            raise ExportError(f"the reloaded SavedModel has no output {k}")
        mask = (x_text if k.startswith("text/") else x)["input_mask"] > 0
        per_token = v.ndim >= 2 and v.shape[:2] == mask.shape
        if per_token and got[k].shape[1] < v.shape[1]:  # the text path trims padding
            width = got[k].shape[1]
            if mask[:, width:].any():
                raise ExportError(f"{k}: the SavedModel cut real tokens")
            v, mask = v[:, :width], mask[:, :width]
        if v.dtype.kind in "iubOS":  # ids, labels: equal or not (at real tokens)
            a = got[k].astype("S") if v.dtype.kind in "OS" else got[k]
            b = v.astype("S") if v.dtype.kind in "OS" else v
            same = np.array_equal(a[mask], b[mask]) if per_token else np.array_equal(a, b)
            diffs[k] = 0.0 if same else float("inf")
            continue
        delta = np.abs(got[k].astype(np.float64) - v)
        if per_token:
            delta = delta * mask.reshape(mask.shape + (1,) * (v.ndim - 2))
        diffs[k] = float(np.max(delta)) if v.size else 0.0
    worst = max(diffs, key=diffs.get)
    if diffs[worst] > TOLERANCE:
        raise ExportError(f"reloaded SavedModel differs from the Keras model: {worst} by "
                          f"{diffs[worst]:.2e} (> {TOLERANCE})")
    # Tokenization inside the SavedModels = the in-process preprocessor.
    single = pre.pack(pre.tokenize(tf.constant(text)))["input_ids"].numpy()
    width = got["text/input_ids"].shape[1]
    same_ids = bool(np.array_equal(got["pre/input_word_ids"], single) and
                    np.array_equal(got["text/input_ids"], x_text["input_ids"][:, :width]) and
                    not x_text["input_mask"][:, width:].any())
    if not same_ids:
        raise ExportError("the SavedModel's tokenizer gives other ids than the in-process one")
    cli = _saved_model_cli_signatures(paths["serving"])
    missing = [s for s in ("serving_default", "token_ids")
               if f"signature_def['{s}']" not in cli]
    if missing:
        raise ExportError(f"saved_model_cli show --all does not list {missing}")
    text_ops = sorted(set(report["ops"][paths["serving"]]))
    result = {"max_abs_diff": diffs[worst], "worst_output": worst, "tolerance": TOLERANCE,
              "ids_equal": same_ids, "tf_text_ops_needed": text_ops,
              "token_ids_only_ops_outside_core": report["ops"][paths["token_ids_only"]],
              "modules_imported_by_checker": report["modules"],
              "saved_model_cli_signatures": ["serving_default", "token_ids"]}
    print(f"Verified in a fresh process (tensorflow + tensorflow_text only): max abs diff "
          f"{diffs[worst]:.1e} ({worst}); raw-text model needs tf-text ops {text_ops}; "
          f"saved_model_cli lists serving_default and token_ids", file=sys.stderr, flush=True)
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
    flags.DEFINE_integer("max_seq_length", 128, "Packed length of the raw-text signature.",
                         lower_bound=8)
    flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions predicted (pretrainer).",
                         lower_bound=1)
    flags.DEFINE_integer("top_k", 5, "Predictions per masked position (pretrainer).", lower_bound=1)
    flags.DEFINE_bool("verify", True, "Reload in a fresh process and compare with Keras.")


def main(argv):
    del argv
    quiet_tensorflow()
    try:
        info = export_model(FLAGS.model_dir, FLAGS.export_dir, version=FLAGS.version or None,
                            name=FLAGS.name, seq_length=FLAGS.max_seq_length,
                            max_predictions=FLAGS.max_predictions_per_seq, top_k=FLAGS.top_k,
                            verify=FLAGS.verify)
    except ExportError as e:
        sys.exit(f"export: {e}")
    print(json.dumps({"serving": info["saved_models"]["serving"],
                      "signatures": sorted(info["signatures"])}))


def entry_point():
    define_flags()
    flags.mark_flags_as_required(["model_dir", "export_dir"])
    app.run(main)


if __name__ == "__main__":
    entry_point()
