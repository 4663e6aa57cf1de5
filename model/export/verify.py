"""The export's verification: every SavedModel run as its clients run it, against Keras.

In a fresh process importing only tensorflow and tensorflow_text
(model/export/checks.py), TF Serving's graph-mode session loader runs every
signature of the four SavedModels, tf.saved_model.load runs the raw-text
signature and the TF Hub encoder, and `saved_model_cli run` runs the
token_ids model from an input file. What each output must be comes from the
task (model/tasks/): its outputs on token ids, and on raw text.
"""

import sys

import numpy as np
import tensorflow as tf

from model.export.checks import run_clients, saved_model_cli, saved_model_cli_run
from model.export.hub import HubEncoder, hub_inputs

TOLERANCE = 1e-5
CHECK_TEXTS = [("The capital of France is [MASK].", ""),
               ("a gripping , funny and moving film", "it was [MASK] bad ."),
               ("", ""), ("Ünïcödé 中文 😀 \x07 text " * 40, "second segment")]


class ExportError(Exception):
    """An export that cannot be made or does not verify; the message says which."""


def _expected(serving, hub_encoder: HubEncoder, text_inputs: dict):
    """The Keras model's outputs on the check texts, keyed as verify_export's calls."""
    task, pre = serving.task, serving.preprocessor
    ids = task.check_ids(serving, text_inputs)
    id_out = {k: v.numpy() for k, v in serving.keras_outputs(
        {k: tf.constant(v) for k, v in ids.items()}).items()}
    expected = {"ids/" + k: v for k, v in id_out.items()}
    expected.update({"ids_only/" + k: v for k, v in id_out.items()})
    text_expected, text_mask = task.expected_text(serving, text_inputs, ids, id_out)
    expected.update({"text/" + k: v for k, v in text_expected.items()})
    # The TF Hub encoder and preprocessor: every task's model has the same ones.
    text = tf.constant([a for a, _ in CHECK_TEXTS])
    text_b = tf.constant([b for _, b in CHECK_TEXTS])
    single = {k: v.numpy() for k, v in pre.pack(pre.tokenize(text)).items()}
    pair = {k: v.numpy() for k, v in pre.pack(pre.tokenize(text), pre.tokenize(text_b)).items()}
    enc_in = hub_inputs(pair)
    enc = hub_encoder.keras_outputs(enc_in)
    expected["enc/sequence_output"] = enc["sequence_output"].numpy()
    expected["enc/pooled_output"] = expected["enc/default"] = enc["pooled_output"].numpy()
    for i, layer in enumerate(enc["encoder_outputs"]):
        expected[f"enc/encoder_outputs_{i}"] = layer.numpy()
    for key, packed in (("pre", single), ("pair", pair)):
        expected.update({f"{key}/{k}": v for k, v in hub_inputs(packed).items()})
    masks = {"text": text_mask, "ids": ids["input_mask"] > 0, "other": pair["input_mask"] > 0}
    return expected, ids, enc_in, masks


def _compare(expected: dict, got: dict, mask: np.ndarray) -> float:
    """Largest difference of one output (per-token outputs at real tokens only)."""
    v, g = expected, got
    per_token = v.ndim >= 2 and v.shape[:2] == mask.shape
    if per_token and g.shape[1] < v.shape[1]:  # the text path trims padding
        width = g.shape[1]
        if mask[:, width:].any():
            return float("inf")
        v, mask = v[:, :width], mask[:, :width]
    if g.shape != v.shape:
        return float("inf")
    if v.dtype.kind in "iubOS":  # ids, labels: equal or not (at real tokens)
        a = g.astype("S") if v.dtype.kind in "OS" else g
        b = v.astype("S") if v.dtype.kind in "OS" else v
        same = np.array_equal(a[mask], b[mask]) if per_token else np.array_equal(a, b)
        return 0.0 if same else float("inf")
    delta = np.abs(g.astype(np.float64) - v)
    if per_token:
        delta = delta * mask.reshape(mask.shape + (1,) * (v.ndim - 2))
    return float(np.max(delta)) if v.size else 0.0


