"""A bare encoder (an imported checkpoint without heads): served, not fine-tuned.

    served   pooled_output [B, H], sequence_output [B, L, H]
"""

import tensorflow as tf

from model.networks.encoder import encoder_inputs
from model.networks.model_dir import build_encoder
from model.tasks.base import ServingTask, register


@register
class EncoderTask(ServingTask):
    kind = "encoder"

    def load_model(self, md):
        encoder = build_encoder(md.model_config)
        return encoder, encoder

    def serving_outputs(self, model, inputs):
        out = model(encoder_inputs(inputs), training=False)
        return {k: tf.cast(v, tf.float32) for k, v in out.items()}
