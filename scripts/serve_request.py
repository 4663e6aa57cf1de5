r"""Answers a TF Serving REST predict request from a SavedModel, the way the server does.

    python scripts/serve_request.py SAVED_MODEL_DIR REQUEST.json

REQUEST.json is the body you would POST to
http://HOST:8501/v1/models/<name>:predict, for example
    {"signature_name": "serving_default", "instances": [{"text": "a gripping film"}]}
The "instances" (row) format is batched into columns, the named signature is
called, and the response is printed in the same row format TF Serving returns:
    {"predictions": [{"label": "1", "probabilities": [0.1, 0.9], ...}]}
Imports only tensorflow and tensorflow_text, as a serving binary links only those.
"""

import json
import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  the tokenizer's ops


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value] if value.dtype == object else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def predict(saved_model: str, request: dict) -> dict:
    fn = tf.saved_model.load(saved_model).signatures[
        request.get("signature_name", "serving_default")]
    specs = fn.structured_input_signature[1]
    if "instances" in request:
        rows = request["instances"]
        columns = {name: [row[name] if isinstance(row, dict) else row for row in rows]
                   for name in specs}
    else:
        columns = request["inputs"]
    inputs = {name: tf.constant(columns[name], dtype=spec.dtype) for name, spec in specs.items()}
    outputs = {k: v.numpy() for k, v in fn(**inputs).items()}
    n = len(next(iter(outputs.values())))
    return {"predictions": [{k: _jsonable(v[i]) for k, v in outputs.items()} for i in range(n)]}


if __name__ == "__main__":
    with open(sys.argv[2], encoding="utf-8") as f:
        request = json.load(f)
    print(json.dumps(predict(sys.argv[1], request), ensure_ascii=False))
