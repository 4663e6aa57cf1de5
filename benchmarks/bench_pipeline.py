"""Our Beam pipeline against the peer generator, side by side in one run.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeats 3] [--scales 1,4]

The Wikipedia lead sections of DATA.md as sentence-per-line text (split
with blingfire, a blank line between documents), the real uncased vocab,
--max_seq_length 128 --max_predictions_per_seq 20 --dupe_factor 5, through
tf-models-official's create_pretraining_data.py (the peer: one process,
whole corpus in memory) and through ours (DirectRunner, multi-processing on
every core); then the same with the corpus repeated 4 times. Reports
instances/s, wall time and the peak RSS of the whole process tree (sampled
every 50 ms), medians over --repeats, and the tokenizer's raw throughput as
the floor. Writes benchmarks/results/pipeline.json.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(ROOT, "data")
VOCAB = os.path.join(DATA, "vocab", "uncased_vocab.txt")
GEN_FLAGS = ["--max_seq_length=128", "--max_predictions_per_seq=20", "--dupe_factor=5",
             "--random_seed=12345"]


def make_corpus(scale: int, out_dir: str) -> str:
    from pipeline.text import split_sentences

    path = os.path.join(out_dir, f"leads_x{scale}.txt")
    docs = []
    with open(os.path.join(DATA, "wiki_leads", "leads.jsonl"), encoding="utf-8") as f:
        for line in f:
            sentences = split_sentences(json.loads(line)["text"].split("\n"))
            if sentences:
                docs.append("\n".join(sentences))
    text = "\n\n".join(docs) + "\n"
    with open(path, "w", encoding="utf-8") as f:
        for copy in range(scale):
            f.write(text + ("\n" if copy < scale - 1 else ""))
    return path


def run_measured(cmd, cwd=ROOT):
    """Runs cmd; returns (wall seconds, peak RSS of the process tree in MB, output)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(proc.pid)
    peak = 0
    output = []
    import threading

    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    while proc.poll() is None:
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    reader.join()
    wall = time.time() - start
    text = "".join(output)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed:\n{text[-3000:]}")
    return wall, peak / 2**20, text


def peer(corpus, out_dir):
    out = os.path.join(out_dir, "peer.tfrecord")
    wall, rss, text = run_measured([
        sys.executable, "-m", "official.nlp.data.create_pretraining_data",
        f"--input_file={corpus}", f"--output_file={out}", f"--vocab_file={VOCAB}",
        "--do_lower_case", *GEN_FLAGS])
    instances = int(re.search(r"Wrote (\d+) total instances", text).group(1))
    return wall, rss, instances


def ours(corpus, out_dir):
    out = os.path.join(out_dir, "ours")
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, text = run_measured([
        sys.executable, "-m", "pipeline.create_pretraining_data", f"--input_file={corpus}",
        "--input_format=sentences", f"--vocab_file={VOCAB}", f"--output_dir={out}",
        "--num_shards=16", *GEN_FLAGS])
    with open(os.path.join(out, "stats.json")) as f:
        instances = json.load(f)["instances"]
    return wall, rss, instances


def tokenizer_floor(corpus):
    from pipeline.tokenization import BertTokenizer, load_vocab

    tok = BertTokenizer(load_vocab(VOCAB))
    lines = [l for l in open(corpus, encoding="utf-8").read().splitlines() if l]
    start = time.time()
    tokens = sum(len(ids) for ids in tok.tokenize_batch(lines))
    return tokens / (time.time() - start), tokens


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scales", default="1,4")
    args = parser.parse_args()
    if not os.path.exists(VOCAB):
        sys.exit("run `make data` first")
    work = tempfile.mkdtemp(prefix="bench_pipeline_")
    results = {"load_average_at_start": os.getloadavg(), "cpus": os.cpu_count(), "scales": {}}
    for scale in [int(s) for s in args.scales.split(",")]:
        corpus = make_corpus(scale, work)
        rows = {"peer": [], "ours": []}
        for _ in range(args.repeats):  # interleaved, so noise hits both alike
            rows["peer"].append(peer(corpus, work))
            rows["ours"].append(ours(corpus, work))
        tps, tokens = tokenizer_floor(corpus)
        summary = {"corpus_mb": os.path.getsize(corpus) / 1e6, "tokens": tokens,
                   "tokenizer_tokens_per_s": tps}
        for name, runs in rows.items():
            summary[name] = {
                "instances": runs[0][2],
                "wall_s": statistics.median(r[0] for r in runs),
                "instances_per_s": statistics.median(r[2] / r[0] for r in runs),
                "peak_rss_mb": statistics.median(r[1] for r in runs),
                "runs": runs,
            }
        summary["speedup"] = summary["ours"]["instances_per_s"] / summary["peer"]["instances_per_s"]
        summary["rss_ratio"] = summary["ours"]["peak_rss_mb"] / summary["peer"]["peak_rss_mb"]
        results["scales"][scale] = summary
        print(f"\ncorpus x{scale}: {summary['corpus_mb']:.1f} MB, {tokens:,} tokens; tokenizer "
              f"floor {tps / 1e6:.2f}M tokens/s")
        print(f"{'':6s} {'instances':>10s} {'wall s':>8s} {'inst/s':>9s} {'peak RSS MB':>12s}")
        for name in ("peer", "ours"):
            r = summary[name]
            print(f"{name:6s} {r['instances']:10,d} {r['wall_s']:8.1f} {r['instances_per_s']:9,.0f} "
                  f"{r['peak_rss_mb']:12.0f}")
        print(f"ours/peer: {summary['speedup']:.2f}x instances/s, {summary['rss_ratio']:.2f}x memory")
    scales = results["scales"]
    if 1 in scales and 4 in scales:
        growth = scales[4]["ours"]["peak_rss_mb"] / scales[1]["ours"]["peak_rss_mb"]
        results["ours_rss_growth_4x"] = growth
        print(f"\nour peak memory at 4x corpus / at 1x: {growth:.2f}")
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "pipeline.json"), "w") as f:
        json.dump(results, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
