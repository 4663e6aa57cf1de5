r"""Published BERT checkpoints -> a model directory that export and fine-tuning take.

    python -m model.import_checkpoint --format hf --checkpoint_dir data/minilm \
        --output_dir runs/minilm

--format hf: Hugging Face layout (config.json, model.safetensors or
pytorch_model.bin, vocab.txt; BertModel names with or without the "bert."
prefix, LayerNorm weight/bias or gamma/beta). --format tf1:
google-research/bert layout (bert_config.json, bert_model.ckpt.*, vocab.txt).

The encoder keeps the checkpoint's activation and layer-norm epsilon:
Hugging Face's "gelu" is the exact erf GELU, google-research's "gelu" the
tanh approximation (model/networks/encoder.py says what ignoring this costs). With
MLM (and NSP) head weights the result is a pretrainer that predicts masked
tokens; without them (all-MiniLM-L6-v2) an encoder.
"""

import json
import os
import re
import sys
from typing import Dict, Optional

import numpy as np
from absl import app, flags

from model import storage
import tfrecords.cli

HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_approximate",
                  "gelu_pytorch_tanh": "gelu_approximate", "relu": "relu"}
TF1_ACTIVATIONS = {"gelu": "gelu_approximate", "relu": "relu"}  # google-research's gelu is tanh


class CheckpointImportError(Exception):
    """A checkpoint that cannot be imported; the message names the file."""


def _read_json(path: str) -> dict:
    try:
        if not storage.isfile(path):
            raise FileNotFoundError(path)
        return json.loads(storage.read_text(path))
    except FileNotFoundError:
        raise CheckpointImportError(f"{path} not found") from None
    except ValueError as e:
        raise CheckpointImportError(f"{path}: not JSON ({e})") from None


def _model_config(cfg: dict, activations: dict, source: str):
    from model.networks.presets import ConfigError, ModelConfig

    if cfg.get("model_type", "bert") != "bert":
        raise CheckpointImportError(f"{source}: model_type {cfg['model_type']!r} is not BERT")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointImportError(
            f"{source}: position_embedding_type {cfg['position_embedding_type']!r} is not "
            "supported (absolute only)")
    act = cfg.get("hidden_act", "gelu")
    if act not in activations:
        raise CheckpointImportError(f"{source}: hidden_act {act!r} is not supported "
                                    f"({', '.join(activations)})")
    try:
        return ModelConfig(
            vocabulary_size=int(cfg["vocab_size"]), num_layers=int(cfg["num_hidden_layers"]),
            hidden_dim=int(cfg["hidden_size"]), num_heads=int(cfg["num_attention_heads"]),
            intermediate_dim=int(cfg["intermediate_size"]),
            dropout=float(cfg.get("hidden_dropout_prob", 0.1)),
            max_sequence_length=int(cfg.get("max_position_embeddings", 512)),
            num_segments=int(cfg.get("type_vocab_size", 2)), hidden_act=activations[act],
            layer_norm_epsilon=float(cfg.get("layer_norm_eps", 1e-12)), preset="imported")
    except KeyError as e:
        raise CheckpointImportError(f"{source} lacks {e}") from None
    except ConfigError as e:
        raise CheckpointImportError(f"{source}: {e}") from None


def _read_hf(checkpoint_dir: str):
    config_path = storage.join(checkpoint_dir, "config.json")
    cfg = _model_config(_read_json(config_path), HF_ACTIVATIONS, config_path)
    st = storage.join(checkpoint_dir, "model.safetensors")
    bin_ = storage.join(checkpoint_dir, "pytorch_model.bin")
    if storage.isfile(st):
        from safetensors.numpy import load

        try:
            raw = load(storage.read_bytes(st))  # a local file or an object
        except Exception as e:  # safetensors raises its own types
            raise CheckpointImportError(f"{st}: cannot read ({e})") from None
        weights_file = st
    elif storage.isfile(bin_):
        try:
            import torch
        except ImportError:
            raise CheckpointImportError(f"{bin_} is a PyTorch pickle, which needs torch "
                                        "installed; or convert it to model.safetensors") from None
        import io
        raw = {k: v.float().numpy() for k, v in torch.load(
            io.BytesIO(storage.read_bytes(bin_)), map_location="cpu", weights_only=True).items()}
        weights_file = bin_
    else:
        raise CheckpointImportError(
            f"{checkpoint_dir} has neither model.safetensors nor pytorch_model.bin")
    weights = {}
    for name, value in raw.items():
        name = name[len("bert."):] if name.startswith("bert.") else name
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", name)
        name = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name)
        weights[name] = value
    return cfg, weights, weights_file, _hf_lower_case(checkpoint_dir)


