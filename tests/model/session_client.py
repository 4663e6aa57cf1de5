"""TF Serving's loading path, as a client: the graph-mode session loader runs one signature.

    python tests/model/session_client.py SAVED_MODEL SIGNATURE INPUTS.json OUT.npz

INPUTS.json maps each input name to a list of ints (any rank) or {"b64": [...]}
(strings as base64, so invalid UTF-8 and NUL bytes survive). Several batches:
a list of such maps, run one after another in the same session. OUT.npz gets
each output as "NAME/BATCH", strings as bytes. Prints the
signature names of the MetaGraph as JSON. Imports tensorflow and
tensorflow_text only, never this project.
"""

import base64
import json
import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  the raw-text models' ops

path, signature, inputs_file, out_file = sys.argv[1:5]
with open(inputs_file) as f:
    batches = json.load(f)
batches = batches if isinstance(batches, list) else [batches]


def as_array(v):
    if isinstance(v, dict):
        return np.array([base64.b64decode(s) for s in v["b64"]], dtype=object)
    return np.array(v, dtype=np.int32)


graph = tf.Graph()
with tf.compat.v1.Session(graph=graph) as sess:
    with graph.as_default():
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
    sig = meta.signature_def[signature]
    names = sorted(sig.outputs)
    results = {}
    for i, batch in enumerate(batches):
        feeds = {sig.inputs[k].name: as_array(v) for k, v in batch.items()}
        for k, v in zip(names, sess.run([sig.outputs[k].name for k in names], feeds)):
            results[f"{k}/{i}"] = v.astype("S") if v.dtype == object else v
np.savez(out_file, **results)
print(json.dumps(sorted(meta.signature_def)))
