"""Pretraining (masked LM + next-sentence prediction) as a task of the training engine,
and the serving of a pretrained model ("pretrainer" kind).

    inputs   the dataset's features (tfrecords/): input_ids, input_mask, segment_ids,
             masked_lm_positions, masked_lm_ids, masked_lm_weights, next_sentence_labels;
             document_ids in packed datasets (attention stays within each document)
    losses   masked-LM cross-entropy over the global batch's masked_lm_weights,
             plus NSP cross-entropy over its examples
    served   raw text with literal "[MASK]"s -> top-k tokens per mask (+ NSP probabilities)
"""

import math
from typing import Dict

import keras
import numpy as np
import tensorflow as tf

from model.networks.encoder import BERT_INPUTS, encoder_inputs
from model.networks.preprocessing import trim_to_longest
from model.networks.pretrainer import build_pretrainer
from model.tasks.base import EngineTask, ServingTask, register
from tfrecords.reader import Source, make_dataset
from tfrecords.vocab import special_ids

MODEL_INPUTS = BERT_INPUTS + ("masked_lm_positions",)
# The raw-text signature of a pretrainer: strings per request at most, and [MASK]
# positions sent through the vocabulary projection at once (MLM_CHUNK x vocabulary
# floats: 31 MB at 30,522 words).
MAX_TEXT_BATCH = 1024
MLM_CHUNK = 256


def top_k_of_vectors(mlm_head, vectors, k: int):
    """Top-k probabilities and ids of the MLM head at each of `vectors` [M, H], computed
    MLM_CHUNK vectors at a time: memory MLM_CHUNK x V whatever M is."""
    count = tf.shape(vectors)[0]
    chunks = (count + MLM_CHUNK - 1) // MLM_CHUNK
    padded = tf.pad(vectors, [[0, chunks * MLM_CHUNK - count], [0, 0]])
    padded = tf.reshape(padded, [chunks, MLM_CHUNK, tf.shape(vectors)[1]])
    positions = tf.range(MLM_CHUNK)[None, :]

    def one(chunk):
        logits = tf.cast(mlm_head(chunk[None], mask_positions=positions)[0], tf.float32)
        values, ids = tf.math.top_k(logits, k=k)
        return tf.exp(values - tf.reduce_logsumexp(logits, axis=-1, keepdims=True)), ids

    probs, ids = tf.map_fn(one, padded, fn_output_signature=(
        tf.TensorSpec([MLM_CHUNK, k], tf.float32), tf.TensorSpec([MLM_CHUNK, k], tf.int32)))
    return (tf.reshape(probs, [-1, k])[:count], tf.reshape(ids, [-1, k])[:count])


