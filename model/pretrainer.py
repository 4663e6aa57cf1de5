"""The BERT pretrainer: the encoder (model/encoder.py) with a masked-LM head and an NSP head.

    inputs  {input_ids, input_mask, segment_ids, masked_lm_positions}   (the dataset's names)
    outputs {mlm_logits [B, P, V], nsp_logits [B, 2]}

The masked-LM head is keras-hub's MaskedLMHead, its output projection tied
to the token embedding (as in BERT); it gathers the masked positions before
projecting onto the vocabulary, so only P of L positions pay for the
vocabulary-sized matmul. The losses are BERT's: masked-LM cross-entropy
weighted by masked_lm_weights, plus NSP cross-entropy.
"""

from typing import Dict

import keras
import keras_hub
import tensorflow as tf

from model.encoder import BertEncoder, activation, bert_initializer, encoder_inputs
from model.heads import NextSentenceHead
from model.presets import ModelConfig


def build_pretrainer(config: ModelConfig, *, next_sentence: bool = True,
                     name: str = "bert_pretrainer") -> keras.Model:
    """A functional Keras model: backbone + tied MLM head (+ NSP head).

    Args:
        config: the encoder's sizes.
        next_sentence: add the NSP head (datasets made without NSP have no labels).
        name: the model's name.

    Example:
        >>> from model.presets import resolve
        >>> model = build_pretrainer(resolve("bert_tiny", vocabulary_size=100))
        >>> sorted(model.output)
        ['mlm_logits', 'nsp_logits']
    """
    backbone = BertEncoder(**config.backbone_kwargs(), name="backbone")
    mlm_head = keras_hub.layers.MaskedLMHead(
        vocabulary_size=config.vocabulary_size, token_embedding=backbone.token_embedding,
        # BERT's transform uses the encoder's activation and epsilon (keras-hub's
        # defaults are relu and 1e-5).
        intermediate_activation=activation(config.hidden_act),
        layer_norm_epsilon=config.layer_norm_epsilon, kernel_initializer=bert_initializer(),
        dtype=backbone.dtype_policy, name="mlm_head")
    inputs = {
        "input_ids": keras.Input((None,), dtype="int32", name="input_ids"),
        "input_mask": keras.Input((None,), dtype="int32", name="input_mask"),
        "segment_ids": keras.Input((None,), dtype="int32", name="segment_ids"),
        "masked_lm_positions": keras.Input((None,), dtype="int32", name="masked_lm_positions"),
    }
    encoded = backbone(encoder_inputs(inputs))
    outputs = {"mlm_logits": mlm_head(encoded["sequence_output"],
                                      mask_positions=inputs["masked_lm_positions"])}
    if next_sentence:
        nsp_head = NextSentenceHead(kernel_initializer=bert_initializer(),
                                    dtype=backbone.dtype_policy, name="nsp_head")
        outputs["nsp_logits"] = nsp_head(encoded["pooled_output"])
    return keras.Model(inputs, outputs, name=name)


def pretraining_losses(outputs: Dict[str, tf.Tensor], batch: Dict[str, tf.Tensor],
                       mlm_denominator: tf.Tensor, global_batch_size: int) -> Dict[str, tf.Tensor]:
    """Per-replica loss terms whose sum over replicas is the global batch's loss.

    Args:
        outputs: the model's outputs for this replica's batch.
        batch: this replica's batch (masked_lm_ids, masked_lm_weights, next_sentence_labels).
        mlm_denominator: sum of masked_lm_weights over the *global* batch.
        global_batch_size: examples in the global batch (for the NSP mean).

    Returns:
        mlm_loss, nsp_loss (0 without NSP), and the sums behind the metrics.
    """
    logits = tf.cast(outputs["mlm_logits"], tf.float32)
    labels = batch["masked_lm_ids"]
    weights = tf.cast(batch["masked_lm_weights"], tf.float32)
    per_token = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    out = {
        "mlm_loss": tf.reduce_sum(per_token * weights) / mlm_denominator,
        "mlm_loss_sum": tf.reduce_sum(per_token * weights),
        "mlm_correct": tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32)
            * weights),
        "mlm_weight": tf.reduce_sum(weights),
    }
    if "nsp_logits" in outputs:
        nsp_logits = tf.cast(outputs["nsp_logits"], tf.float32)
        nsp_labels = tf.reshape(batch["next_sentence_labels"], [-1])
        per_example = keras.losses.sparse_categorical_crossentropy(
            nsp_labels, nsp_logits, from_logits=True)
        out["nsp_loss"] = tf.reduce_sum(per_example) / global_batch_size
        out["nsp_loss_sum"] = tf.reduce_sum(per_example)
        out["nsp_correct"] = tf.reduce_sum(tf.cast(tf.equal(
            tf.argmax(nsp_logits, -1, output_type=tf.int32), nsp_labels), tf.float32))
        out["nsp_count"] = tf.cast(tf.size(nsp_labels), tf.float32)
    else:
        out["nsp_loss"] = tf.zeros([])
    return out
