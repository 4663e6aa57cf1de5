r"""Predictions from an exported SavedModel, through its raw-text signature.

    python -m model.predict --saved_model runs/demo/export/bert_tiny/1 "Paris is the [MASK] of France."
    python -m model.predict --saved_model EXPORT/classifier/1 --input_file reviews.txt --format json

One example per line in --input_file (a tab separates text and text_b for pair
models, and the question from each candidate for multiple choice); on the
command line, the same fields as arguments. Batched (--batch_size). Prints,
per example: masked-token predictions (pretrained model), the label and its
probability (classifier), the score (regression), token labels (NER), the
answer span (QA), the chosen candidate (multiple choice), or the pooled
embedding's first values (encoder). Needs tensorflow and tensorflow_text only.
"""

import json
import sys
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np
from absl import app, flags

from model.tasks.textfiles import INVALID_UTF8, read_text
import tfrecords.cli


class PredictError(Exception):
    """Bad input to predict; the message names the file or argument."""


def load(saved_model: str):
    """The serving_default function of an export (tensorflow_text ops registered)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the tokenizer's ops

    try:
        loaded = tf.saved_model.load(saved_model)
    except (OSError, ValueError) as e:
        raise PredictError(f"{saved_model}: not a SavedModel ({str(e).splitlines()[0]})") from None
    if "serving_default" not in loaded.signatures:
        raise PredictError(f"{saved_model} has no serving_default signature (a *_token_ids "
                           "export takes ids, not text)")
    fn = loaded.signatures["serving_default"]
    return loaded, fn


def predict(fn, examples: Sequence[Sequence[str]], batch_size: int = 32) -> Iterator[dict]:
    """Runs serving_default over examples of text fields; yields one dict per example.

    The first field is `text`; the next is `text_b` for pair models, or all the
    rest form a list input (multiple choice's `choices`: [B, N] strings).
    """
    import tensorflow as tf

    specs = fn.structured_input_signature[1]
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        inputs = {"text": tf.constant([e[0] for e in chunk])}
        for name, spec in specs.items():
            if name == "text":
                continue
            if spec.shape.rank == 2:
                rows = [list(e[1:]) for e in chunk]
                if len({len(r) for r in rows}) != 1 or not rows[0]:
                    raise PredictError(f"the model takes {name!r}: give every example the same "
                                       "number of them after its text (tab-separated)")
                inputs[name] = tf.constant(rows)
            else:
                inputs[name] = tf.constant([e[1] if len(e) > 1 else "" for e in chunk])
        out = {k: v.numpy() for k, v in fn(**inputs).items()}
        for i in range(len(chunk)):
            yield {k: v[i] for k, v in out.items()}


def describe(row: Dict[str, np.ndarray]) -> dict:
    """A JSON-able summary of one example's outputs."""
    if "top_k_tokens" in row:
        masks = []
        for p in range(len(row["masked_lm_positions"])):
            if not row["masked_lm_valid"][p]:
                continue
            masks.append({"position": int(row["masked_lm_positions"][p]),
                          "predictions": [[t.decode("utf-8", "replace"), round(float(q), 4)]
                                          for t, q in zip(row["top_k_tokens"][p],
                                                          row["top_k_probabilities"][p])]})
        out = {"masked": masks}
        if "nsp_probabilities" in row:
            out["is_random_next"] = round(float(row["nsp_probabilities"][1]), 4)
        return out
    if "label" in row and "probabilities" in row:
        return {"label": row["label"].decode("utf-8"),
                "probability": round(float(np.max(row["probabilities"])), 4)}
    if "choice_id" in row:
        return {"choice": int(row["choice_id"]),
                "probability": round(float(np.max(row["probabilities"])), 4)}
    if "score" in row:
        return {"score": round(float(row["score"]), 4)}
    if "token_labels" in row:
        n = int(row["num_words"])
        return {"labels": [t.decode("utf-8") for t in row["token_labels"][:n]]}
    if "answer" in row:
        return {"answer": row["answer"].decode("utf-8", "replace"),
                "score": round(float(row["answer_score"]), 4)}
    if "pooled_output" in row:
        return {"pooled_output[:4]": [round(float(v), 4) for v in row["pooled_output"][:4]]}
    return {k: v.tolist() for k, v in row.items()}


def _read_examples(path: str) -> List[Tuple[str, ...]]:
    try:
        text, bad = read_text(path)
    except OSError as e:
        raise PredictError(f"--input_file {path}: {e.strerror}") from None
    if bad:
        print(f"warning: --input_file {path}: {bad} {INVALID_UTF8}", file=sys.stderr)
    return [tuple(line.rstrip("\r").split("\t")) for line in text.split("\n") if line.strip()]


FLAGS = flags.FLAGS


def define_flags():
    """The command's flags (defined only when it runs as a command, so that tests and
    other modules can import this one beside other commands)."""
    flags.DEFINE_string("saved_model", None, "An exported serving model: EXPORT_DIR/<name>/<version>.")
    flags.DEFINE_string("input_file", "", "One example per line (text<TAB>text_b for pairs, "
                        "question<TAB>choice<TAB>choice... for multiple choice).")
    flags.DEFINE_integer("batch_size", 32, "Examples per call (a pretrainer's raw-text "
                         "signature takes at most 1,024).", lower_bound=1, upper_bound=1024)
    flags.DEFINE_enum("format", "text", ["text", "json"], "text: readable lines; json: JSON lines.")


def main(argv):
    args = argv[1:]
    try:
        if FLAGS.input_file and args:
            raise PredictError("give texts as arguments or --input_file, not both")
        if FLAGS.input_file:
            examples = _read_examples(FLAGS.input_file)
        elif args:
            examples = [tuple(args)]
        else:
            raise PredictError("no input: pass \"text\" [\"text b\" | choices...] or "
                               "--input_file")
        _, fn = load(FLAGS.saved_model)
        for fields, row in zip(examples, predict(fn, examples, FLAGS.batch_size)):
            a, rest = fields[0], [f for f in fields[1:] if f]
            result = describe(row)
            if FLAGS.format == "json":
                more = {"text_b": rest[0]} if len(rest) == 1 else (
                    {"choices": rest} if rest else {})
                print(json.dumps(dict(text=a, **more, **result), ensure_ascii=False))
            else:
                print("  ||  ".join([a, *rest]))
                for k, v in result.items():
                    print(f"  {k}: {v}")
    except PredictError as e:
        sys.exit(f"predict: {e}")


def entry_point():
    define_flags()
    flags.mark_flags_as_required(["saved_model"])
    app.run(main, flags_parser=tfrecords.cli.flags_parser("predict"))


if __name__ == "__main__":
    entry_point()