def dynamic_masker(vocab, max_predictions: int, masked_lm_prob: float,
                   whole_word: bool = False):
    """A tf.data map that masks unmasked batches as google-research's generator does,
    new masks every time it runs (dynamic masking, RoBERTa).

    Per row, round(n x masked_lm_prob) of its n maskable tokens (not [PAD], [CLS],
    [SEP], [UNK]), at least 1 and at most max_predictions, are chosen at random;
    with whole_word, whole words (a token and its "##" continuations) are chosen,
    never more than the budget. Of the chosen, 80% become [MASK], 10% a random real
    token (not a bracketed special one), 10% stay. The exact count, not a per-token
    coin (keras-hub's MaskedLMMaskGenerator), so that the rate is the rate asked for.
    """
    ids = special_ids(vocab)
    unselectable = np.zeros(len(vocab), bool)
    unselectable[[ids[t] for t in ("[PAD]", "[CLS]", "[SEP]", "[UNK]")]] = True
    continuation = np.array([t.startswith("##") for t in vocab])
    replacements = np.array([i for i, t in enumerate(vocab)
                             if not (t.startswith("[") and t.endswith("]"))], np.int32)
    unselectable, continuation = tf.constant(unselectable), tf.constant(continuation)
    replacements = tf.constant(replacements)
    mask_id, P = ids["[MASK]"], max_predictions

    def mask(batch):
        input_ids = tf.cast(batch["input_ids"], tf.int32)
        shape = tf.shape(input_ids)
        B, L = shape[0], shape[1]
        selectable = tf.logical_not(tf.gather(unselectable, input_ids))
        count = tf.reduce_sum(tf.cast(selectable, tf.float32), axis=1)
        budget = tf.minimum(tf.cast(P, tf.float32),
                            tf.maximum(1.0, tf.round(count * masked_lm_prob)))
        if whole_word:  # one score per word: a token and the "##" pieces after it
            starts = tf.logical_or(tf.logical_not(tf.gather(continuation, input_ids)),
                                   tf.logical_not(selectable))
            word = tf.cumsum(tf.cast(starts, tf.int32), axis=1)
            scores = tf.gather(tf.random.uniform([B, L + 1]), word, batch_dims=1)
        else:
            word = tf.broadcast_to(tf.range(L)[None], shape)
            scores = tf.random.uniform([B, L])
        scores = tf.where(selectable, scores, -1.0)
        order = tf.argsort(scores, axis=1, direction="DESCENDING", stable=True)
        rank = tf.argsort(order, axis=1, stable=True)  # each token's place in the draw
        # A word is chosen when all its tokens are within the budget (they are
        # consecutive in the draw: one score per word).
        segments = word + (L + 1) * tf.range(B)[:, None]
        last = tf.math.unsorted_segment_max(tf.reshape(rank, [-1]), tf.reshape(segments, [-1]),
                                            B * (L + 1))
        word_last = tf.reshape(tf.gather(last, tf.reshape(segments, [-1])), shape)
        chosen = tf.logical_and(selectable, tf.cast(word_last, tf.float32) < budget[:, None])
        # The chosen positions in order, padded to P.
        position = tf.broadcast_to(tf.range(L)[None], shape)
        key = tf.sort(tf.where(chosen, position, L + position), axis=1)[:, :P]
        key = tf.pad(key, [[0, 0], [0, P - tf.shape(key)[1]]], constant_values=2 * L)
        valid = key < L
        positions = tf.where(valid, key, 0)
        labels = tf.where(valid, tf.gather(input_ids, positions, batch_dims=1), 0)
        draw = tf.random.uniform([B, P])
        random_ids = tf.gather(replacements, tf.random.uniform(
            [B, P], maxval=tf.shape(replacements)[0], dtype=tf.int32))
        new = tf.where(draw < 0.8, mask_id, tf.where(draw < 0.9, random_ids, labels))
        rows = tf.broadcast_to(tf.range(B)[:, None], [B, P])
        updates = tf.boolean_mask(tf.stack([rows, positions], -1), valid)
        out = dict(batch)
        out["input_ids"] = tf.tensor_scatter_nd_update(input_ids, updates,
                                                       tf.boolean_mask(new, valid))
        out["masked_lm_positions"] = positions
        out["masked_lm_ids"] = labels
        out["masked_lm_weights"] = tf.cast(valid, tf.float32)
        return out

    return mask


def restarted_positions(document_ids):
    """Position ids that start at 0 in each document piece of a packed sequence:
    a token's position is the number of earlier tokens of its own piece (0 on padding).

    Example:
        >>> restarted_positions(tf.constant([[1, 1, 1, 2, 2, 0]])).numpy().tolist()
        [[0, 1, 2, 0, 1, 0]]
    """
    length = tf.shape(document_ids)[1]
    same = tf.equal(document_ids[:, :, None], document_ids[:, None, :])
    earlier = tf.range(length)[None, :] < tf.range(length)[:, None]  # [i, j]: j < i
    positions = tf.reduce_sum(tf.cast(tf.logical_and(same, earlier[None]), tf.int32), axis=2)
    return positions * tf.cast(document_ids > 0, tf.int32)  # 0 on padding


