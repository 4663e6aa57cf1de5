"""The TF Hub BERT tutorials' code, run on our exports (in its own process: tf-keras).

    TF_USE_LEGACY_KERAS=1 python tests/model/hub_client.py PREPROCESSOR ENCODER OUT.json

1. "Classify text with BERT": text -> hub.KerasLayer(preprocessor) ->
   hub.KerasLayer(encoder, trainable=True) -> pooled_output -> Dropout -> Dense,
   compiled and fitted a few steps; records how much each encoder weight moved.
2. The sentence-pair recipe: hub.load(preprocessor), hub.KerasLayer(.tokenize),
   hub.KerasLayer(.bert_pack_inputs, arguments=dict(seq_length=...)) on two
   text inputs; records the packed tensors.
Only tensorflow, tensorflow_hub, tensorflow_text and tf-keras are imported.
"""

import json
import sys

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  the preprocessor's ops

pre_path, enc_path, out_path = sys.argv[1:4]
assert tf.keras.__name__.startswith("tf_keras"), tf.keras.__name__  # TF_USE_LEGACY_KERAS=1
report = {"keras": tf.keras.__name__}

# 1. Classify text with BERT (the tutorial's build_classifier_model).
text_input = tf.keras.layers.Input(shape=(), dtype=tf.string, name="text")
encoder_inputs = hub.KerasLayer(pre_path, name="preprocessing")(text_input)
encoder = hub.KerasLayer(enc_path, trainable=True, name="BERT_encoder")
outputs = encoder(encoder_inputs)
net = tf.keras.layers.Dropout(0.1)(outputs["pooled_output"])
net = tf.keras.layers.Dense(1, activation=None, name="classifier")(net)
model = tf.keras.Model(text_input, net)
model.compile(optimizer=tf.keras.optimizers.Adam(1e-2),
              loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
texts = np.array(["a gripping film", "a dull mess", "funny and moving", "lifeless and long"] * 4)
labels = np.array([1, 0, 1, 0] * 4, dtype=np.float32)
before = [w.numpy().copy() for w in encoder.trainable_weights]
history = model.fit(texts, labels, epochs=3, batch_size=4, verbose=0)
after = [w.numpy() for w in encoder.trainable_weights]
report["encoder_trainable_weights"] = len(encoder.trainable_weights)
report["encoder_weights_changed"] = sum(not np.array_equal(a, b) for a, b in zip(before, after))
report["losses"] = [float(x) for x in history.history["loss"]]
# Dropout inside the encoder: training=True gives other outputs than inference.
x = hub.KerasLayer(pre_path)(tf.constant(["a gripping film"]))
report["dropout_in_training"] = bool(np.abs(
    encoder(x, training=True)["sequence_output"].numpy()
    - encoder(x, training=False)["sequence_output"].numpy()).max() > 0)
report["encoder_outputs"] = len(encoder(x)["encoder_outputs"])

# 2. The sentence-pair recipe (tokenize + bert_pack_inputs with seq_length).
preprocessor = hub.load(pre_path)
text_inputs = [tf.keras.layers.Input(shape=(), dtype=tf.string) for _ in range(2)]
tokenize = hub.KerasLayer(preprocessor.tokenize)
tokenized_inputs = [tokenize(segment) for segment in text_inputs]
seq_length = 24
bert_pack_inputs = hub.KerasLayer(preprocessor.bert_pack_inputs,
                                  arguments=dict(seq_length=seq_length))
pair_model = tf.keras.Model(text_inputs, bert_pack_inputs(tokenized_inputs))
packed = pair_model([tf.constant(["the cat sat", "a very long first sentence " * 5]),
                     tf.constant(["on the mat", "short"])])
report["pair"] = {k: v.numpy().tolist() for k, v in packed.items()}
report["special_tokens"] = {k: int(v) for k, v in
                            preprocessor.tokenize.get_special_tokens_dict().items()}
tokens = preprocessor.tokenize(tf.constant(["the cat sat", ""]))
report["tokenize_shape"] = [int(tokens.nrows()), tokens.ragged_rank]
report["tokenize"] = tokens.to_list()
with open(out_path, "w") as f:
    json.dump(report, f)
