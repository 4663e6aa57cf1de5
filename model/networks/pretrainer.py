"""The BERT pretrainer: the encoder (model/networks/encoder.py) with a masked-LM head and an
NSP head.

    inputs  {input_ids, input_mask, segment_ids, masked_lm_positions}   (the dataset's names)
    outputs {mlm_logits [B, P, V], nsp_logits [B, 2]}

The masked-LM head is keras-hub's MaskedLMHead, its output projection tied
to the token embedding (as in BERT); it gathers the masked positions before
projecting onto the vocabulary, so only P of L positions pay for the
vocabulary-sized matmul. The losses are the pretraining task's
(model/tasks/pretraining.py).
"""


import keras
import keras_hub

from model.networks.encoder import BertEncoder, activation, bert_initializer, encoder_inputs
from model.networks.heads import NextSentenceHead
from model.networks.presets import ModelConfig


def build_pretrainer(config: ModelConfig, *, next_sentence: bool = True,
                     name: str = "bert_pretrainer") -> keras.Model:
    """A functional Keras model: backbone + tied MLM head (+ NSP head).

    Args:
        config: the encoder's sizes.
        next_sentence: add the NSP head (datasets made without NSP have no labels).
        name: the model's name.

    Example:
        >>> from model.networks.presets import resolve
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

