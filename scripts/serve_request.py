r"""Answers a TF Serving REST predict request from a SavedModel, the way the server does.

    python scripts/serve_request.py SAVED_MODEL_DIR REQUEST.json

REQUEST.json is the body you would POST to
http://HOST:8501/v1/models/<name>:predict, for example
    {"signature_name": "serving_default", "instances": [{"text": "a gripping film"}]}
The "instances" (row) format is batched into columns, the named signature is
called, and the response is printed in the same row format TF Serving returns:
    {"predictions": [{"label": "1", "probabilities": [0.1, 0.9], ...}]}
Every input of the signature must be in every instance, as TF Serving
requires: a pair model's instance without "text_b" is refused in one line
(send "text_b": "" for a single text, which is what "" means to the model).
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


class RequestError(Exception):
    """A request the server would refuse; the message says why, in one line."""


def _columns(request: dict, specs: dict) -> dict:
    if "instances" in request:
        rows = request["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError('"instances" must be a non-empty list')
        columns = {}
        for name in specs:
            if len(specs) == 1 and not isinstance(rows[0], dict):
                columns[name] = rows
                continue
            for i, row in enumerate(rows):
                if not isinstance(row, dict) or name not in row:
                    hint = (' (this model takes text pairs: send "text_b": "" for a single text)'
                            if name == "text_b" else "")
                    raise RequestError(f'instance {i} lacks input "{name}"{hint}')
            columns[name] = [row[name] for row in rows]
        return columns
    columns = request.get("inputs")
    if not isinstance(columns, dict):
        raise RequestError('the request needs "instances" (rows) or "inputs" (columns)')
    missing = [name for name in specs if name not in columns]
    if missing:
        raise RequestError(f'"inputs" lacks {missing}')
    return columns


def predict(saved_model: str, request: dict) -> dict:
    if not isinstance(request, dict):
        raise RequestError("the request body must be a JSON object")
    signature = request.get("signature_name", "serving_default")
    signatures = tf.saved_model.load(saved_model).signatures
    if signature not in signatures:
        raise RequestError(f"{saved_model} has no signature {signature!r} "
                           f"(it has {sorted(signatures)})")
    fn = signatures[signature]
    specs = fn.structured_input_signature[1]
    columns = _columns(request, specs)
    inputs = {name: tf.constant(columns[name], dtype=spec.dtype) for name, spec in specs.items()}
    outputs = {k: v.numpy() for k, v in fn(**inputs).items()}
    n = len(next(iter(outputs.values())))
    return {"predictions": [{k: _jsonable(v[i]) for k, v in outputs.items()} for i in range(n)]}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/serve_request.py SAVED_MODEL_DIR REQUEST.json")
    try:
        with open(sys.argv[2], encoding="utf-8") as f:
            body = json.load(f)
    except (OSError, ValueError) as e:  # a missing file, a request that is not JSON
        sys.exit(f"serve_request: {sys.argv[2]}: {e}")
    try:
        print(json.dumps(predict(sys.argv[1], body), ensure_ascii=False))
    except RequestError as e:
        sys.exit(f"serve_request: {sys.argv[2]}: {e}")
    except (OSError, ValueError) as e:  # not a SavedModel; values of the wrong type
        sys.exit(f"serve_request: {sys.argv[1]}: {str(e).strip().splitlines()[0]}")
