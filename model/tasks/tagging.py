"""Token classification (NER): one BIO tag per whitespace word, on its first subword.

    ner   tokens -> dropout -> dense: logits [B, L, C]

Reads CoNLL-style files (token ... tag per line, blank lines between
sentences). Training and serving tokenize the same way, with the in-graph
`tokenize_words` (each word alone, a word of dropped characters -> [UNK]),
and cut a sentence by one rule (`words_that_fit`): a word whose subwords do
not all fit before the final [SEP] gets no label in training and "O" when
served, and is still scored.
"""

import numpy as np
import tensorflow as tf

from model.networks.preprocessing import trim_to_longest
from model.tasks import metrics as M
from model.tasks.base import (IGNORE, FinetuneTask, TaskData, TaskError, label_index, register,
                              softmax_ce)
from model.tasks.readers import label_set, read_conll


def words_that_fit(positions, lengths, seq_length):
    """[B, W] ragged: the word's subwords all lie before the last position ([SEP])."""
    return positions + lengths <= seq_length - 1


@register
class TaggingTask(FinetuneTask):
    kind = "ner"
    task_names = ("ner",)
    primary_metric = "f1"
    pairs = False
    uses_pooler = False
    per_token_outputs = ("logits",)
    per_token_keys = ("labels",)
    # Batch 16: twice the updates per epoch. At 32, 3 epochs of data/ner's 1,910 tweets
    # (180 steps) left seed 1 predicting "O" everywhere, and transformers trained on that
    # seed's batches and initial head did the same; at 16 seeds 1-3 all learnt entities
    # (dev F1 0.22-0.29; README, "Fine-tuning").
    defaults = dict(FinetuneTask.defaults, train_batch_size=16)

    def read(self, path):
        return read_conll(path)

    def fit(self, examples, path):
        self.labels = label_set(t for e in examples for t in (e.tags or []))
        if len(self.labels) < 2:
            raise TaskError(f"{path}: fewer than two labels ({self.labels})")

    def _tokenize(self, pre, text, seq_length):
        """Whitespace words -> packed ids, each word's first-subword position, fits."""
        ids, positions, lengths = pre.tokenize_words(text)
        fits = words_that_fit(positions, lengths, seq_length)
        return pre.pack(ids, seq_length=seq_length), positions, fits

    def features(self, pre, examples, training):
        L, n = self.seq_length, len(examples)
        index = label_index(self.labels)
        arrays = {k: np.zeros((n, L), np.int32) for k in ("input_ids", "input_mask",
                                                           "segment_ids")}
        arrays["labels"] = np.full((n, L), IGNORE, np.int32)
        max_words = max(len(e.words) for e in examples)
        arrays["word_positions"] = np.full((n, max_words), -1, np.int32)
        for start in range(0, n, 1024):
            chunk = examples[start:start + 1024]
            packed, positions, fits = self._tokenize(
                pre, tf.constant([" ".join(e.words) for e in chunk]), L)
            for k, v in packed.items():
                arrays[k][start:start + len(chunk)] = v.numpy()
            for row, (e, pos, ok) in enumerate(zip(chunk, positions.to_list(), fits.to_list())):
                r = start + row
                for w, (p, f) in enumerate(zip(pos, ok)):
                    if not f:
                        break
                    arrays["word_positions"][r, w] = p
                    if e.tags is not None:
                        arrays["labels"][r, p] = index.get(e.tags[w], IGNORE)
        return TaskData("", examples, arrays, labelled=all(e.tags is not None for e in examples))

    def head(self, encoder, inputs, cfg):
        tokens = self.dropout(cfg, encoder)(self.encode(encoder, inputs)["sequence_output"])
        return {"logits": self.dense(len(self.labels), "tagger", encoder)(tokens)}

    def loss_terms(self, outputs, batch):
        labels = batch["labels"]
        weights = tf.cast(labels >= 0, tf.float32) * batch["weight"][:, None]
        per = softmax_ce(tf.maximum(labels, 0), outputs["logits"])
        return {"loss": (tf.reduce_sum(per * weights), tf.reduce_sum(weights))}

    def score(self, outputs, data):
        ids = outputs["logits"].argmax(-1)
        predicted = []
        for row, e in enumerate(data.examples):
            pos = data.arrays["word_positions"][row, :len(e.words)]
            predicted.append([self.labels[ids[row, p]] if p >= 0 else "O" for p in pos])
        scores = {}
        if data.labelled:
            ent = M.entity_scores([e.tags for e in data.examples], predicted)
            scores.update(precision=ent["precision"], recall=ent["recall"], f1=ent["f1"],
                          f1_per_type=ent["f1_per_type"])
        return scores, [{"words": e.words, "tags": p} for e, p in zip(data.examples, predicted)]

    # -- serving ---------------------------------------------------------------

    def serving_outputs(self, model, inputs):
        probs = tf.nn.softmax(tf.cast(model(inputs, training=False)["logits"], tf.float32))
        return {"token_probabilities": probs,
                "token_label_ids": tf.argmax(probs, -1, output_type=tf.int32)}

    def text_outputs(self, serving, inputs):
        """Whitespace words -> one label per word (its first subword's), as fine-tuned."""
        packed, positions, fits = self._tokenize(serving.preprocessor, inputs["text"],
                                                 serving.seq_length)
        x = trim_to_longest(packed, multiple=serving.multiple)
        out = serving.outputs(x)
        pos = tf.where(fits, positions, 0).to_tensor()
        word_ids = tf.gather(out["token_label_ids"], pos, batch_dims=1)
        # Words cut off by max_seq_length get "O" (the label set's "O", else the first).
        labels = tf.constant(self.labels)
        other = tf.cast(tf.argmax(tf.cast(tf.equal(labels, "O"), tf.int32)), tf.int32)
        word_ids = tf.where(fits.to_tensor(), word_ids, other)
        num_words = tf.cast(positions.row_lengths(), tf.int32)
        valid = tf.sequence_mask(num_words, tf.shape(word_ids)[1])
        return dict(out, input_ids=x["input_ids"], num_words=num_words,
                    token_labels=tf.where(valid, tf.gather(labels, word_ids), ""))

    def expected_text(self, serving, text_inputs, ids, id_outputs):
        # The text path tokenizes word by word; its per-token outputs are checked on its ids.
        packed, _, _ = self._tokenize(serving.preprocessor, tf.constant(text_inputs["text"]),
                                      serving.seq_length)
        x = {k: v.numpy() for k, v in packed.items()}
        out = serving.keras_outputs({k: tf.constant(v) for k, v in x.items()})
        return {k: v.numpy() for k, v in out.items()}, x["input_mask"] > 0
