"""Runs exported SavedModels the way their clients do, in a fresh process.

TF Serving's C++ server and `saved_model_cli run` load a SavedModel with the
graph-mode session loader (`LoadSavedModel`: import the MetaGraph, run the
restore op, run the init op, then `Session.run` on a signature's tensors);
`tf.compat.v1.saved_model.loader.load` is the same path in Python. TF Hub and
model.predict use `tf.saved_model.load`. A check that only used the latter
passed while every export failed in the former (see model/export/savedmodel.py), so
`run_clients` uses both, plus the `saved_model_cli run` binary itself, in a
process that imports nothing of this project.
"""

import json
import os
import subprocess
import sys
import tempfile
from typing import List, Sequence, Tuple

import numpy as np

# Imports only tensorflow (and tensorflow_text, after measuring which ops need it).
_SCRIPT = r'''
import json, sys
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

spec = json.load(open(sys.argv[1]))

def ops_not_in_core(path):
    sm = saved_model_pb2.SavedModel()
    with open(path + "/saved_model.pb", "rb") as f:
        sm.ParseFromString(f.read())
    names = set()
    for mg in sm.meta_graphs:
        names |= {n.op for n in mg.graph_def.node}
        for fn in mg.graph_def.library.function:
            names |= {n.op for n in fn.node_def}
    return sorted(n for n in names if op_def_registry.get(n) is None)

report = {"ops": {path: ops_not_in_core(path) for path in spec["paths"]}}
import tensorflow_text  # noqa: F401  registers its ops

def as_array(v):
    return np.array(v, dtype=object if v and isinstance(np.ravel(v)[0], str) else np.int32)

out = {}
sessions = {}
for key, path, fn, inputs in spec["session"]:
    if path not in sessions:  # TF Serving's loading path
        graph = tf.Graph()
        sess = tf.compat.v1.Session(graph=graph)
        with graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        sessions[path] = (sess, meta)
    sess, meta = sessions[path]
    sig = meta.signature_def[fn]
    missing = sorted(set(sig.inputs) - set(inputs))
    if missing:
        raise SystemExit(f"{path} signature {fn} takes inputs {missing} the check did not give")
    feeds = {sig.inputs[k].name: as_array(v) for k, v in inputs.items()}
    names = sorted(sig.outputs)
    values = sess.run([sig.outputs[k].name for k in names], feeds)
    for name, value in zip(names, values):
        out[f"session:{key}/{name}"] = value.astype("S") if value.dtype == object else value
report["signatures"] = {p: sorted(k for k in m.signature_def if not k.startswith("__"))
                        for p, (_, m) in sessions.items()}  # "__saved_model_init_op" is no API
report["signatures_run"] = {p: sorted({c[2] for c in spec["session"] if c[1] == p})
                            for p in sessions}
for key, path, fn, inputs in spec["tf2"]:
    loaded = tf.saved_model.load(path)
    inputs = {k: tf.constant(as_array(v)) for k, v in inputs.items()}
    if fn == "__call__":
        result = loaded(inputs, training=False)
        report["hub_variables"] = {"variables": len(loaded.variables),
                                   "trainable_variables": len(loaded.trainable_variables),
                                   "regularization_losses": len(loaded.regularization_losses)}
        layers = result.pop("encoder_outputs")
        result.update({f"encoder_outputs_{i}": x for i, x in enumerate(layers)})
    else:
        result = loaded.signatures[fn](**inputs)
    for name, value in result.items():
        value = value.numpy()
        out[f"tf2:{key}/{name}"] = value.astype("S") if value.dtype == object else value
np.savez(spec["output"], **out)
report["modules"] = sorted(m for m in ("keras_hub", "model", "pipeline", "tfrecords")
                           if m in sys.modules)
print(json.dumps(report))
'''


class ClientError(Exception):
    """A SavedModel that a client cannot load or run; the message says which."""


def run_clients(paths: Sequence[str], session_calls: List[Tuple], tf2_calls: List[Tuple]) -> dict:
    """Loads and runs SavedModels in a fresh process (session loader, tf.saved_model.load).

    Args:
        paths: SavedModel directories whose ops are listed (those outside core TF).
        session_calls, tf2_calls: (key, path, signature or "__call__", {input: list}).
    Returns:
        {"ops": {path: [op]}, "signatures": {path: [name]}, "signatures_run": {path: [name]},
         "hub_variables": {...},
         "modules": [...], "outputs": {"session:key/output" | "tf2:key/output": array}}
    """
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"paths": list(paths), "session": session_calls, "tf2": tf2_calls,
                "output": os.path.join(tmp, "out.npz")}
        with open(os.path.join(tmp, "spec.json"), "w") as f:
            json.dump(spec, f)
        proc = subprocess.run([sys.executable, "-c", _SCRIPT, os.path.join(tmp, "spec.json")],
                              capture_output=True, text=True)
        if proc.returncode:
            lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
            raise ClientError("the export does not run in a fresh process (session loader / "
                              "tf.saved_model.load): " + (_first_error(lines) or "no output"))
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        with np.load(spec["output"]) as data:
            report["outputs"] = {k: data[k] for k in data.files}
    return report


def _first_error(lines: Sequence[str]) -> str:
    """The TensorFlow error line of a traceback (its last line is often just a node name)."""
    for line in reversed(lines):
        if "Error" in line.split(":")[0] or "error" in line.split(":")[0]:
            return line.strip()
    return lines[-1].strip() if lines else ""


def saved_model_cli(*args: str) -> str:
    """Runs the `saved_model_cli` beside this Python; its stdout, or a ClientError."""
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        raise ClientError(f"saved_model_cli not found beside {sys.executable}")
    proc = subprocess.run([cli, *args], capture_output=True, text=True)
    if proc.returncode:
        lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
        raise ClientError(f"saved_model_cli {' '.join(args[:1])} --dir {args[2]} failed: "
                          + _first_error(lines))
    return proc.stdout


def saved_model_cli_run(path: str, signature: str, inputs: dict) -> dict:
    """`saved_model_cli run --inputs` on an .npz of `inputs`; the outputs it wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "inputs.npz")
        np.savez(npz, **inputs)
        saved_model_cli("run", "--dir", path, "--tag_set", "serve", "--signature_def", signature,
                        "--inputs", ";".join(f"{k}={npz}[{k}]" for k in inputs),
                        "--outdir", os.path.join(tmp, "out"))
        out_dir = os.path.join(tmp, "out")
        # String outputs (labels) are object arrays; these files are the ones
        # saved_model_cli just wrote into our own temporary directory.
        return {name[:-4]: np.load(os.path.join(out_dir, name), allow_pickle=True)
                for name in sorted(os.listdir(out_dir)) if name.endswith(".npy")}