@register
class PretrainingTask(ServingTask, EngineTask):
    """MLM (+ NSP) on a dataset directory; the engine's task for `model.pretrain`.

    Args:
        model_config: the encoder's ModelConfig.
        next_sentence: the dataset has NSP labels (the model gets the NSP head).
        vocab: the vocabulary (dynamic masking draws from it).
        max_predictions, masked_lm_prob, whole_word_mask: dynamic masking's settings.
        restart_positions: in packed datasets, positions restart at 0 in each document.
    """

    kind = "pretrainer"
    split_on_mask = True

    def __init__(self, model_config=None, *, next_sentence: bool = True, vocab=(),
                 max_predictions: int = 20, masked_lm_prob: float = 0.15,
                 restart_positions: bool = False, whole_word_mask: bool = False,
                 settings=None):
        super().__init__(settings)
        self.model_config, self.next_sentence = model_config, next_sentence
        self.vocab, self.max_predictions = list(vocab), max_predictions
        self.masked_lm_prob = masked_lm_prob
        self.restart_positions, self.whole_word_mask = restart_positions, whole_word_mask

    # -- the engine's interface ------------------------------------------------

    def build_model(self) -> keras.Model:
        return build_pretrainer(self.model_config, next_sentence=self.next_sentence)

    def trainable_variables(self, model) -> list:
        """Without NSP nothing reads the pooled output: its dense layer is left as it is
        (saved and restored, never updated), not handed a gradient it cannot have."""
        if self.next_sentence:
            return model.trainable_variables
        pooler = {id(v) for v in model.get_layer("backbone").pooled_dense.trainable_variables}
        return [v for v in model.trainable_variables if id(v) not in pooler]

    def checkpoint_objects(self, model) -> dict:
        # `encoder` lets fine-tuning and export take the encoder alone (model/networks/model_dir.py).
        return {"encoder": model.get_layer("backbone")}

    def dataset_fn(self, source: Source, batch_size: int, is_training: bool, shuffle: bool,
                   seed: int):
        """input_context -> this replica's batches, masked in tf.data when records are not."""

        def fn(ctx):
            ds = make_dataset(source.origin, global_batch_size=batch_size, input_context=ctx,
                              is_training=is_training, shuffle=shuffle, seed=seed, source=source)
            if not source.spec.masked:
                ds = ds.map(dynamic_masker(self.vocab, self.max_predictions,
                                           self.masked_lm_prob, self.whole_word_mask),
                            num_parallel_calls=tf.data.AUTOTUNE)
            return ds

        return fn

    def outputs(self, model, batch, training):
        """The model's outputs; packed batches go through the same layers with attention
        kept within each document (BertEncoder.call), the graph and weights unchanged."""
        if "document_ids" not in batch:
            return model({k: batch[k] for k in MODEL_INPUTS}, training=training)
        inputs = dict(encoder_inputs(batch), document_ids=batch["document_ids"])
        if self.restart_positions:
            inputs["position_ids"] = restarted_positions(batch["document_ids"])
        encoded = model.get_layer("backbone")(inputs, training=training)
        # Packed datasets have no NSP labels, so the model has no NSP head.
        return {"mlm_logits": model.get_layer("mlm_head")(
            encoded["sequence_output"], mask_positions=batch["masked_lm_positions"],
            training=training)}

    def replica_terms(self, model, batch, training):
        outputs = self.outputs(model, batch, training)
        logits = tf.cast(outputs["mlm_logits"], tf.float32)
        labels = batch["masked_lm_ids"]
        weights = tf.cast(batch["masked_lm_weights"], tf.float32)
        per_token = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels),
                          tf.float32)
        losses = {"mlm_loss": (tf.reduce_sum(per_token * weights), tf.reduce_sum(weights))}
        stats = {"mlm_loss_sum": tf.reduce_sum(per_token * weights),
                 "mlm_correct": tf.reduce_sum(correct * weights),
                 "mlm_weight": tf.reduce_sum(weights)}
        # A model with an NSP head scored on single segments (one evaluation set for
        # models of both recipes) is scored on MLM only.
        if "nsp_logits" in outputs and "next_sentence_labels" in batch:
            nsp_logits = tf.cast(outputs["nsp_logits"], tf.float32)
            nsp_labels = tf.reshape(batch["next_sentence_labels"], [-1])
            per_example = keras.losses.sparse_categorical_crossentropy(
                nsp_labels, nsp_logits, from_logits=True)
            count = tf.cast(tf.size(nsp_labels), tf.float32)
            losses["nsp_loss"] = (tf.reduce_sum(per_example), count)
            stats.update(nsp_loss_sum=tf.reduce_sum(per_example), nsp_count=count,
                         nsp_correct=tf.reduce_sum(tf.cast(tf.equal(
                             tf.argmax(nsp_logits, -1, output_type=tf.int32), nsp_labels),
                             tf.float32)))
        return losses, stats

    def log_metrics(self, sums: Dict[str, float], micro_steps: int) -> Dict[str, float]:
        out = {"mlm_loss": sums.get("mlm_loss", 0.0) / micro_steps,
               "mlm_accuracy": sums.get("mlm_correct", 0.0) / max(sums.get("mlm_weight", 0), 1)}
        if "nsp_count" in sums:
            out["nsp_loss"] = sums["nsp_loss"] / micro_steps
            out["nsp_accuracy"] = sums["nsp_correct"] / max(sums["nsp_count"], 1)
        return out

    @staticmethod
    def eval_results(sums: Dict[str, float]) -> Dict[str, float]:
        """Masked-LM loss, accuracy and perplexity, NSP accuracy, from evaluate_sums()."""
        mlm_loss = sums["mlm_loss_sum"] / max(sums["mlm_weight"], 1e-9)
        results = {"eval_mlm_loss": mlm_loss,
                   "eval_mlm_accuracy": sums["mlm_correct"] / max(sums["mlm_weight"], 1e-9),
                   "eval_mlm_perplexity": math.exp(min(mlm_loss, 50.0))}
        if "nsp_count" in sums:
            results["eval_nsp_accuracy"] = sums["nsp_correct"] / max(sums["nsp_count"], 1)
        return results

    # -- serving ---------------------------------------------------------------

    def load_model(self, md):
        model = build_pretrainer(md.model_config, next_sentence=md.next_sentence)
        return model, model.get_layer("backbone")

    def token_id_specs(self):
        return dict(super().token_id_specs(), masked_lm_positions=tf.TensorSpec(
            [None, None], tf.int32, name="masked_lm_positions"))

    def serving_outputs(self, model, inputs):
        out = model({k: inputs[k] for k in MODEL_INPUTS}, training=False)
        res = {"mlm_logits": tf.cast(out["mlm_logits"], tf.float32)}
        if "nsp_logits" in out:
            res["nsp_probabilities"] = tf.nn.softmax(tf.cast(out["nsp_logits"], tf.float32))
        return res

    @staticmethod
    def mask_positions(serving, input_ids):
        """The first P positions holding [MASK] per row, 0-padded; and their validity."""
        L = tf.shape(input_ids)[1]
        idx = tf.broadcast_to(tf.range(L)[None, :], tf.shape(input_ids))
        key = tf.sort(tf.where(input_ids == serving.mask_id, idx, L + idx), axis=1)
        key = key[:, :serving.max_predictions]
        valid = key < L
        return tf.where(valid, key, 0), valid

    def text_outputs(self, serving, inputs):
        """Top-k tokens at each [MASK] of raw text.

        Memory is what the request asks for: the encoder runs on the batch, then
        only the [MASK] positions (gathered across the batch) go through the
        vocabulary projection, MLM_CHUNK at a time, each reduced to its top k before
        the next (a row without [MASK] costs nothing there). Batches above
        MAX_TEXT_BATCH strings are refused with an error saying so.
        """
        text = inputs["text"]
        tf.debugging.assert_less_equal(
            tf.shape(text)[0], MAX_TEXT_BATCH,
            message=f"at most {MAX_TEXT_BATCH} strings per request to this signature: "
                    "split the batch")
        x = trim_to_longest(self.pack(serving, inputs), multiple=serving.multiple)
        positions, valid = self.mask_positions(serving, x["input_ids"])
        model = serving.keras_model
        encoded = model.get_layer("backbone")(encoder_inputs(x), training=False)
        out = {}
        if "nsp_logits" in model.output:
            nsp = model.get_layer("nsp_head")(encoded["pooled_output"])
            out["nsp_probabilities"] = tf.nn.softmax(tf.cast(nsp, tf.float32))
        where = tf.where(valid)  # [M, 2]: (row, slot) of every [MASK]
        at = tf.stack([where[:, 0], tf.cast(tf.gather_nd(positions, where), tf.int64)], axis=1)
        vectors = tf.gather_nd(encoded["sequence_output"], at)  # [M, H]
        top_probs, top_ids = top_k_of_vectors(model.get_layer("mlm_head"), vectors,
                                              serving.top_k)
        shape = tf.concat([tf.shape(positions, out_type=tf.int64), [serving.top_k]], axis=0)
        top_probs = tf.scatter_nd(where, top_probs, shape)
        top_ids = tf.scatter_nd(where, top_ids, shape)
        out.update(input_ids=x["input_ids"], masked_lm_positions=positions,
                   masked_lm_valid=tf.cast(valid, tf.int32), top_k_ids=top_ids,
                   top_k_tokens=tf.gather(serving.vocab, top_ids), top_k_probabilities=top_probs)
        return out

    def check_ids(self, serving, text_inputs):
        ids = super().check_ids(serving, text_inputs)
        ids["masked_lm_positions"] = self.mask_positions(
            serving, tf.constant(ids["input_ids"]))[0].numpy()
        return ids

    def expected_text(self, serving, text_inputs, ids, id_outputs):
        expected = {"masked_lm_positions": ids["masked_lm_positions"]}
        if "nsp_probabilities" in id_outputs:
            expected["nsp_probabilities"] = id_outputs["nsp_probabilities"]
        # The raw-text top-k comes from the same logits (at [MASK] slots; 0 elsewhere).
        probs = tf.nn.softmax(id_outputs["mlm_logits"])
        valid = self.mask_positions(serving, tf.constant(ids["input_ids"]))[1].numpy()
        expected["top_k_probabilities"] = tf.math.top_k(probs, k=serving.top_k)[0].numpy() * \
            valid[:, :, None]
        return expected, ids["input_mask"] > 0
