"""Serving: raw text to output through our SavedModel vs transformers' pipeline (PyTorch CPU).

    .venv/bin/python benchmarks/bench_serving.py [--calls 300] [--repeats 3]

Two models, each with the same weights on both sides:
- a bert_tiny sentiment classifier (fine-tuned briefly on Rotten Tomatoes by
  model.finetune, exported by model.export, and by model.export --format hf for
  the peer's "text-classification" pipeline);
- all-MiniLM-L6-v2 imported by model.import_checkpoint and exported as an
  encoder; the peer is the "feature-extraction" pipeline on the original files.
Latency: one review per call (batch 1), p50 and p99 over --calls calls. Throughput:
batches of 32 reviews. Texts: the Rotten Tomatoes dev split. Ours runs in a
process that imports only tensorflow and tensorflow_text; the peer in .venv-bench.
Each side is its own process, ours and the peer's alternated --repeats times;
medians over repeats. Ours is measured three times: with TensorFlow's defaults,
exported with --jit_compile (the model XLA-compiled, raw-text batches padded to
a multiple of 16 tokens; each new batch shape compiles once, in the warm-up
here), and with TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's plain Eigen kernels instead of
oneDNN's, whose per-op set-up dominates a 2-layer model at batch 1).
Writes benchmarks/results/serving.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")

# The timing loop, for either side: run(list_of_texts) -> outputs.
TIMING = r'''
import json, sys, time
def measure(run, texts, calls):
    # Warm-up, the same for every side: each request once (a server in its steady
    # state; an XLA-compiled model compiles each new batch shape on first sight).
    batches = [texts[i:i + 32] for i in range(0, min(len(texts), 32 * 20), 32)]
    for i in range(calls):
        run([texts[i % len(texts)]])
    for b in batches:
        run(b)
    lat = []
    for i in range(calls):
        t0 = time.perf_counter(); run([texts[i % len(texts)]]); lat.append(time.perf_counter() - t0)
    lat.sort()
    t0 = time.perf_counter()
    for b in batches:
        run(b)
    seconds = time.perf_counter() - t0
    return {"p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[int(len(lat) * 0.99) - 1],
            "batch32_per_s": sum(len(b) for b in batches) / seconds}
'''

OURS = TIMING + r'''
import tensorflow as tf, tensorflow_text  # noqa
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
texts = json.load(open(sys.argv[2]))
pair = "text_b" in fn.structured_input_signature[1]  # encoders take an optional second text
call = (lambda b: fn(text=tf.constant(b), text_b=tf.constant([""] * len(b)))) if pair else \
    (lambda b: fn(text=tf.constant(b)))
print(json.dumps(measure(call, texts, int(sys.argv[3]))))
'''

PEER = TIMING + r'''
import torch, transformers
torch.set_grad_enabled(False)
task, model_dir = sys.argv[4], sys.argv[1]
pipe = transformers.pipeline(task, model=model_dir, tokenizer=model_dir, device=-1)
texts = json.load(open(sys.argv[2]))
kw = {"truncation": True, "max_length": 128} if task == "text-classification" else \
    {"tokenize_kwargs": {"truncation": True, "max_length": 128}}
print(json.dumps(measure(lambda b: pipe(b, batch_size=len(b), **kw), texts, int(sys.argv[3]))))
'''


def sh(*args, env=None, **kw):
    return subprocess.run(list(map(str, args)), check=True, cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, **(env or {})), **kw)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bench_python = os.path.join(ROOT, ".venv-bench", "bin", "python")
    rt = os.path.join(DATA, "rotten_tomatoes")
    with open(os.path.join(rt, "dev.tsv"), encoding="utf-8") as f:
        texts = [line.split("\t")[0] for line in f.read().splitlines()[1:]]
    results = {"load_average_at_start": os.getloadavg(), "calls": args.calls,
               "repeats": args.repeats, "models": {}}
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "texts.json"), "w") as f:
            json.dump(texts, f)
        # The bert_tiny classifier (briefly trained: only its speed matters here).
        sh(sys.executable, "-m", "model.finetune", "--task", "sst2", "--init_checkpoint", "none",
           "--vocab_file", os.path.join(DATA, "vocab", "uncased_vocab.txt"), "--train_file",
           f"{rt}/train.tsv", "--eval_file", f"{rt}/dev.tsv", "--output_dir",
           f"{work}/tiny_rt", "--num_train_epochs", "0.2", "--max_seq_length", "128")
        for xla in (False, True):
            sh(sys.executable, "-m", "model.export", "--model_dir", f"{work}/tiny_rt",
               "--export_dir", f"{work}/export_tiny{'_xla' if xla else ''}",
               *(["--jit_compile"] if xla else []))
        # The same classifier as transformers loads it: the product's --format hf.
        sh(sys.executable, "-m", "model.export", "--model_dir", f"{work}/tiny_rt",
           "--export_dir", f"{work}/hf_tiny", "--format", "hf")
        sh(sys.executable, "-m", "model.import_checkpoint", "--format", "hf", "--checkpoint_dir",
           os.path.join(DATA, "minilm"), "--output_dir", f"{work}/minilm")
        for xla in (False, True):
            sh(sys.executable, "-m", "model.export", "--model_dir", f"{work}/minilm",
               "--export_dir", f"{work}/export_minilm{'_xla' if xla else ''}",
               *(["--jit_compile"] if xla else []))
        setups = {
            "bert_tiny classifier": (f"{work}/export_tiny/tiny_rt/1", f"{work}/hf_tiny",
                                     "text-classification"),
            "all-MiniLM-L6-v2 encoder": (f"{work}/export_minilm/minilm/1",
                                         os.path.join(DATA, "minilm"), "feature-extraction")}
        for name, (saved, hf_dir, task) in setups.items():
            saved_xla = saved.replace("/export_tiny/", "/export_tiny_xla/").replace(
                "/export_minilm/", "/export_minilm_xla/")
            runs = {"ours": [], "ours_xla": [], "ours_onednn_off": [], "peer": []}
            for _ in range(args.repeats):
                out = sh(sys.executable, "-c", OURS, saved, f"{work}/texts.json", args.calls)
                runs["ours"].append(json.loads(out.stdout.strip().splitlines()[-1]))
                out = sh(sys.executable, "-c", OURS, saved_xla, f"{work}/texts.json", args.calls)
                runs["ours_xla"].append(json.loads(out.stdout.strip().splitlines()[-1]))
                out = sh(sys.executable, "-c", OURS, saved, f"{work}/texts.json", args.calls,
                         env={"TF_ENABLE_ONEDNN_OPTS": "0"})
                runs["ours_onednn_off"].append(json.loads(out.stdout.strip().splitlines()[-1]))
                out = sh(bench_python, "-c", PEER, hf_dir, f"{work}/texts.json", args.calls, task)
                runs["peer"].append(json.loads(out.stdout.strip().splitlines()[-1]))
            med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                   for side, rs in runs.items()}
            for side in ("ours", "ours_xla", "ours_onednn_off"):
                med[side]["throughput_ratio"] = (med[side]["batch32_per_s"]
                                                 / med["peer"]["batch32_per_s"])
                med[side]["p50_ratio_over_peer"] = med[side]["p50_ms"] / med["peer"]["p50_ms"]
            med["runs"] = runs
            results["models"][name] = med
            p = med["peer"]
            print(f"{name}: peer p50 {p['p50_ms']:.2f} ms p99 {p['p99_ms']:.2f} ms, "
                  f"{p['batch32_per_s']:.0f}/s", flush=True)
            for side in ("ours", "ours_xla", "ours_onednn_off"):
                o = med[side]
                print(f"  {side}: p50 {o['p50_ms']:.2f} ms p99 {o['p99_ms']:.2f} ms, "
                      f"{o['batch32_per_s']:.0f}/s; throughput x{o['throughput_ratio']:.2f}, "
                      f"p50 x{o['p50_ratio_over_peer']:.2f}", flush=True)
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "serving.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
