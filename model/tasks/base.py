"""What every task is: the base classes of model/tasks/.

A task class holds everything about one family of tasks, so that
fine-tuning, export, predict and model-directory loading look it up by name
(model/tasks/__init__.py) and never branch on it:

- reading its files and counting what it skips (`read`), its label set,
  its features (`features`);
- its head on the encoder (`head`), with `dtype=` the encoder's policy on
  every layer, and its loss (`loss_terms`);
- its metrics and primary metric (`score`), post-processing included;
- its serving outputs on token ids and on raw text, and what the export's
  verification expects of them.

`ServingTask` is the serving half, shared with the "pretrainer" and
"encoder" kinds (which are not fine-tuned); `EngineTask` is what the training
engine trains (model/training/engine.py), the one protocol of pretraining and
fine-tuning; `FinetuneTask` is both, plus the rest.
"""

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from model.networks.encoder import BERT_INPUTS, bert_initializer, encoder_inputs
from model.networks.model_dir import ModelDir, build_encoder
from model.networks.preprocessing import BertTextPreprocessor, trim_to_longest
from tfrecords.generation import DEFAULT_MAX_SEQ_LENGTH

IGNORE = -1  # label of positions without a loss (NER continuation subwords, padding)

_BY_KIND: Dict[str, type] = {}  # config.json "kind" -> class
_BY_NAME: Dict[str, type] = {}  # --task value -> class


def register(cls):
    """Class decorator: makes a task findable by its kind and its --task names."""
    _BY_KIND[cls.kind] = cls
    for name in getattr(cls, "task_names", ()):
        _BY_NAME[name] = cls
    return cls


class TaskError(Exception):
    """A task that cannot use its data or settings; the message names the file or flag."""


@dataclasses.dataclass
class TaskData:
    """The examples and model inputs of one file, plus what scoring needs."""

    path: str
    examples: list
    arrays: Dict[str, np.ndarray]  # model inputs and targets, one row per feature
    skipped: int = 0
    labelled: bool = True
    extra: object = None  # task-specific (SQuAD's windows)

    def __len__(self):
        return len(self.arrays["input_ids"])


