"""A linear probe on the frozen encoder, scored during pretraining.

MLM loss says the model predicts masked tokens better; it does not say the
representation is any use (our demo once raised MLM accuracy and lowered
fine-tuning accuracy). The probe asks that directly, at every evaluation:
mean-pooled sequence_output of a small labelled text set (e.g. Rotten
Tomatoes sentences) -> a ridge-regression classifier fitted in closed form
on the train part -> accuracy on the dev part. No weight of the model is
touched; it costs one forward pass over the probe's texts.

    probe = Probe("data/rotten_tomatoes/train.tsv,data/rotten_tomatoes/dev.tsv",
                  vocab_file, do_lower_case=True)
    probe.score(encoder)  # {"probe_accuracy": 0.71, "probe_train_accuracy": 0.74, ...}

One file instead of two: every fifth example is the dev part.
"""

import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from model.networks.encoder import encoder_inputs
from model.networks.preprocessing import BertTextPreprocessor
from model.tasks.base import batched_tokenize
from model.tasks.readers import Example, TaskDataError, read_table

TEXT_COLUMNS = ("sentence", "text")


class ProbeError(ValueError):
    """A probe file that cannot be used; the message names it."""


def _read(path: str, label_column: str) -> List[Example]:
    last = None
    for column in TEXT_COLUMNS:
        try:
            examples, stats = read_table(path, column, "", label_column)
        except TaskDataError as e:
            last = e
            continue
        labelled = [e for e in examples if e.label is not None]
        if stats.skipped or len(labelled) < len(examples):
            print(f"probe: {path}: {stats.read - len(labelled)} of {stats.read} record(s) "
                  "skipped (no text or no label)", file=sys.stderr, flush=True)
        return labelled
    raise ProbeError(f"--probe_file {path}: {last}")


def ridge_probe(train_x: np.ndarray, train_y: Sequence, dev_x: np.ndarray,
                dev_y: Sequence, l2: float = 1.0) -> Tuple[float, float]:
    """(train accuracy, dev accuracy) of a one-vs-rest ridge classifier.

    Features are standardized with the train part's statistics; targets are +-1
    per class; the weights are (X'X + l2 I)^-1 X'Y in float64.

    Example:
        >>> x = np.array([[0.0], [1.0], [10.0], [11.0]])
        >>> ridge_probe(x, ["a", "a", "b", "b"], np.array([[0.5], [10.5]]), ["a", "b"])
        (1.0, 1.0)
    """
    classes = sorted(set(train_y))
    index = {c: i for i, c in enumerate(classes)}
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6

    def design(x):
        z = (np.asarray(x, np.float64) - mean) / std
        return np.concatenate([z, np.ones((len(z), 1))], axis=1)

    x = design(train_x)
    y = -np.ones((len(train_y), len(classes)))
    y[np.arange(len(train_y)), [index[c] for c in train_y]] = 1.0
    reg = l2 * np.eye(x.shape[1])
    reg[-1, -1] = 0.0  # the bias is not shrunk
    w = np.linalg.solve(x.T @ x + reg, x.T @ y)

    def accuracy(features, labels):
        predicted = np.asarray(classes, dtype=object)[(design(features) @ w).argmax(1)]
        return float(np.mean([p == t for p, t in zip(predicted, labels)]))

    return accuracy(train_x, train_y), accuracy(dev_x, dev_y)


class Probe:
    """The probe's texts, tokenized once; `score(encoder)` at every evaluation.

    Args:
        spec: "TRAIN,DEV" or one file (every fifth example is then the dev part):
            TSV/CSV with a header (text in a `sentence` or `text` column) or JSONL.
        vocab_file, do_lower_case: the model's tokenizer.
        label_column: the label's column.
        max_seq_length: tokens per text.
        max_examples: at most this many examples per part (the first ones).
    """

    def __init__(self, spec: str, vocab_file: str, do_lower_case: bool,
                 label_column: str = "label", max_seq_length: int = 64,
                 max_examples: int = 2000):
        paths = [p for p in spec.split(",") if p]
        if len(paths) not in (1, 2):
            raise ProbeError(f"--probe_file takes TRAIN[,DEV], got {spec!r}")
        if len(paths) == 2:
            train, dev = (_read(p, label_column) for p in paths)
        else:
            everything = _read(paths[0], label_column)
            train = [e for i, e in enumerate(everything) if i % 5]
            dev = everything[::5]
        train, dev = train[:max_examples], dev[:max_examples]
        if len(set(e.label for e in train)) < 2 or not dev:
            raise ProbeError(f"--probe_file {spec}: needs two or more labels in its train "
                             f"part and a dev part (got {len(train)} train example(s) with "
                             f"{len(set(e.label for e in train))} label(s), {len(dev)} dev)")
        self.spec = spec
        self.train_labels = [e.label for e in train]
        self.dev_labels = [e.label for e in dev]
        pre = BertTextPreprocessor(vocab_file, do_lower_case, max_seq_length)
        self.inputs = []
        for part in (train, dev):
            ids = tf.ragged.constant(batched_tokenize(pre, [e.text_a for e in part]),
                                     dtype=tf.int32, ragged_rank=1)
            self.inputs.append({k: v.numpy() for k, v in pre.pack(ids).items()})

    def features(self, encoder, inputs: dict, batch_size: int = 256) -> np.ndarray:
        """Mean of sequence_output over each text's tokens ([CLS] and [SEP] included)."""
        out = []
        for i in range(0, len(inputs["input_ids"]), batch_size):
            batch = {k: v[i:i + batch_size] for k, v in inputs.items()}
            sequence = encoder(encoder_inputs(batch), training=False)["sequence_output"]
            mask = tf.cast(batch["input_mask"], tf.float32)[:, :, None]
            pooled = tf.reduce_sum(tf.cast(sequence, tf.float32) * mask, 1) / \
                tf.reduce_sum(mask, 1)
            out.append(pooled.numpy())
        return np.concatenate(out)

    def score(self, encoder) -> Dict[str, float]:
        train_acc, dev_acc = ridge_probe(
            self.features(encoder, self.inputs[0]), self.train_labels,
            self.features(encoder, self.inputs[1]), self.dev_labels)
        return {"probe_accuracy": dev_acc, "probe_train_accuracy": train_acc}
