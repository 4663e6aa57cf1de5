"""Our Beam pipeline against the peer generator, side by side in one run.

    .venv/bin/python benchmarks/bench_pipeline.py [--repeats 3] [--scales 1,8]

The corpus at scale S: the Wikipedia lead sections of DATA.md repeated S
times (10,033 short documents per copy, 4.9 MB) and the 38 plays once, as
books (long documents, 4.9 MB): 9.8 MB at 1x, 44 MB at 8x. The peer,
tf-models-official's create_pretraining_data.py (one process, the whole
corpus in memory), reads google-research's format only, so it gets the
same text as one sentence-per-line file: the leads split with blingfire, a
blank line between documents, and each play as one document, split as our
books reader splits it (the peer's share of that preparation is not timed).
Ours reads the leads file as `sentences` and the plays as `books`
(DirectRunner, multi-processing on every core). Both with the real uncased
vocab, --max_seq_length 128 --max_predictions_per_seq 20 --dupe_factor 5.
Reports instances/s, wall time and the peak RSS of the whole process tree
(sampled every 50 ms), medians over --repeats (the two tools interleaved),
and our memory at the largest scale over the smallest. Writes
benchmarks/results/pipeline.json.
"""

import argparse
import glob
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
    """The lead sections, sentence per line, repeated `scale` times (one file)."""
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


def plays_as_sentences(out_dir: str) -> str:
    """The plays in the peer's format: one document per play, its paragraphs split into
    sentences exactly as our books reader and splitter do."""
    from pipeline import readers
    from pipeline.text import split_sentences

    path = os.path.join(out_dir, "plays_sentences.txt")
    docs = []
    for play in sorted(glob.glob(os.path.join(DATA, "plays", "*.txt"))):
        with open(play, "rb") as f:
            for doc in readers.read_documents(play, f, "books", lambda reason: None):
                docs.append("\n".join(split_sentences(doc.units)))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(docs) + "\n")
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


def peer(corpus, plays, out_dir):
    out = os.path.join(out_dir, "peer.tfrecord")
    wall, rss, text = run_measured([
        sys.executable, "-m", "official.nlp.data.create_pretraining_data",
        f"--input_file={corpus},{plays}", f"--output_file={out}", f"--vocab_file={VOCAB}",
        "--do_lower_case", *GEN_FLAGS])
    instances = int(re.search(r"Wrote (\d+) total instances", text).group(1))
    return wall, rss, instances


def ours(corpus, out_dir):
    out = os.path.join(out_dir, "ours")
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, text = run_measured([
        sys.executable, "-m", "pipeline.create_pretraining_data",
        f"--input_file={corpus},books:{os.path.join(DATA, 'plays', '*.txt')}",
        "--input_format=sentences", f"--vocab_file={VOCAB}", f"--output_dir={out}",
        "--num_shards=16", *GEN_FLAGS])
    with open(os.path.join(out, "stats.json")) as f:
        instances = json.load(f)["instances"]
    return wall, rss, instances


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scales", default="1,8")
    args = parser.parse_args()
    if not os.path.exists(VOCAB):
        sys.exit("run `make data` first")
    work = tempfile.mkdtemp(prefix="bench_pipeline_")
    results = {"load_average_at_start": os.getloadavg(), "cpus": os.cpu_count(), "scales": {}}
    plays = plays_as_sentences(work)
    for scale in [int(s) for s in args.scales.split(",")]:
        corpus = make_corpus(scale, work)
        rows = {"peer": [], "ours": []}
        for _ in range(args.repeats):  # interleaved, so noise hits both alike
            rows["peer"].append(peer(corpus, plays, work))
            rows["ours"].append(ours(corpus, work))
        summary = {"corpus_mb": (os.path.getsize(corpus) + sum(
            os.path.getsize(p) for p in glob.glob(os.path.join(DATA, "plays", "*.txt")))) / 1e6}
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
        print(f"\ncorpus x{scale}: {summary['corpus_mb']:.1f} MB")
        print(f"{'':6s} {'instances':>10s} {'wall s':>8s} {'inst/s':>9s} {'peak RSS MB':>12s}")
        for name in ("peer", "ours"):
            r = summary[name]
            print(f"{name:6s} {r['instances']:10,d} {r['wall_s']:8.1f} {r['instances_per_s']:9,.0f} "
                  f"{r['peak_rss_mb']:12.0f}")
        print(f"ours/peer: {summary['speedup']:.2f}x instances/s, {summary['rss_ratio']:.2f}x memory")
    scales = results["scales"]
    if len(scales) > 1:
        low, high = min(scales), max(scales)
        growth = scales[high]["ours"]["peak_rss_mb"] / scales[low]["ours"]["peak_rss_mb"]
        results["ours_rss_growth"] = {"from": low, "to": high, "ratio": growth}
        peer_growth = scales[high]["peer"]["peak_rss_mb"] / scales[low]["peer"]["peak_rss_mb"]
        print(f"\npeak memory at x{high} / at x{low}: ours {growth:.2f}, peer {peer_growth:.2f}")
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "pipeline.json"), "w") as f:
        json.dump(results, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