class ServingTask:
    """The serving half of a task: outputs on token ids and raw text, and their check.

    Args:
        settings: config.json's "task" section (empty for pretrainer/encoder).
    """

    kind = ""  # config.json "kind": the registry key
    pairs = True  # the raw-text signature takes text_b
    split_on_mask = False  # a literal "[MASK]" in request text becomes the mask id

    def __init__(self, settings: Optional[dict] = None):
        self.settings = dict(settings or {})

    # -- model ----------------------------------------------------------------

    def load_model(self, md: ModelDir):
        """(model, encoder) of a model directory of this kind, weights not yet restored."""
        raise NotImplementedError

    # -- serving --------------------------------------------------------------

    def token_id_specs(self) -> Dict[str, tf.TensorSpec]:
        """The token_ids signature's inputs."""
        return {k: tf.TensorSpec([None, None], tf.int32, name=k) for k in BERT_INPUTS}

    def text_specs(self) -> Dict[str, tf.TensorSpec]:
        """The raw-text signature's inputs."""
        specs = {"text": tf.TensorSpec([None], tf.string, name="text")}
        if self.pairs:
            specs["text_b"] = tf.TensorSpec([None], tf.string, name="text_b")
        return specs

    def serving_outputs(self, model, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """The model's outputs on token_id_specs() inputs, float32, as served."""
        raise NotImplementedError

    def pack(self, serving, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """Raw-text inputs -> packed token ids (untrimmed)."""
        pre = serving.preprocessor
        a = pre.tokenize(inputs["text"], split_on_mask=self.split_on_mask)
        b = pre.tokenize(inputs["text_b"], split_on_mask=self.split_on_mask) \
            if "text_b" in inputs else None
        return pre.pack(a, b)

    def text_outputs(self, serving, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """The raw-text signature: tokenize, pack, trim padding, run."""
        x = trim_to_longest(self.pack(serving, inputs), multiple=serving.multiple)
        return dict(serving.outputs(x), input_ids=x["input_ids"])

    # -- what the export's verification expects ---------------------------------

    def check_inputs(self, texts: Sequence[Tuple[str, str]]) -> Dict[str, list]:
        """The raw-text signature's inputs for the check texts."""
        out = {"text": [a for a, _ in texts]}
        if self.pairs:
            out["text_b"] = [b for _, b in texts]
        return out

    def check_ids(self, serving, text_inputs: Dict[str, list]) -> Dict[str, np.ndarray]:
        """The token_ids signature's inputs for the same examples."""
        return {k: v.numpy() for k, v in self.pack(
            serving, {k: tf.constant(v) for k, v in text_inputs.items()}).items()}

    def expected_text(self, serving, text_inputs, ids, id_outputs) -> Tuple[dict, np.ndarray]:
        """(expected raw-text outputs, mask of real tokens for per-token ones)."""
        return dict(id_outputs), ids["input_mask"] > 0


def setting(default, help: str):
    """A task setting that is also a `model.finetune` flag of the same name."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class TaskSettings:
    """The settings of a fine-tuning family (config.json "task"), typed, each default
    written once. A family with more subclasses this and names it `settings_type`; the
    fields made with `setting()` are `model.finetune` flags (model/tasks/__init__.py's
    `setting_flags`). max_seq_length is the run's (resolved from the initial model)."""

    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH

    @classmethod
    def from_dict(cls, values: Mapping) -> "TaskSettings":
        """The known fields of `values` (flags or a config.json section); None or absent
        takes the default, other keys are left to the task."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known and v is not None})


@dataclasses.dataclass(frozen=True)
class TableSettings(TaskSettings):
    """Families that read a table (CSV/TSV/JSONL) with named columns."""

    text_column: str = setting("text", "classification, regression, multiple_choice: the "
                                       "text (or question) column.")
    text_b_column: str = setting("", "classification, regression: the second text column, "
                                     "if any.")
    label_column: str = setting("label", "classification, regression, multiple_choice: the "
                                         "label column.")


class EngineTask:
    """What model/training/engine.py trains: the one protocol of pretraining
    (tasks/pretraining.py) and every fine-tuning family (FinetuneTask).

    model_config is the encoder's ModelConfig, set before the engine builds the model.
    """

    model_config = None

    def build_model(self) -> keras.Model:
        """The model to train (called inside the strategy's scope)."""
        raise NotImplementedError

    def trainable_variables(self, model) -> list:
        """What the optimizer updates."""
        return model.trainable_variables

    def checkpoint_objects(self, model) -> dict:
        """Objects saved beside the model in the engine's checkpoints (e.g. the encoder)."""
        return {}

    def replica_terms(self, model, batch, training) -> Tuple[dict, dict]:
        """(losses, stats) of this replica's batch: losses {name: (sum over its examples,
        their count)}, stats {name: a sum to log}."""
        raise NotImplementedError

    def log_metrics(self, sums: Dict[str, float], micro_steps: int) -> Dict[str, float]:
        """The logged figures from the stats summed over a logging window."""
        return {}


class FinetuneTask(ServingTask, EngineTask):
    """A fine-tuning task family. Subclasses set the class attributes and the methods
    that raise NotImplementedError.

    Args:
        name: the --task value (e.g. "mnli"), or the kind.
        settings: config.json's "task" section, or the fine-tuning flags that concern it.
    """

    task_names: Tuple[str, ...] = ()  # --task values this class serves
    settings_type = TaskSettings
    # What the family fine-tunes with when the flags leave it unset (README's table).
    defaults = {"learning_rate": 5e-5, "num_train_epochs": 3.0, "train_batch_size": 32}
    primary_metric = "accuracy"  # the dev metric that picks the best epoch
    uses_pooler = True  # token-level heads leave the pooler out of the update
    target_keys: Tuple[str, ...] = ("labels",)
    per_token_keys: Tuple[str, ...] = ()  # [B, L] targets, trimmed with the inputs
    per_token_outputs: Tuple[str, ...] = ()  # [B, L, ...] outputs (padded back after trimming)

    def __init__(self, name: str, settings: Optional[dict] = None):
        super().__init__(settings)
        self.name = name
        self.s = self.settings_type.from_dict(self.settings)  # typed, defaults filled
        self.labels: Optional[List[str]] = self.settings.get("labels")
        self.pairs = bool(self.settings.get("pairs", type(self).pairs))

    @property
    def seq_length(self) -> int:
        return self.s.max_seq_length

    def config(self) -> dict:
        """config.json's "task" section: what export and predict need to serve it."""
        return dict(dataclasses.asdict(self.s), name=self.name, labels=self.labels,
                    pairs=self.pairs, primary_metric=self.primary_metric)

    # -- data -----------------------------------------------------------------

    def read(self, path: str):
        """(examples, ReadStats) of a file in this task's format."""
        raise NotImplementedError

    def fit(self, examples: Sequence, path: str) -> None:
        """Learns what the training set decides (labels, pairs); errors name `path`."""

    def features(self, pre: BertTextPreprocessor, examples, training: bool) -> TaskData:
        raise NotImplementedError

    # -- model ----------------------------------------------------------------

    def input_shape(self) -> tuple:
        return (None,)

    def build(self, model_config):
        """(task model, encoder) with a fresh encoder of model_config."""
        encoder = build_encoder(model_config)
        inputs = {k: keras.Input(self.input_shape(), dtype="int32", name=k) for k in BERT_INPUTS}
        outputs = self.head(encoder, inputs, model_config)
        return keras.Model(inputs, outputs, name=f"bert_{self.kind}"), encoder

    def encode(self, encoder, inputs) -> dict:
        return encoder(encoder_inputs(inputs))

    def head(self, encoder, inputs, model_config) -> Dict[str, keras.KerasTensor]:
        raise NotImplementedError

    def dense(self, units: int, name: str, encoder) -> keras.layers.Dense:
        """A head layer in BERT's initialization and the encoder's dtype policy."""
        return keras.layers.Dense(units, kernel_initializer=bert_initializer(),
                                  dtype=encoder.dtype_policy, name=name)

    def dropout(self, model_config, encoder) -> keras.layers.Dropout:
        return keras.layers.Dropout(model_config.dropout, dtype=encoder.dtype_policy,
                                    name="head_dropout")

    def load_model(self, md: ModelDir):
        return self.build(md.model_config)

    # -- the engine's interface (EngineTask) -----------------------------------

    def build_model(self) -> keras.Model:
        model, self.encoder = self.build(self.model_config)
        return model

    def trainable_variables(self, model) -> list:
        # Token tasks never use the pooler: leave it out of the update (and out
        # of Keras' "Gradients do not exist" warning).
        return [v for v in model.trainable_variables
                if self.uses_pooler or "pooled_dense" not in v.path]

    def checkpoint_objects(self, model) -> dict:
        return {"encoder": self.encoder}

    def replica_terms(self, model, batch, training):
        outputs = model({k: batch[k] for k in BERT_INPUTS}, training=training)
        return self.loss_terms(outputs, batch), {}

    def loss_terms(self, outputs, batch) -> Dict[str, tuple]:
        """{name: (sum of weighted per-example losses, sum of weights)}; batch["weight"] is
        0 for padding examples."""
        raise NotImplementedError

    # -- scoring --------------------------------------------------------------

    def score(self, outputs: Dict[str, np.ndarray], data: TaskData) -> Tuple[dict, list]:
        """(metrics on a labelled file, one prediction record per example)."""
        raise NotImplementedError

    def validate(self, data: TaskData) -> None:
        """Errors a training file can cause (labels outside the set)."""


def softmax_ce(labels, logits):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.cast(logits, tf.float32))


def label_index(labels: Sequence[str]) -> Dict[str, int]:
    return {label: i for i, label in enumerate(labels)}


def batched_tokenize(pre: BertTextPreprocessor, texts: Sequence[str], batch: int = 2048):
    """WordPiece ids (Python lists) of many texts, with the in-graph tokenizer."""
    out = []
    for i in range(0, len(texts), batch):
        out += pre.tokenize(tf.constant(list(texts[i:i + batch]))).to_list()
    return out
