"""The model-directory contract shared by pretraining, import, fine-tuning and export.

    MODEL_DIR/config.json    {"kind", "model": ModelConfig,
                              "inputs": {"max_seq_length", "vocab_file", "vocab_size",
                                         "do_lower_case"},
                              ...what made it: "training" | "source" | "task"}
    MODEL_DIR/vocab.txt
    MODEL_DIR/checkpoints/   tf.train.Checkpoint(model=..., encoder=<the BertEncoder>[, optimizer])

`kind` is "pretrainer" (encoder + MLM/NSP heads), "encoder" (an imported
checkpoint without heads) or a fine-tuning task's kind: the name under which
its task class is registered (model/tasks/). `inputs` says what the model was
trained on; export, predict and fine-tuning take their defaults from it.
config.json is written here only (write_model_dir).
Every checkpoint names the encoder as `encoder`, so any model directory can
seed another model's encoder whatever heads either has.
"""

import dataclasses
import json
from typing import Optional, Sequence

import tensorflow as tf

from model import storage
from model.networks.encoder import BertEncoder
from model.networks.presets import ConfigError, ModelConfig
from tfrecords.generation import DEFAULT_MAX_SEQ_LENGTH
from tfrecords.shards import DatasetError
from tfrecords.vocab import read_vocab


def resolve_seq_length(requested: int, trained_at: int, model_max: int) -> int:
    """The sequence length of a fine-tuning run or an export: the requested one (a flag;
    0 = unset), else the length the model was trained or fine-tuned at (config.json;
    0 = not recorded, e.g. an import), else DEFAULT_MAX_SEQ_LENGTH within the model's
    position embeddings. (The caller checks a requested length against model_max.)

    Example:
        >>> resolve_seq_length(0, 0, 512), resolve_seq_length(0, 384, 512), \
        ...     resolve_seq_length(64, 384, 512), resolve_seq_length(0, 0, 64)
        (128, 384, 64, 64)
    """
    return requested or trained_at or min(DEFAULT_MAX_SEQ_LENGTH, model_max)


class ModelDirError(Exception):
    """A model directory that cannot be used; the message names the path."""


@dataclasses.dataclass
class ModelDir:
    """An opened model directory.

    Attributes:
        path: the directory.
        config: config.json as a dict.
        model_config: the encoder's ModelConfig.
        kind: "pretrainer", "encoder" or a fine-tuning task kind.
        vocab_file: path of vocab.txt.
        do_lower_case: the tokenizer's casing.
    """

    path: str
    config: dict
    model_config: ModelConfig
    kind: str
    vocab_file: str
    do_lower_case: bool

    @property
    def checkpoint_dir(self) -> str:
        return storage.join(self.path, "checkpoints")

    def latest_checkpoint(self) -> str:
        """The newest checkpoint's prefix; a clear error when there is none."""
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if not latest:
            raise ModelDirError(f"{self.checkpoint_dir} holds no checkpoint")
        return latest

    @property
    def max_seq_length(self) -> int:
        """The length the model was trained or fine-tuned at (0 when the directory does not say).

        The `inputs` block; directories written before it record the length under
        "task", "dataset" or "training".
        """
        for section in ("inputs", "task", "dataset", "training"):
            value = self.config.get(section, {}).get("max_seq_length")
            if value:
                return int(value)
        return 0

    @property
    def next_sentence(self) -> bool:
        """A pretrainer with an NSP head (datasets made without NSP have none)."""
        return bool(self.config.get("dataset", {}).get("next_sentence", True))


def open_model_dir(path: str) -> ModelDir:
    """Reads and checks config.json and vocab.txt of a model directory.

    Example:
        >>> md = open_model_dir("runs/demo/bert_tiny")  # doctest: +SKIP
        >>> md.kind, md.model_config.num_layers  # doctest: +SKIP
        ('pretrainer', 2)
    """
    config_path = storage.join(path, "config.json")
    if not storage.isfile(config_path):
        raise ModelDirError(f"{path} is not a model directory: no config.json "
                            "(made by model.pretrain, model.import_checkpoint or model.finetune)")
    try:
        config = json.loads(storage.read_text(config_path))
        model_config = ModelConfig.from_dict(config["model"])
    except (ValueError, KeyError, TypeError, ConfigError) as e:
        raise ModelDirError(f"{config_path}: not a model config ({e})") from None
    vocab_file = storage.join(path, "vocab.txt")
    if not storage.isfile(vocab_file):
        raise ModelDirError(f"{path} has no vocab.txt")
    try:
        vocab_size = len(read_vocab(vocab_file))
    except DatasetError as e:
        raise ModelDirError(str(e)) from None
    if vocab_size != model_config.vocabulary_size:
        raise ModelDirError(f"{vocab_file} has {vocab_size} tokens but the model's "
                            f"vocabulary_size is {model_config.vocabulary_size}")
    casing = config.get("inputs") or config.get("tokenizer", {})
    do_lower_case = bool(casing.get("do_lower_case", True))
    return ModelDir(path=path, config=config, model_config=model_config,
                    kind=config.get("kind", "pretrainer"), vocab_file=vocab_file,
                    do_lower_case=do_lower_case)


def write_model_dir(path: str, *, kind: str, model_config: ModelConfig, vocab: Sequence[str],
                    do_lower_case: bool, max_seq_length: int = 0,
                    extra: Optional[dict] = None) -> None:
    """Writes config.json and vocab.txt (the checkpoint is the caller's); the one writer.

    Args:
        kind: "pretrainer", "encoder" or a registered task's kind.
        max_seq_length: the length the model was trained at (0: unknown, e.g. an import).
        extra: what made the model ("training", "dataset", "source", "task", ...).
    """
    storage.makedirs(path)
    inputs = {"max_seq_length": int(max_seq_length), "vocab_file": "vocab.txt",
              "vocab_size": len(vocab), "do_lower_case": bool(do_lower_case)}
    data = {"kind": kind, "model": dataclasses.asdict(model_config), "inputs": inputs,
            # Read by model directories of earlier versions of this project.
            "tokenizer": {"do_lower_case": bool(do_lower_case)}, "vocab_size": len(vocab)}
    data.update(extra or {})
    # vocab.txt first: a config.json is the sign of a complete model directory
    storage.write_text(storage.join(path, "vocab.txt"), "\n".join(vocab) + "\n")
    storage.write_text(storage.join(path, "config.json"), json.dumps(data, indent=2,
                                                                     sort_keys=True))


def build_encoder(model_config: ModelConfig, name: str = "backbone") -> BertEncoder:
    """A freshly initialized encoder of this config."""
    return BertEncoder(**model_config.backbone_kwargs(), name=name)


def restore(model_dir: ModelDir, what: str, **objects) -> str:
    """Restores objects (by checkpoint name) from the latest checkpoint; every variable
    they hold must be found there, else a one-line error naming the checkpoint."""
    latest = model_dir.latest_checkpoint()
    status = tf.train.Checkpoint(**objects).restore(latest)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as e:
        raise ModelDirError(f"{latest}: does not hold the {what} described by "
                            f"{model_dir.path}/config.json ({str(e).splitlines()[0][:200]})") \
            from None
    return latest


def restore_encoder(model_dir: ModelDir, encoder: BertEncoder) -> str:
    """Loads the encoder weights of `model_dir`'s latest checkpoint into `encoder`."""
    return restore(model_dir, "encoder", encoder=encoder)
