"""The next-sentence-prediction head, which keras-hub does not have.

Written in keras-hub's style: every constructor argument stored and
returned by get_config(), `dtype` passed to every sublayer.
"""

import keras


@keras.saving.register_keras_serializable(package="bert_pipeline")
class NextSentenceHead(keras.layers.Layer):
    """Logits of "segment B is random" from BERT's pooled [CLS] output.

    BERT puts a 2-way classifier on the pooled output (itself a tanh dense
    layer over the [CLS] token, which the encoder computes).

    Args:
        kernel_initializer: initializer of the classifier kernel.
        dtype: the layer's dtype policy.

    Example:
        >>> head = NextSentenceHead()
        >>> tuple(head(keras.ops.zeros((3, 16))).shape)
        (3, 2)
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.classifier = keras.layers.Dense(
            2, kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy,
            name="classifier")

    def build(self, input_shape):
        self.classifier.build(input_shape)
        self.built = True

    def call(self, pooled_output):
        return self.classifier(pooled_output)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2,)

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        return config
