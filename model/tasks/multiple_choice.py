"""Multiple choice (SWAG / COPA style): a question and N candidate endings, choose one.

    multiple_choice   each (question, ending) pair -> encoder -> pooled -> dense(1):
                      logits [B, N], softmax over the N endings

Data: JSONL, one object per line, {"question": str, "choices": [str, ...],
"label": index of the right choice (absent in test files)}; every line of a
file has the same number of choices. (--text_column, --label_column rename
"question" and "label"; COPA's premise + "What was the cause?" goes in
"question".) Served: `text` [B] and `choices` [B, N] strings -> probabilities
[B, N], choice_id [B].
"""

import json

import keras
import numpy as np
import tensorflow as tf

from model.networks.encoder import BERT_INPUTS
from model.tasks import metrics as M
from model.tasks.base import (FinetuneTask, TableSettings, TaskData, batched_tokenize, register,
                              softmax_ce)
from model.tasks.readers import ReadStats, TaskDataError
from model.tasks.textfiles import INVALID_UTF8, read_text


class _Flatten(keras.layers.Layer):
    """[B, N, L] -> [B*N, L]: each choice is one sequence for the encoder."""

    def call(self, x):
        return tf.reshape(x, [-1, tf.shape(x)[-1]])


class _PerQuestion(keras.layers.Layer):
    """Scores [B*N, 1] -> [B, N], N taken from the [B, N, L] input ids."""

    def call(self, scores, input_ids):
        return tf.reshape(scores, tf.shape(input_ids)[:2])


def read_choices(path: str, question_key: str, label_key: str):
    """(examples as dicts with question, choices, label), ReadStats) of a JSONL file."""
    stats, out, width = ReadStats(), [], None
    try:
        text, bad = read_text(path)
    except OSError as e:
        raise TaskDataError(f"{path}: {e.strerror}") from None
    stats.repair(INVALID_UTF8, bad)
    lines = [line for line in text.split("\n") if line.strip()]
    for line in lines:
        stats.read += 1
        try:
            rec = json.loads(line)
        except ValueError:
            stats.skip("not JSON")
            continue
        if not isinstance(rec, dict):
            stats.skip("not a JSON object")
            continue
        question, choices = rec.get(question_key), rec.get("choices")
        if not isinstance(question, str) or not question.strip():
            stats.skip(f"no text in {question_key!r}")
            continue
        if not isinstance(choices, list) or len(choices) < 2 or \
                not all(isinstance(c, str) for c in choices):
            stats.skip("'choices' is not a list of two or more strings")
            continue
        width = width or len(choices)
        if len(choices) != width:
            stats.skip(f"not {width} choices (the file's first line has {width})")
            continue
        label = rec.get(label_key)
        if label is not None and (not isinstance(label, int) or not 0 <= label < width):
            stats.skip(f"label not a choice index 0..{width - 1}")
            continue
        out.append({"question": question, "choices": choices, "label": label})
    return out, stats


@register
class MultipleChoiceTask(FinetuneTask):
    kind = "multiple_choice"
    task_names = ("multiple_choice",)
    primary_metric = "accuracy"
    settings_type = TableSettings

    def read(self, path):
        question_key = self.s.text_column
        return read_choices(path, "question" if question_key == "text" else question_key,
                            self.s.label_column)

    def fit(self, examples, path):
        self.labels = [str(i) for i in range(len(examples[0]["choices"]))]

    def features(self, pre, examples, training):
        n, width = len(examples), len(self.labels)
        questions = batched_tokenize(pre, [e["question"] for e in examples])
        endings = batched_tokenize(pre, [c for e in examples for c in e["choices"]])
        a = tf.ragged.constant([q for q in questions for _ in range(width)], dtype=tf.int32,
                               ragged_rank=1)
        b = tf.ragged.constant(endings, dtype=tf.int32, ragged_rank=1)
        arrays = {k: v.numpy().reshape(n, width, -1)
                  for k, v in pre.pack(a, b, self.seq_length).items()}
        arrays["labels"] = np.array([-1 if e["label"] is None else e["label"]
                                     for e in examples], np.int32)
        return TaskData("", examples, arrays,
                        labelled=all(e["label"] is not None for e in examples))

    def input_shape(self):
        return (None, None)  # [B, choices, L]

    def head(self, encoder, inputs, cfg):
        flat = {k: _Flatten(name=f"flatten_{k}")(inputs[k]) for k in BERT_INPUTS}
        pooled = self.dropout(cfg, encoder)(self.encode(encoder, flat)["pooled_output"])
        scores = self.dense(1, "choice_scorer", encoder)(pooled)
        return {"logits": _PerQuestion(dtype=encoder.dtype_policy, name="logits")(
            scores, inputs["input_ids"])}

    def loss_terms(self, outputs, batch):
        w = batch["weight"]
        return {"loss": (tf.reduce_sum(softmax_ce(batch["labels"], outputs["logits"]) * w),
                         tf.reduce_sum(w))}

    def score(self, outputs, data):
        chosen = outputs["logits"].argmax(-1)
        scores = {}
        if data.labelled:
            scores["accuracy"] = M.accuracy([e["label"] for e in data.examples], list(chosen))
        return scores, [{"choice": int(c)} for c in chosen]

    # -- serving ---------------------------------------------------------------

    def token_id_specs(self):
        return {k: tf.TensorSpec([None, None, None], tf.int32, name=k) for k in BERT_INPUTS}

    def text_specs(self):
        return {"text": tf.TensorSpec([None], tf.string, name="text"),
                "choices": tf.TensorSpec([None, None], tf.string, name="choices")}

    def serving_outputs(self, model, inputs):
        probs = tf.nn.softmax(tf.cast(model(inputs, training=False)["logits"], tf.float32))
        return {"probabilities": probs, "choice_id": tf.argmax(probs, -1, output_type=tf.int32)}

    def pack(self, serving, inputs):
        pre, choices = serving.preprocessor, inputs["choices"]
        shape = tf.shape(choices)
        text = tf.repeat(inputs["text"], shape[1])  # each question once per choice
        packed = pre.pack(pre.tokenize(text), pre.tokenize(tf.reshape(choices, [-1])))
        return {k: tf.reshape(v, [shape[0], shape[1], -1]) for k, v in packed.items()}

    def check_inputs(self, texts):
        return {"text": [a for a, _ in texts],
                "choices": [[b or "nothing", a[:20] or "something else"] for a, b in texts]}
