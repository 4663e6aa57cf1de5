"""The BERT encoder: keras-hub's BertBackbone with its activation and epsilon as arguments.

keras-hub's BertBackbone hard-codes the tanh approximation of GELU (as
google-research/bert's TF1 code does) and a layer-norm epsilon of 1e-12.
Hugging Face checkpoints with `hidden_act: gelu` use the exact erf GELU:
loaded into BertBackbone as is, all-MiniLM-L6-v2's sequence_output differs
from transformers' BertModel by ~5e-3 (measured), fifty times the 1e-4 an
import must meet. This class builds the same graph from the same keras-hub
blocks (ReversibleEmbedding, PositionEmbedding, TransformerEncoder) with the
same layer names, so weights and checkpoints carry over, and takes the
activation and epsilon from the model's config.
"""

import keras
import keras_hub
from keras_hub.layers import PositionEmbedding, ReversibleEmbedding, TransformerEncoder

ACTIVATIONS = ("gelu_approximate", "gelu", "relu")


@keras.saving.register_keras_serializable(package="bert_pipeline")
def gelu_tanh(x):
    """GELU, tanh approximation (google-research/bert's "gelu")."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="bert_pipeline")
def gelu_erf(x):
    """GELU, exact erf form (Hugging Face's and PyTorch's "gelu")."""
    return keras.activations.gelu(x, approximate=False)


def activation(name: str):
    """The activation function of a config's hidden_act."""
    if name == "gelu_approximate":
        return gelu_tanh
    if name == "gelu":
        return gelu_erf
    if name == "relu":
        return keras.activations.relu
    raise ValueError(f"hidden_act must be one of {', '.join(ACTIVATIONS)}, got {name!r}")


