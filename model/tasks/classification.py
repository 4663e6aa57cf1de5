"""Sentence and sentence-pair classification and regression (GLUE, or any table).

    classification  pooled [CLS] -> dropout -> dense: logits [B, C]   (GLUE tasks, any table)
    regression      pooled [CLS] -> dropout -> dense: score [B]       (STS-B, any table)

--task: a GLUE task (cola, sst2, mrpc, qqp, mnli, qnli, rte, wnli; stsb is
regression) in its published TSV format, or `classification` / `regression`
for any CSV/TSV/JSONL with --text_column, --text_b_column, --label_column.
"""

from typing import Dict

import keras
import numpy as np
import tensorflow as tf

from model.tasks import metrics as M
from model.tasks.base import (IGNORE, FinetuneTask, TableSettings, TaskData, TaskError,
                              batched_tokenize, label_index, register, softmax_ce)
from model.tasks.readers import GLUE, label_set, read_glue, read_table

# GLUE's headline metric of each task; the others pick the best epoch by accuracy.
GLUE_PRIMARY = {"cola": "mcc", "mrpc": "f1", "qqp": "f1", "stsb": "pearson"}


class _SentenceTask(FinetuneTask):
    """What classification and regression share: reading, packing (text, text_b)."""

    settings_type = TableSettings

    def __init__(self, name, settings=None):
        super().__init__(name, settings)
        self.primary_metric = GLUE_PRIMARY.get(name, type(self).primary_metric)

    def read(self, path):
        if self.name in GLUE:
            return read_glue(self.name, path)
        return read_table(path, self.s.text_column, self.s.text_b_column, self.s.label_column)

    def fit(self, examples, path):
        self.pairs = any(e.text_b for e in examples)

    def features(self, pre, examples, training):
        a = tf.ragged.constant(batched_tokenize(pre, [e.text_a for e in examples]),
                               dtype=tf.int32, ragged_rank=1)
        b = None
        if self.pairs:
            b = tf.ragged.constant(batched_tokenize(pre, [e.text_b for e in examples]),
                                   dtype=tf.int32, ragged_rank=1)
        arrays = {k: v.numpy() for k, v in pre.pack(a, b, self.seq_length).items()}
        arrays["labels"] = self.label_array(examples)
        return TaskData("", examples, arrays, labelled=all(e.label is not None for e in examples))


@register
class ClassificationTask(_SentenceTask):
    kind = "classification"
    task_names = tuple(t for t in GLUE if GLUE[t][3] is not None) + ("classification",)

    def fit(self, examples, path):
        super().fit(examples, path)
        self.labels = GLUE[self.name][3] if self.name in GLUE else \
            label_set(e.label for e in examples)
        if len(self.labels) < 2:
            raise TaskError(f"{path}: fewer than two labels ({self.labels})")

    def label_array(self, examples):
        index = label_index(self.labels)
        return np.array([index.get(e.label, IGNORE) for e in examples], np.int32)

    def validate(self, data):
        bad = int((data.arrays["labels"] < 0).sum())
        if bad:
            raise TaskError(f"{data.path}: {bad} rows have labels outside {self.labels}")

    def head(self, encoder, inputs, cfg):
        pooled = self.dropout(cfg, encoder)(self.encode(encoder, inputs)["pooled_output"])
        return {"logits": self.dense(len(self.labels), "classifier", encoder)(pooled)}

    def loss_terms(self, outputs, batch):
        w = batch["weight"]
        return {"loss": (tf.reduce_sum(softmax_ce(batch["labels"], outputs["logits"]) * w),
                         tf.reduce_sum(w))}

    def score(self, outputs, data):
        names = [self.labels[i] for i in outputs["logits"].argmax(-1)]
        scores = {}
        if data.labelled:
            gold = [e.label for e in data.examples]
            scores["accuracy"] = M.accuracy(gold, names)
            if len(self.labels) == 2:
                pos = self.labels[1]
                scores["f1"] = M.binary_f1(gold, names, positive=pos)
                scores["mcc"] = M.matthews_corrcoef([g == pos for g in gold],
                                                    [p == pos for p in names])
        return scores, [{"label": p} for p in names]

    def serving_outputs(self, model, inputs) -> Dict[str, tf.Tensor]:
        probs = tf.nn.softmax(tf.cast(model(inputs, training=False)["logits"], tf.float32))
        label_id = tf.argmax(probs, -1, output_type=tf.int32)
        return {"probabilities": probs, "label_id": label_id,
                "label": tf.gather(tf.constant(self.labels), label_id)}


@register
class RegressionTask(_SentenceTask):
    kind = "regression"
    task_names = tuple(t for t in GLUE if GLUE[t][3] is None) + ("regression",)
    primary_metric = "pearson"

    def read(self, path):
        examples, stats = super().read(path)
        if self.name in GLUE:
            return examples, stats
        kept = []
        for e in examples:  # a table's labels are strings
            try:
                e.label = None if e.label is None else float(e.label)
            except ValueError:
                stats.skip("label not a number")
                continue
            kept.append(e)
        return kept, stats

    def label_array(self, examples):
        return np.array([np.nan if e.label is None else e.label for e in examples], np.float32)

    def head(self, encoder, inputs, cfg):
        pooled = self.dropout(cfg, encoder)(self.encode(encoder, inputs)["pooled_output"])
        score = self.dense(1, "regressor", encoder)(pooled)
        return {"score": keras.layers.Reshape((), dtype=encoder.dtype_policy,
                                              name="score")(score)}

    def loss_terms(self, outputs, batch):
        w = batch["weight"]
        error = tf.square(tf.cast(outputs["score"], tf.float32) - batch["labels"])
        return {"loss": (tf.reduce_sum(error * w), tf.reduce_sum(w))}

    def score(self, outputs, data):
        pred = outputs["score"].astype(float)
        scores = {}
        if data.labelled:
            gold = [float(e.label) for e in data.examples]
            scores["pearson"] = M.pearson(gold, list(pred))
            scores["spearman"] = M.spearman(gold, list(pred))
        # float32's 7 significant digits: the file is enough to recompute the metrics
        return scores, [{"score": float(f"{p:.7g}")} for p in pred]

    def serving_outputs(self, model, inputs):
        return {"score": tf.cast(model(inputs, training=False)["score"], tf.float32)}
