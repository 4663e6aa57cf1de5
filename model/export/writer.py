"""Model directory -> the four SavedModels of an export (model/export/__main__.py has the
layout).

`export_model` loads the model of any kind through its task class
(model/tasks/), builds the serving module, the token-ids-only module, the TF
Hub encoder and preprocessor, writes them into a staging directory, has
model/export/verify.py run them as their clients do, and moves them into
their version directories.
"""

import dataclasses
import json
import os
import sys
from typing import Dict, Optional

import tensorflow as tf

from model import storage
from model.export.checks import ClientError
from model.export.hub import HubEncoder, HubPreprocessor
from model.export.savedmodel import ExportRoot, keras_free, save
from model.export.verify import ExportError, verify_export
from model.networks.model_dir import ModelDir, ModelDirError, open_model_dir, resolve_seq_length
from model.networks.preprocessing import BertTextPreprocessor
from model.tasks import load_model
from tfrecords.vocab import read_vocab, special_ids


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

    What the signatures take and return is the task's (model/tasks/): this
    class only holds what every task's serving needs (the preprocessor, the
    vocabulary, the lengths) and traces the signatures.

    With jit_compile, the Keras model (not the tokenizer, nor the string
    outputs, which XLA cannot compile) runs as one XLA cluster, and raw-text
    batches are padded to a multiple of XLA_LENGTH_MULTIPLE tokens: XLA
    compiles once per input shape.
    """

    def __init__(self, md: ModelDir, task, model, seq_length: int, max_predictions: int,
                 top_k: int, with_text: bool = True, jit_compile: bool = False):
        super().__init__()
        self._model = keras_free(_XlaModel(model) if jit_compile else model)
        self._task = keras_free(task)
        self.multiple = XLA_LENGTH_MULTIPLE if jit_compile else 1
        self._signatures = None
        self.pairs = task.pairs
        self.seq_length, self.max_predictions, self.top_k = seq_length, max_predictions, top_k
        # One read of the vocabulary: its tokens (for top-k and answer text) and the
        # special ids the token_ids-only model needs without a preprocessor.
        vocab = read_vocab(md.vocab_file)
        ids = special_ids(vocab, md.vocab_file)
        self.vocab = tf.constant(vocab)
        self.mask_id, self.sep_id = ids["[MASK]"], ids["[SEP]"]
        self.preprocessor = BertTextPreprocessor(md.vocab_file, md.do_lower_case, seq_length) \
            if with_text else None

    @property
    def task(self):
        return self._task.obj

    def outputs(self, x: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        return self.task.serving_outputs(self._model.obj, x)

    @property
    def keras_model(self):
        """The plain Keras model (not XLA-compiled), for tasks that call its layers."""
        model = self._model.obj
        return getattr(model, "keras_model", model)

    def keras_outputs(self, x: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """outputs() of the plain Keras model (not XLA-compiled): the verification's reference."""
        return self.task.serving_outputs(self.keras_model, x)

    def signatures(self) -> dict:
        """name -> concrete function (traced once)."""
        if self._signatures is None:
            self._signatures = self._trace()
        return self._signatures

    def _trace(self) -> dict:
        @tf.function(input_signature=[self.task.token_id_specs()])
        def token_ids(inputs):
            return self.outputs(inputs)

        sigs = {"token_ids": token_ids.get_concrete_function()}
        if self.preprocessor is None:
            return sigs

        @tf.function(input_signature=[self.task.text_specs()])
        def serving_default(inputs):
            return self.task.text_outputs(self, inputs)

        sigs["serving_default"] = serving_default.get_concrete_function()
        return sigs