def _hf_lower_case(checkpoint_dir: str) -> Optional[bool]:
    path = storage.join(checkpoint_dir, "tokenizer_config.json")
    if storage.isfile(path) and "do_lower_case" in _read_json(path):
        return bool(_read_json(path)["do_lower_case"])
    path = storage.join(checkpoint_dir, "tokenizer.json")
    if storage.isfile(path):
        normalizer = _read_json(path).get("normalizer") or {}
        if "lowercase" in normalizer:
            return bool(normalizer["lowercase"])
    return None


def _tf1_name(name: str) -> Optional[str]:
    """google-research/bert variable name -> the Hugging Face name (None: not ours)."""
    if name.startswith("bert/"):
        name = name[len("bert/"):]
    elif not name.startswith("cls/"):
        return None
    name = re.sub(r"layer_(\d+)", r"layer.\1", name).replace("/", ".")
    name = re.sub(r"\.(gamma|kernel)$", ".weight", name)
    name = re.sub(r"\.beta$", ".bias", name)
    name = re.sub(r"_embeddings$", "_embeddings.weight", name)
    name = name.replace("cls.predictions.output_bias", "cls.predictions.bias")
    name = name.replace("cls.seq_relationship.output_weights", "cls.seq_relationship.weight")
    name = name.replace("cls.seq_relationship.output_bias", "cls.seq_relationship.bias")
    return name


def _read_tf1(checkpoint_dir: str):
    import tensorflow as tf

    config_path = storage.join(checkpoint_dir, "bert_config.json")
    cfg = _model_config(_read_json(config_path), TF1_ACTIVATIONS, config_path)
    prefix = tf.train.latest_checkpoint(checkpoint_dir)
    if not prefix:
        candidate = storage.join(checkpoint_dir, "bert_model.ckpt")
        prefix = candidate if storage.exists(candidate + ".index") else None
    if not prefix:
        raise CheckpointImportError(f"{checkpoint_dir} has no bert_model.ckpt.index")
    reader = tf.train.load_checkpoint(prefix)
    weights = {}
    for name in reader.get_variable_to_shape_map():
        if name == "global_step" or name.endswith(("adam_m", "adam_v")):
            continue  # the optimizer's state, not weights
        hf = _tf1_name(name)
        if hf is None:
            # Not the encoder's nor its pretraining heads' (run_classifier's output_weights,
            # a task head): kept under its own name, so that it is listed as ignored.
            weights[name] = reader.get_tensor(name)
            continue
        value = reader.get_tensor(name)
        # TF1 dense kernels are [in, out]; Hugging Face's weights [out, in].
        if name.endswith("/kernel"):
            value = value.T
        weights[hf] = value
    return cfg, weights, prefix, None


