"""Our models as transformers and keras-hub users get them (--format hf / keras_hub),
against ours, on real sentences: token ids and the largest output differences.

    .venv/bin/python benchmarks/check_publish.py --model_dir M [--model_dir M2]
        [--sentences 200] [--length 64]

For each model directory: export both formats into a temporary directory, run
transformers' Auto classes and AutoTokenizer on the export in .venv-bench
(benchmarks/peer_hf_publish.py) and keras-hub's from_preset in this process, on the
first N reviews of data/rotten_tomatoes/dev.tsv; compare with our Keras model fed the
ids of our in-graph tokenizer (what the SavedModel runs). Prints one JSON line per model.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def check(model_dir: str, texts, length: int, bench_python: str, work: str) -> dict:
    import keras_hub
    import tensorflow as tf

    from model.export.writer import publish
    from model.networks.model_dir import open_model_dir
    from model.networks.preprocessing import BertTextPreprocessor
    from model.tasks import load_model

    md = open_model_dir(model_dir)
    model, _, _ = load_model(md)
    pre = BertTextPreprocessor(md.vocab_file, md.do_lower_case, length)
    ids = {k: np.asarray(v) for k, v in pre.pack(pre.tokenize(tf.constant(texts)), None,
                                                  length).items()}
    out = {"model_dir": model_dir, "kind": md.kind, "sentences": len(texts)}
    hf_dir, kh_dir = os.path.join(work, "hf"), os.path.join(work, "kh")
    out["hf"] = publish(model_dir, hf_dir, "hf")["class"]
    with open(os.path.join(work, "in.json"), "w") as f:
        json.dump({"texts": texts, "text_b": None, "choices": 0, "length": length}, f)
    subprocess.run([bench_python, os.path.join(ROOT, "benchmarks", "peer_hf_publish.py"),
                    hf_dir, os.path.join(work, "in.json"), os.path.join(work, "out.npz")],
                   check=True, capture_output=True)
    theirs = dict(np.load(os.path.join(work, "out.npz")))
    out["hf_token_ids_equal"] = f"{int((theirs['input_ids'] == ids['input_ids']).all(1).sum())}"\
                                f"/{len(texts)}"
    if md.kind == "pretrainer":
        positions = np.tile(np.arange(1, 11, dtype=np.int32), (len(texts), 1))
        mine = model(dict(ids, masked_lm_positions=positions))
        hf_mlm = np.take_along_axis(theirs["prediction_logits"], positions[..., None], 1)
        out["hf_max_abs_diff"] = {
            "mlm_logits": float(np.abs(hf_mlm - mine["mlm_logits"]).max()),
            "mlm_probabilities": float(np.abs(softmax(hf_mlm) - softmax(
                np.asarray(mine["mlm_logits"]))).max())}
        if "nsp_logits" in mine:
            out["hf_max_abs_diff"]["nsp_logits"] = float(np.abs(
                theirs["seq_relationship_logits"] - mine["nsp_logits"]).max())
    else:
        mine = model(ids)
        out["hf_max_abs_diff"] = {"probabilities": float(np.abs(
            softmax(theirs["logits"]) - softmax(np.asarray(mine["logits"]))).max())}
    try:
        info = publish(model_dir, kh_dir, "keras_hub")
    except Exception as e:  # noqa: BLE001  (a refusal is a result here)
        out["keras_hub"] = f"refused: {e}"
        return out
    out["keras_hub"] = info["class"]
    inputs = {"token_ids": ids["input_ids"], "segment_ids": ids["segment_ids"],
              "padding_mask": ids["input_mask"]}
    cls = getattr(keras_hub.models, info["class"])
    loaded = cls.from_preset(kh_dir, preprocessor=None)
    if md.kind == "pretrainer":
        kh = np.asarray(loaded(dict(inputs, mask_positions=positions)))
        out["keras_hub_max_abs_diff"] = {
            "mlm_logits": float(np.abs(kh - mine["mlm_logits"]).max()),
            "mlm_probabilities": float(np.abs(softmax(kh) - softmax(
                np.asarray(mine["mlm_logits"]))).max())}
    else:
        kh = np.asarray(loaded(inputs))
        out["keras_hub_max_abs_diff"] = {"probabilities": float(np.abs(
            softmax(kh) - softmax(np.asarray(mine["logits"]))).max())}
    tokenizer = keras_hub.models.BertTokenizer.from_preset(kh_dir)
    same = 0
    for n, text in enumerate(texts):
        real = ids["input_ids"][n][1:int(ids["input_mask"][n].sum()) - 1].tolist()
        same += np.asarray(tokenizer(text)).tolist()[:length - 2] == real
    out["keras_hub_tokenizer_ids_equal"] = f"{same}/{len(texts)}"
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_dir", action="append", required=True)
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--bench_python",
                        default=os.path.join(ROOT, ".venv-bench", "bin", "python"))
    args = parser.parse_args()
    with open(os.path.join(ROOT, "data", "rotten_tomatoes", "dev.tsv"), encoding="utf-8") as f:
        texts = [line.split("\t")[0] for line in f.read().splitlines()[1:]][:args.sentences]
    for model_dir in args.model_dir:
        with tempfile.TemporaryDirectory() as work:
            print(json.dumps(check(model_dir, texts, args.length, args.bench_python, work)),
                  flush=True)


if __name__ == "__main__":
    main()