def _next_version(export_dir: str, name: str) -> int:
    versions = []
    for sub in (name, f"{name}_token_ids", f"{name}_encoder", f"{name}_preprocessor"):
        base = os.path.join(export_dir, sub)
        if storage.isdir(base):
            versions += [int(d) for d in storage.listdir(base) if d.isdigit()]
    return max(versions, default=0) + 1


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What `model.export` writes (its flags of the same names)."""

    model_dir: str
    export_dir: str
    version: int = 0  # 0: one more than the newest
    name: str = ""  # "": the model directory's basename
    max_seq_length: int = 0  # 0: the model's own (config.json "inputs"), else 128
    max_predictions_per_seq: int = 20
    top_k: int = 5
    verify: bool = True
    jit_compile: bool = False
    # savedmodel (TF Serving, TF Hub); hf (transformers' Auto classes, model/export/hf.py);
    # keras_hub (a keras-hub preset, model/export/keras_hub.py)
    format: str = "savedmodel"


def export(config: ExportConfig) -> dict:
    """export_model() of a frozen config (what `model.export`'s main calls), or the
    other publishing formats."""
    c = config
    if c.format != "savedmodel":
        return publish(c.model_dir, c.export_dir, c.format)
    return export_model(c.model_dir, c.export_dir, version=c.version or None, name=c.name,
                        seq_length=c.max_seq_length, max_predictions=c.max_predictions_per_seq,
                        top_k=c.top_k, verify=c.verify, jit_compile=c.jit_compile)


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
        model, encoder, task = load_model(md)
    except ModelDirError as e:
        raise ExportError(str(e)) from None
    if 0 < seq_length < 8:
        raise ExportError(f"--max_seq_length {seq_length}: at least 8 (or 0 for the model's own)")
    trained_at = md.max_seq_length
    if not seq_length:
        seq_length = resolve_seq_length(0, trained_at, md.model_config.max_sequence_length)
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
    taken = [p for p in final.values() if storage.exists(p)]
    if taken:
        raise ExportError(f"{taken[0]} exists; pass another --version")
    staging = os.path.join(export_dir, f".staging-{name}-{version}")
    storage.rmtree(staging)
    staged = {k: os.path.join(staging, k) for k in final}

    serving = ServingModule(md, task, model, seq_length, max_predictions, top_k,
                            jit_compile=jit_compile)
    ids_only = ServingModule(md, task, model, seq_length, max_predictions, top_k,
                             with_text=False, jit_compile=jit_compile)
    hub_encoder = HubEncoder(encoder)
    hub_preprocessor = HubPreprocessor(serving.preprocessor, seq_length)
    sigs = serving.signatures()
    save(serving, staged["serving"], sigs)
    save(ids_only, staged["token_ids_only"], ids_only.signatures())
    hub_encoder.write(staged["encoder"])
    hub_preprocessor.write(staged["preprocessor"])
    print(f"Wrote 4 SavedModels in {staging}", file=sys.stderr, flush=True)

    info = {"kind": md.kind, "model_dir": model_dir if storage.is_remote(model_dir) else
            os.path.abspath(model_dir), "name": name,
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
    storage.write_text(os.path.join(staged["serving"], "assets.extra", "export.json"),
                       json.dumps(info, indent=2, sort_keys=True))
    for key, path in final.items():
        storage.move_tree(staged[key], path)
    storage.rmtree(staging)
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


def publish(model_dir: str, export_dir: str, fmt: str) -> dict:
    """A model directory in another library's format: "hf" (transformers) or "keras_hub"
    (a keras-hub preset). Returns what was written."""
    from model.export.hf import HfExportError, export_hf
    from model.export.keras_hub import KerasHubExportError, export_keras_hub

    writers = {"hf": export_hf, "keras_hub": export_keras_hub}
    if fmt not in writers:
        raise ExportError(f"--format must be savedmodel, hf or keras_hub, got {fmt!r}")
    try:
        md = open_model_dir(model_dir)
        model, _, _ = load_model(md)
        return writers[fmt](md, model, export_dir)
    except (ModelDirError, HfExportError, KerasHubExportError) as e:
        raise ExportError(str(e)) from None