def keras_weights(weights: Dict[str, np.ndarray], cfg) -> Dict[str, np.ndarray]:
    """Hugging Face names -> our Keras weight paths (model/networks/encoder.py's layer names).

    Raises CheckpointImportError naming the first tensor the encoder needs and lacks, or
    one whose shape does not fit the config.
    """
    H, n = cfg.hidden_dim, cfg.num_heads
    d = H // n
    used = set()

    def take(name):
        if name not in weights:
            raise CheckpointImportError(f"the checkpoint lacks {name}")
        used.add(name)
        return np.asarray(weights[name], dtype=np.float32)

    out = {
        "token_embedding/embeddings": take("embeddings.word_embeddings.weight"),
        "position_embedding/embeddings": take("embeddings.position_embeddings.weight"),
        "segment_embedding/embeddings": take("embeddings.token_type_embeddings.weight"),
        "embeddings_layer_norm/gamma": take("embeddings.LayerNorm.weight"),
        "embeddings_layer_norm/beta": take("embeddings.LayerNorm.bias"),
        "pooled_dense/kernel": take("pooler.dense.weight").T,
        "pooled_dense/bias": take("pooler.dense.bias"),
    }
    for i in range(cfg.num_layers):
        hf, k = f"encoder.layer.{i}.", f"transformer_layer_{i}/"
        att = k + "self_attention_layer/"
        for part in ("query", "key", "value"):
            kernel = take(hf + f"attention.self.{part}.weight").T
            out[att + f"{part}/kernel"] = kernel.reshape(H, n, d)
            out[att + f"{part}/bias"] = take(hf + f"attention.self.{part}.bias").reshape(n, d)
        out[att + "attention_output/kernel"] = \
            take(hf + "attention.output.dense.weight").T.reshape(n, d, H)
        out[att + "attention_output/bias"] = take(hf + "attention.output.dense.bias")
        for ours, theirs in (("self_attention_layer_norm", "attention.output.LayerNorm"),
                             ("feedforward_layer_norm", "output.LayerNorm")):
            out[k + f"{ours}/gamma"] = take(hf + f"{theirs}.weight")
            out[k + f"{ours}/beta"] = take(hf + f"{theirs}.bias")
        for ours, theirs in (("feedforward_intermediate_dense", "intermediate.dense"),
                             ("feedforward_output_dense", "output.dense")):
            out[k + f"{ours}/kernel"] = take(hf + f"{theirs}.weight").T
            out[k + f"{ours}/bias"] = take(hf + f"{theirs}.bias")
    if "cls.predictions.transform.dense.weight" in weights:
        out.update({
            "mlm_head/intermediate_dense/kernel": take("cls.predictions.transform.dense.weight").T,
            "mlm_head/intermediate_dense/bias": take("cls.predictions.transform.dense.bias"),
            "mlm_head/intermediate_layer_norm/gamma":
                take("cls.predictions.transform.LayerNorm.weight"),
            "mlm_head/intermediate_layer_norm/beta":
                take("cls.predictions.transform.LayerNorm.bias"),
            "mlm_head/output_bias": take("cls.predictions.bias"),
        })
        if "cls.seq_relationship.weight" in weights:
            out["nsp_head/classifier/kernel"] = take("cls.seq_relationship.weight").T
            out["nsp_head/classifier/bias"] = take("cls.seq_relationship.bias")
    ignored = sorted(n for n in weights if n not in used)
    return out, ignored