def bert_initializer():
    """BERT's weight initializer (truncated normal, stddev 0.02), for the encoder and every head."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


# The dataset's (google-research/bert's) input names -> keras-hub's, and TF Hub's.
BERT_INPUTS = ("input_ids", "input_mask", "segment_ids")
KERAS_HUB_NAMES = {"input_ids": "token_ids", "input_mask": "padding_mask",
                   "segment_ids": "segment_ids"}
TF_HUB_NAMES = {"input_ids": "input_word_ids", "input_mask": "input_mask",
                "segment_ids": "input_type_ids"}


def encoder_inputs(batch: dict, names: dict = None) -> dict:
    """A batch under BERT's input names -> the encoder's (keras-hub's) names, or `names`'.

    Example:
        >>> sorted(encoder_inputs({"input_ids": 1, "input_mask": 2, "segment_ids": 3}))
        ['padding_mask', 'segment_ids', 'token_ids']
    """
    names = names or KERAS_HUB_NAMES
    return {names[k]: batch[k] for k in BERT_INPUTS}


@keras.saving.register_keras_serializable(package="bert_pipeline")
class BertEncoder(keras_hub.models.Backbone):
    """A BERT encoder: {token_ids, segment_ids, padding_mask} -> {sequence_output, pooled_output}.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
        dropout, max_sequence_length, num_segments: as keras-hub's BertBackbone.
        hidden_act: "gelu_approximate" (tanh; google-research/bert, keras-hub),
            "gelu" (exact erf; Hugging Face's "gelu") or "relu".
        layer_norm_epsilon: epsilon of every layer normalization.
        norm_first: pre-LayerNorm blocks (x + f(LN(x)); Cramming, GPT-2) and a final
            LayerNorm after the last block. False (default): BERT's post-LN blocks
            (LN(x + f(x))), what every published BERT checkpoint holds. Pre-LN trains
            stably at higher learning rates, the point of it for budget pretraining.
        dtype: the dtype policy of every layer.

    Example:
        >>> enc = BertEncoder(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
        ...                   intermediate_dim=16, hidden_act="gelu")
        >>> out = enc({"token_ids": [[2, 3]], "segment_ids": [[0, 0]], "padding_mask": [[1, 1]]})
        >>> tuple(out["sequence_output"].shape), tuple(out["pooled_output"].shape)
        ((1, 2, 8), (1, 8))
    """

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
                 dropout=0.1, max_sequence_length=512, num_segments=2,
                 hidden_act="gelu_approximate", layer_norm_epsilon=1e-12, norm_first=False,
                 dtype=None, **kwargs):
        act = activation(hidden_act)
        # === Layers (names as keras-hub's BertBackbone) ===
        self.token_embedding = ReversibleEmbedding(
            input_dim=vocabulary_size, output_dim=hidden_dim,
            embeddings_initializer=bert_initializer(), dtype=dtype, name="token_embedding")
        self.position_embedding = PositionEmbedding(
            initializer=bert_initializer(), sequence_length=max_sequence_length, dtype=dtype,
            name="position_embedding")
        self.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments, output_dim=hidden_dim, embeddings_initializer=bert_initializer(),
            dtype=dtype, name="segment_embedding")
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            axis=-1, epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm")
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype,
                                                       name="embeddings_dropout")
        self.transformer_layers = [
            TransformerEncoder(
                num_heads=num_heads, intermediate_dim=intermediate_dim, activation=act,
                dropout=dropout, layer_norm_epsilon=layer_norm_epsilon, normalize_first=norm_first,
                kernel_initializer=bert_initializer(), dtype=dtype, name=f"transformer_layer_{i}")
            for i in range(num_layers)]
        # Pre-LN blocks leave the residual stream unnormalized: one LayerNorm after the last.
        self.final_layer_norm = keras.layers.LayerNormalization(
            axis=-1, epsilon=layer_norm_epsilon, dtype=dtype,
            name="final_layer_norm") if norm_first else None
        self.pooled_dense = keras.layers.Dense(
            hidden_dim, kernel_initializer=bert_initializer(), activation="tanh", dtype=dtype,
            name="pooled_dense")

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        tokens = self.token_embedding(token_ids)
        x = self.embeddings_add((tokens, self.position_embedding(tokens),
                                 self.segment_embedding(segment_ids)))
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask)
        if self.final_layer_norm is not None:
            x = self.final_layer_norm(x)
        pooled = self.pooled_dense(x[:, 0, :])
        super().__init__(
            inputs={"token_ids": token_ids, "segment_ids": segment_ids,
                    "padding_mask": padding_mask},
            outputs={"sequence_output": x, "pooled_output": pooled}, dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.hidden_act = hidden_act
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first
        self.cls_token_index = 0

    def call(self, inputs, training=None, mask=None):
        """The functional graph; or, for packed sequences (inputs with "document_ids"),
        the same layers with attention kept within each document.

        document_ids [B, L]: 1, 2, ... per document piece, 0 on padding. A token
        attends only to tokens of its own piece (a block-diagonal [B, L, L] mask,
        which keras-hub's TransformerEncoder takes as attention_mask). With
        "position_ids" [B, L] too, positions are those (e.g. restarting at 0 in
        each document) instead of 0..L-1. The weights and the checkpoint layout are
        the functional graph's: packed training and unpacked serving share them.
        """
        if not isinstance(inputs, dict) or "document_ids" not in inputs:
            return super().call(inputs, training=training, mask=mask)
        documents = keras.ops.convert_to_tensor(inputs["document_ids"])
        attention_mask = keras.ops.logical_and(
            keras.ops.equal(documents[:, :, None], documents[:, None, :]),
            keras.ops.greater(documents[:, None, :], 0))
        tokens = self.token_embedding(inputs["token_ids"])
        positions = self.position_embedding(tokens, positions=inputs.get("position_ids"))
        x = self.embeddings_add((tokens, positions, self.segment_embedding(inputs["segment_ids"])))
        x = self.embeddings_dropout(self.embeddings_layer_norm(x), training=training)
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=inputs["padding_mask"], attention_mask=attention_mask,
                      training=training)
        if self.final_layer_norm is not None:
            x = self.final_layer_norm(x)
        return {"sequence_output": x, "pooled_output": self.pooled_dense(x[:, 0, :])}

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary_size": self.vocabulary_size, "num_layers": self.num_layers,
            "num_heads": self.num_heads, "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim, "dropout": self.dropout,
            "max_sequence_length": self.max_sequence_length, "num_segments": self.num_segments,
            "hidden_act": self.hidden_act, "layer_norm_epsilon": self.layer_norm_epsilon,
            "norm_first": self.norm_first})
        return config