def verify_export(serving, hub_encoder: HubEncoder, paths: dict) -> dict:
    """Runs every SavedModel as its clients do, in a fresh process, against the Keras model.

    TF Serving's session loader runs every signature of the four SavedModels;
    tf.saved_model.load runs the raw-text signature (model.predict's path) and
    the TF-Hub encoder's `__call__`; `saved_model_cli run` runs the
    token_ids-only model from an input file. Each output must match the Keras
    model within TOLERANCE (ids and labels exactly).
    """
    text = [a for a, _ in CHECK_TEXTS]
    text_b = [b for _, b in CHECK_TEXTS]
    text_inputs = serving.task.check_inputs(CHECK_TEXTS)
    expected, ids_inputs, enc_in, masks = _expected(serving, hub_encoder, text_inputs)
    ids_lists = {k: v.tolist() for k, v in ids_inputs.items()}
    enc_lists = {k: v.tolist() for k, v in enc_in.items()}
    session = [("text", paths["serving"], "serving_default", text_inputs),
               ("ids", paths["serving"], "token_ids", ids_lists),
               ("ids_only", paths["token_ids_only"], "token_ids", ids_lists),
               ("pre", paths["preprocessor"], "serving_default", {"text": text}),
               ("pair", paths["preprocessor"], "pair", {"text": text, "text_b": text_b}),
               ("enc", paths["encoder"], "serving_default", enc_lists)]
    tf2 = [("text", paths["serving"], "serving_default", text_inputs),
           ("enc", paths["encoder"], "__call__", enc_lists)]
    report = run_clients(list(paths.values()), session, tf2)
    for path, names in report["signatures"].items():
        if names != report["signatures_run"][path]:
            raise ExportError(f"{path} has signatures {names}; the check ran only "
                              f"{report['signatures_run'][path]}")
    got = report["outputs"]
    cli = saved_model_cli_run(paths["token_ids_only"], "token_ids",
                              {k: v.astype(np.int32) for k, v in ids_inputs.items()})
    got.update({f"cli:ids_only/{k}": v for k, v in cli.items()})

    diffs = {}
    for k, v in expected.items():
        mask = masks[k.split("/")[0] if k.split("/")[0] in masks else "other"]
        clients = [c for c in ("session", "tf2", "cli") if f"{c}:{k}" in got]
        if "session" not in clients:
            raise ExportError(f"the session loader's run has no output {k}")
        for c in clients:
            diffs[f"{c}:{k}"] = _compare(v, got[f"{c}:{k}"], mask)
    worst = max(diffs, key=diffs.get)
    if diffs[worst] > TOLERANCE:
        raise ExportError(f"a client's output differs from the Keras model: {worst} by "
                          f"{diffs[worst]:.2e} (> {TOLERANCE})")
    hub = report.get("hub_variables", {})
    if not hub.get("trainable_variables"):
        raise ExportError(f"{paths['encoder']}: tf.saved_model.load finds no trainable_variables")
    show = saved_model_cli("show", "--dir", paths["serving"], "--all")
    missing = [s for s in ("serving_default", "token_ids") if f"signature_def['{s}']" not in show]
    if missing:
        raise ExportError(f"saved_model_cli show --all does not list {missing}")
    text_ops = sorted(set(report["ops"][paths["serving"]]))
    result = {"max_abs_diff": diffs[worst], "worst_output": worst, "tolerance": TOLERANCE,
              "outputs_compared": len(diffs), "ids_equal": True,
              "clients": ["session loader (TF Serving's path): every signature",
                          "tf.saved_model.load: serving_default, encoder __call__",
                          "saved_model_cli run --inputs: token_ids-only model"],
              "session_signatures_run": {k: report["signatures_run"][p]
                                         for k, p in paths.items()},
              "hub_encoder": hub, "tf_text_ops_needed": text_ops,
              "token_ids_only_ops_outside_core": report["ops"][paths["token_ids_only"]],
              "modules_imported_by_checker": report["modules"],
              "saved_model_cli_signatures": ["serving_default", "token_ids"]}
    print(f"Verified in a fresh process: TF Serving's session loader ran every signature, "
          f"tf.saved_model.load the raw-text signature and the TF-Hub encoder "
          f"({hub['trainable_variables']} trainable variables), saved_model_cli run the "
          f"token_ids model; max abs diff {diffs[worst]:.1e} over {len(diffs)} outputs "
          f"({worst}); raw-text model needs tf-text ops {text_ops}", file=sys.stderr, flush=True)
    return result