def import_checkpoint(fmt: str, checkpoint_dir: str, output_dir: str,
                      do_lower_case: Optional[bool] = None, overwrite: bool = False):
    """Imports a published checkpoint; returns the written ModelDir.

    Example:
        >>> import_checkpoint("hf", "data/minilm", "runs/minilm")  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf

    from model.networks.model_dir import build_encoder, open_model_dir, write_model_dir
    from model.networks.pretrainer import build_pretrainer

    if fmt not in ("hf", "tf1"):
        raise CheckpointImportError(f"--format must be hf or tf1, got {fmt!r}")
    if not storage.isdir(checkpoint_dir):
        raise CheckpointImportError(f"--checkpoint_dir {checkpoint_dir} is not a directory")
    if storage.exists(storage.join(output_dir, "config.json")) and not overwrite:
        raise CheckpointImportError(
            f"{output_dir} already holds a model; pass --overwrite or another --output_dir")
    cfg, weights, weights_file, lower = (_read_hf if fmt == "hf" else _read_tf1)(checkpoint_dir)
    vocab_path = storage.join(checkpoint_dir, "vocab.txt")
    if not storage.isfile(vocab_path):
        raise CheckpointImportError(f"{checkpoint_dir} has no vocab.txt")
    from tfrecords.shards import DatasetError
    from tfrecords.vocab import read_vocab

    try:  # the project's reader: UTF-8, no duplicate tokens, trailing blank lines dropped
        vocab = read_vocab(vocab_path)
    except DatasetError as e:
        raise CheckpointImportError(str(e)) from None
    if len(vocab) != cfg.vocabulary_size:
        raise CheckpointImportError(f"{vocab_path} has {len(vocab)} tokens, the config says "
                                    f"vocab_size {cfg.vocabulary_size}")
    if do_lower_case is None:
        do_lower_case = True if lower is None else lower
    values, ignored = keras_weights(weights, cfg)
    has_mlm = "mlm_head/output_bias" in values
    has_nsp = "nsp_head/classifier/kernel" in values
    keras.utils.set_random_seed(0)
    if has_mlm:
        model = build_pretrainer(cfg, next_sentence=has_nsp)
        encoder = model.get_layer("backbone")
    else:
        model = encoder = build_encoder(cfg)
    targets = {w.path.split("/", 1)[1] if w.path.startswith("backbone/") else w.path: w
               for w in model.weights}
    missing = sorted(set(targets) - set(values))
    if missing:
        raise CheckpointImportError(f"{weights_file}: no values for {missing[:5]}")
    for path, value in values.items():
        var = targets[path]
        if tuple(var.shape) != value.shape:
            raise CheckpointImportError(
                f"{weights_file}: {path} has shape {value.shape}, the config "
                f"({os.path.basename(checkpoint_dir)}) gives {tuple(var.shape)}")
        var.assign(value)
    kind = "pretrainer" if has_mlm else "encoder"
    extra = {"source": {"format": fmt, "checkpoint_dir": checkpoint_dir if storage.is_remote(
                            checkpoint_dir) else os.path.abspath(checkpoint_dir),
                        "weights": os.path.basename(weights_file), "ignored": ignored}}
    if has_mlm:
        extra["dataset"] = {"next_sentence": has_nsp}
    write_model_dir(output_dir, kind=kind, model_config=cfg, vocab=vocab,
                    do_lower_case=do_lower_case, extra=extra)
    ckpt = tf.train.Checkpoint(model=model, encoder=encoder)
    manager = tf.train.CheckpointManager(ckpt, storage.join(output_dir, "checkpoints"), 1)
    manager.save(checkpoint_number=0)
    print(f"Imported {weights_file} ({cfg.num_layers} layers, hidden {cfg.hidden_dim}, "
          f"hidden_act {cfg.hidden_act}, layer_norm_epsilon {cfg.layer_norm_epsilon}) into "
          f"{output_dir} as kind {kind!r}" + (f"; ignored {len(ignored)} tensors: {ignored[:4]}"
                                         if ignored else ""), file=sys.stderr)
    return open_model_dir(output_dir)


FLAGS = flags.FLAGS


def define_flags():
    """The command's flags (defined only when it runs as a command, so that tests and
    other modules can import this one beside other commands)."""
    flags.DEFINE_enum("format", None, ["hf", "tf1"], "Checkpoint layout: Hugging Face or "
                      "google-research/bert TF1.")
    flags.DEFINE_string("checkpoint_dir", None, "Directory of the published checkpoint.")
    flags.DEFINE_string("output_dir", None, "Model directory to write.")
    flags.DEFINE_enum("do_lower_case", "auto", ["auto", "true", "false"],
                      "Tokenizer casing; auto: from tokenizer_config.json/tokenizer.json (hf), "
                      "else true.")
    flags.DEFINE_bool("overwrite", False, "Replace an existing model in --output_dir.")


def main(argv):
    from model import cli
    cli.no_arguments(argv, "import_checkpoint")
    cli.quiet_tensorflow()
    lower = {"auto": None, "true": True, "false": False}[FLAGS.do_lower_case]
    try:
        import_checkpoint(FLAGS.format, FLAGS.checkpoint_dir, FLAGS.output_dir,
                          do_lower_case=lower, overwrite=FLAGS.overwrite)
    except CheckpointImportError as e:
        sys.exit(f"import_checkpoint: {e}")


def entry_point():
    define_flags()
    flags.mark_flags_as_required(["format", "checkpoint_dir", "output_dir"])
    app.run(main, flags_parser=tfrecords.cli.flags_parser("import_checkpoint"))


if __name__ == "__main__":
    entry_point()
