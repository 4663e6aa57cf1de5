"""TF Hub reusable SavedModels: the BERT encoder and its text preprocessor.

They follow the API of the TF Hub BERT models (the one TF Model Garden's
official/nlp/tools/export_tfhub_lib.py writes), so the TF Hub tutorials'
code runs on them unchanged:

    preprocessor = hub.KerasLayer(EXPORT/<name>_preprocessor/1)
    encoder = hub.KerasLayer(EXPORT/<name>_encoder/1, trainable=True)
    pooled = encoder(preprocessor(text))["pooled_output"]          # fine-tunes the encoder

    prep = hub.load(EXPORT/<name>_preprocessor/1)
    a, b = prep.tokenize(text_a), prep.tokenize(text_b)             # [B, words, wordpieces]
    inputs = prep.bert_pack_inputs([a, b], seq_length=64)           # round-robin trimmed

Encoder: `__call__(inputs, training=None)` (dropout when training) returns
pooled_output, sequence_output, default (= pooled_output) and
encoder_outputs (a list, every transformer layer's output); `variables`,
`trainable_variables` (the ones the forward pass reads: see
model/export/savedmodel.py) and `regularization_losses` (none). Its serving_default
signature has the same outputs, the list flattened to encoder_outputs_0..N-1.

Preprocessor: `__call__(text)` packs one segment at the exported length;
`tokenize(text)` -> RaggedTensor [B, words, wordpieces] with
`tokenize.get_special_tokens_dict()`; `bert_pack_inputs(segments,
seq_length=N)` takes a list of 1-3 tokenized segments; `pair(text, text_b)`.
"""

import keras
import tensorflow as tf

from model.export.savedmodel import ExportRoot, keras_free, save
from model.networks.encoder import BERT_INPUTS, TF_HUB_NAMES, encoder_inputs
from model.networks.preprocessing import BertTextPreprocessor, pack_segments

ENCODER_INPUTS = tuple(TF_HUB_NAMES[k] for k in BERT_INPUTS)


def hub_inputs(packed: dict) -> dict:
    """Our packed inputs (input_ids, input_mask, segment_ids) under TF Hub's names."""
    return encoder_inputs(packed, TF_HUB_NAMES)


def encoder_input_spec() -> dict:
    return {k: tf.TensorSpec([None, None], tf.int32, name=k) for k in ENCODER_INPUTS}


def per_layer_model(encoder) -> keras.Model:
    """The encoder with every transformer layer's output as a third output.

    The last of them is sequence_output, as TF Hub's BERT encoders promise: a pre-LN
    encoder's (norm_first) has its final LayerNorm applied; the ones before it are the
    blocks' outputs, the residual stream.
    """
    layers = [layer.output for layer in encoder.transformer_layers]
    layers[-1] = encoder.output["sequence_output"]
    return keras.Model(encoder.input, {
        "sequence_output": encoder.output["sequence_output"],
        "pooled_output": encoder.output["pooled_output"],
        "encoder_outputs": layers})


class HubEncoder(ExportRoot):
    """{input_word_ids, input_mask, input_type_ids} -> BERT outputs, TF Hub's encoder API."""

    def __init__(self, encoder):
        super().__init__()
        self._model = keras_free(per_layer_model(encoder))
        self.regularization_losses = []

    @tf.function
    def __call__(self, inputs, training=None):
        out = self.keras_outputs(inputs, training=bool(training))
        pooled = tf.cast(out["pooled_output"], tf.float32)
        return {"pooled_output": pooled, "default": pooled,
                "sequence_output": tf.cast(out["sequence_output"], tf.float32),
                "encoder_outputs": [tf.cast(x, tf.float32) for x in out["encoder_outputs"]]}

    def keras_outputs(self, inputs: dict, training: bool = False) -> dict:
        """The Keras encoder on TF Hub's input names (the verification's reference)."""
        bert = {k: inputs[TF_HUB_NAMES[k]] for k in BERT_INPUTS}
        return self._model.obj(encoder_inputs(bert), training=training)

    def signature(self):
        @tf.function(input_signature=[encoder_input_spec()])
        def serving_default(inputs):
            out = dict(self.__call__(inputs, training=False))
            for i, x in enumerate(out.pop("encoder_outputs")):
                out[f"encoder_outputs_{i}"] = x
            return out
        return serving_default.get_concrete_function()

    def write(self, path: str) -> None:
        traces = [self.__call__.get_concrete_function(encoder_input_spec(), training=t)
                  for t in (None, False, True)]
        save(self, path, {"serving_default": self.signature()}, traces)


class _Tokenize(ExportRoot):
    """`preprocessor.tokenize`: [B] strings -> [B, words, wordpieces] int32."""

    def __init__(self, pre: BertTextPreprocessor):
        super().__init__()
        self.pre = pre
        self._special = {"vocab_size": pre.vocab_size, "start_of_sequence_id": pre.cls_id,
                         "end_of_segment_id": pre.sep_id, "padding_id": pre.pad_id,
                         "mask_id": pre.mask_id}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text):
        return self.pre.tokenize_to_words(text)

    @tf.function(input_signature=[])
    def get_special_tokens_dict(self):
        return {k: tf.constant(v, tf.int32) for k, v in self._special.items()}


class _PackInputs(ExportRoot):
    """`preprocessor.bert_pack_inputs(segments, seq_length=N)`, as TF Hub's."""

    def __init__(self, pre: BertTextPreprocessor, seq_length: int):
        super().__init__()
        ids = (pre.cls_id, pre.sep_id, pre.pad_id)

        @tf.function(autograph=False)
        def call(inputs, seq_length=seq_length):
            if not isinstance(inputs, (list, tuple)):
                inputs = [inputs]
            return pack_segments(inputs, seq_length, *ids)

        self.__call__ = call
        for ragged_rank in (1, 2):
            for n in (1, 2, 3):
                call.get_concrete_function(
                    [tf.RaggedTensorSpec([None] * (ragged_rank + 1), tf.int32,
                                         ragged_rank=ragged_rank) for _ in range(n)],
                    seq_length=tf.TensorSpec([], tf.int32))


class HubPreprocessor(ExportRoot):
    """text -> {input_word_ids, input_mask, input_type_ids}, TF Hub's preprocessor API."""

    def __init__(self, pre: BertTextPreprocessor, seq_length: int):
        super().__init__()
        self.pre = pre
        self.tokenize = _Tokenize(pre)
        self.bert_pack_inputs = _PackInputs(pre, seq_length)
        self.seq_length = seq_length

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def __call__(self, text):
        return hub_inputs(self.pre.pack(self.pre.tokenize(text), None, self.seq_length))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([None], tf.string, name="text_b")])
    def pair(self, text, text_b):
        """Two texts, truncated longest-first as fine-tuning does ("" = no second text)."""
        p = self.pre
        return hub_inputs(p.pack(p.tokenize(text), p.tokenize(text_b), self.seq_length))

    def write(self, path: str) -> None:
        save(self, path, {"serving_default": self.__call__.get_concrete_function(),
                          "pair": self.pair.get_concrete_function()})
