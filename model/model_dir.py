"""The model-directory contract shared by pretraining, import, fine-tuning and export.

    MODEL_DIR/config.json    {"kind", "model": ModelConfig, "tokenizer": {"do_lower_case"},
                              ...what made it: "training" | "source" | "task"}
    MODEL_DIR/vocab.txt
    MODEL_DIR/checkpoints/   tf.train.Checkpoint(model=..., encoder=<the BertEncoder>[, optimizer])

`kind` is "pretrainer" (encoder + MLM/NSP heads), "encoder" (an imported
checkpoint without heads) or a fine-tuning task's kind (see model.tasks).
Every checkpoint names the encoder as `encoder`, so any model directory can
seed another model's encoder whatever heads either has.
"""

import dataclasses
import json
import os
from typing import Optional, Sequence

import tensorflow as tf

from model.encoder import BertEncoder
from model.presets import ConfigError, ModelConfig


def quiet_tensorflow():
    """TensorFlow's Python INFO lines (asset writing, sharding callbacks) off the console."""
    from absl import logging
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")


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
        return os.path.join(self.path, "checkpoints")

    def latest_checkpoint(self) -> str:
        """The newest checkpoint's prefix; a clear error when there is none."""
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if not latest:
            raise ModelDirError(f"{self.checkpoint_dir} holds no checkpoint")
        return latest

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
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise ModelDirError(f"{path} is not a model directory: no config.json "
                            "(made by model.pretrain, model.import_checkpoint or model.finetune)")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        model_config = ModelConfig.from_dict(config["model"])
    except (ValueError, KeyError, TypeError, ConfigError) as e:
        raise ModelDirError(f"{config_path}: not a model config ({e})") from None
    vocab_file = os.path.join(path, "vocab.txt")
    if not os.path.isfile(vocab_file):
        raise ModelDirError(f"{path} has no vocab.txt")
    with open(vocab_file, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    if vocab_size != model_config.vocabulary_size:
        raise ModelDirError(f"{vocab_file} has {vocab_size} tokens but the model's "
                            f"vocabulary_size is {model_config.vocabulary_size}")
    do_lower_case = bool(config.get("tokenizer", {}).get("do_lower_case", True))
    return ModelDir(path=path, config=config, model_config=model_config,
                    kind=config.get("kind", "pretrainer"), vocab_file=vocab_file,
                    do_lower_case=do_lower_case)


def write_model_dir(path: str, *, kind: str, model_config: ModelConfig, vocab: Sequence[str],
                    do_lower_case: bool, extra: Optional[dict] = None) -> None:
    """Writes config.json and vocab.txt (the checkpoint is the caller's)."""
    os.makedirs(path, exist_ok=True)
    data = {"kind": kind, "model": dataclasses.asdict(model_config),
            "tokenizer": {"do_lower_case": do_lower_case}, "vocab_size": len(vocab)}
    data.update(extra or {})
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")


def build_encoder(model_config: ModelConfig, name: str = "backbone") -> BertEncoder:
    """A freshly initialized encoder of this config."""
    return BertEncoder(**model_config.backbone_kwargs(), name=name)


def _restore(model_dir: ModelDir, what: str, **objects) -> str:
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
    return _restore(model_dir, "encoder", encoder=encoder)


def load_model(model_dir: ModelDir):
    """The model of a directory's kind, weights restored.

    Returns (model, encoder): for a pretrainer, the pretrainer (its inputs are
    the dataset's names); for an encoder, the encoder itself; for a
    fine-tuned task, the task model (see model.tasks).
    """
    from model.pretrainer import build_pretrainer  # noqa: keep import cycles out

    if model_dir.kind == "pretrainer":
        model = build_pretrainer(model_dir.model_config, next_sentence=model_dir.next_sentence)
        encoder = model.get_layer("backbone")
    elif model_dir.kind == "encoder":
        model = encoder = build_encoder(model_dir.model_config)
    else:
        from model import tasks
        model, encoder = tasks.build_task_model(model_dir)
    _restore(model_dir, model_dir.kind, model=model)
    return model, encoder
