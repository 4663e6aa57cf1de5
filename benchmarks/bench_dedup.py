"""Dedup quality on a synthetic corpus built from real text, and its cost on the demo corpus.

    .venv/bin/python benchmarks/bench_dedup.py quality [--originals 3000 --near 1500]
    .venv/bin/python benchmarks/bench_dedup.py cost [--repeats 3] [--scales 1,8]

quality: the Wikipedia lead sections of DATA.md (real text); the first
--originals are kept as they are, --exact of them copied verbatim, --near of
them copied with a known fraction of their words edited (insertions,
deletions and substitutions, from 0.3% to 8%; substitutes are words of the
corpus). The true word-5-gram Jaccard of each near pair is computed exactly,
with the normalization the dedup uses. `python -m pipeline.clean_corpus`
(the command, default settings) cleans the mix; each kept document is mapped
back to its source by the digest of its words. Reported: exact copies
removed; near pairs resolved to one kept member, by true Jaccard; distinct
documents lost (originals without planted copies that were removed: real
near duplicates among the leads, or false positives).

cost: create_pretraining_data on the demo corpus (the real Wikipedia dump
excerpt, the lead sections and the plays, the demo's flags), with
--dedup near against --dedup none, the two interleaved, medians of
--repeats. At scale S the lead sections are S copies, each copy's words
replaced through its own fixed word permutation of the corpus vocabulary (so
the copies are distinct documents to the dedup, with the same lengths and
word statistics); the dump excerpt and the plays are read once.
Writes benchmarks/results/dedup_<mode>.json.
"""

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(ROOT, "data")
LEADS = os.path.join(DATA, "wiki_leads", "leads.jsonl")
EDIT_FRACTIONS = (0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08)
BINS = ((0.85, 1.01), (0.7, 0.85), (0.5, 0.7), (0.0, 0.5))


def lead_texts():
    with open(LEADS, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def edit(text: str, fraction: float, rng: random.Random, vocabulary) -> str:
    """The text with round(fraction x words) (at least 1) single-word edits: an insertion,
    deletion or substitution each, at random places; paragraphs are kept."""
    paragraphs = [p.split(" ") for p in text.split("\n")]
    places = [(i, j) for i, p in enumerate(paragraphs) for j in range(len(p))]
    for _ in range(max(1, round(fraction * len(places)))):
        i, j = rng.choice(places)
        if j >= len(paragraphs[i]):
            j = len(paragraphs[i]) - 1
        kind = rng.randrange(3)
        if kind == 0:
            paragraphs[i].insert(j, rng.choice(vocabulary))
        elif kind == 1 and len(paragraphs[i]) > 1:
            del paragraphs[i][j]
        else:
            paragraphs[i][j] = rng.choice(vocabulary)
    return "\n".join(" ".join(p) for p in paragraphs)


def jaccard(a: str, b: str, n: int = 5) -> float:
    from pipeline.cleaning import shingles, words
    sa, sb = set(shingles(words(a), n)), set(shingles(words(b), n))
    return len(sa & sb) / len(sa | sb)


def synthetic(originals: int, exact: int, near: int, seed: int = 0):
    """(documents in a shuffled order, pairs): pairs are (kind, original id, copy id,
    edit fraction, true Jaccard); a document is (id, text)."""
    rng = random.Random(seed)
    texts = [t for t in lead_texts() if len(t.split()) >= 20][:originals]
    vocabulary = sorted({w for t in texts for w in t.split()})
    docs = [(f"o{i}", t) for i, t in enumerate(texts)]
    chosen = rng.sample(range(len(texts)), exact + near)
    pairs = []
    for k, i in enumerate(chosen):
        if k < exact:
            copy = texts[i]
            pairs.append(("exact", f"o{i}", f"c{i}", 0.0, 1.0))
        else:
            fraction = EDIT_FRACTIONS[k % len(EDIT_FRACTIONS)]
            copy = edit(texts[i], fraction, rng, vocabulary)
            pairs.append(("near", f"o{i}", f"c{i}", fraction, jaccard(texts[i], copy)))
        docs.append((f"c{i}", copy))
    rng.shuffle(docs)  # copies before their originals too
    return docs, pairs


def run_clean(docs, out_dir: str, extra=()) -> set:
    """python -m pipeline.clean_corpus on the documents; the ids of the kept ones."""
    from pipeline.cleaning import digest, words
    corpus = os.path.join(out_dir, "mix.jsonl")
    by_digest = {}
    with open(corpus, "w", encoding="utf-8") as f:
        for doc_id, text in docs:
            f.write(json.dumps({"text": text}) + "\n")
            by_digest.setdefault(digest(words(text)), []).append(doc_id)
    out = os.path.join(out_dir, "clean")
    subprocess.run([sys.executable, "-m", "pipeline.clean_corpus", "--input_file",
                    f"jsonl:{corpus}", "--output_dir", out, *extra], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kept = set()
    for name in sorted(os.listdir(out)):
        if re.match(r"part-\d+-of-\d+\.jsonl$", name):
            with open(os.path.join(out, name), encoding="utf-8") as f:
                for line in f:
                    ids = by_digest[digest(words(json.loads(line)["text"]))]
                    kept.add(ids.pop(0))  # an exact copy: either id stands for the text
    return kept


def score(docs, pairs, kept: set) -> dict:
    planted = {p[1] for p in pairs} | {p[2] for p in pairs}
    distinct = [doc_id for doc_id, _ in docs if doc_id not in planted]
    lost = [doc_id for doc_id in distinct if doc_id not in kept]
    exact = [p for p in pairs if p[0] == "exact"]
    out = {
        "documents": len(docs), "distinct_documents": len(distinct),
        "distinct_lost": len(lost), "distinct_lost_fraction": len(lost) / len(distinct),
        "exact_pairs": len(exact),
        "exact_removed": sum(1 for p in exact if (p[1] in kept) + (p[2] in kept) == 1),
        "near": [],
    }
    near = [p for p in pairs if p[0] == "near"]
    for low, high in BINS:
        members = [p for p in near if low <= p[4] < high]
        resolved = sum(1 for p in members if (p[1] in kept) + (p[2] in kept) == 1)
        both_lost = sum(1 for p in members if p[1] not in kept and p[2] not in kept)
        out["near"].append({"jaccard": f"[{low}, {min(high, 1.0)}{']' if high > 1 else ')'}",
                            "pairs": len(members), "resolved_to_one": resolved,
                            "recall": resolved / len(members) if members else None,
                            "both_removed": both_lost})
    return out


def quality(args):
    docs, pairs = synthetic(args.originals, args.exact, args.near)
    with tempfile.TemporaryDirectory() as tmp:
        kept = run_clean(docs, tmp)
    result = score(docs, pairs, kept)
    print(f"{result['documents']} documents: {result['exact_pairs']} exact copies, "
          f"{len(pairs) - result['exact_pairs']} near copies\n"
          f"exact copies removed: {result['exact_removed']}/{result['exact_pairs']}\n"
          f"distinct documents lost: {result['distinct_lost']}/{result['distinct_documents']} "
          f"({100 * result['distinct_lost_fraction']:.2f}%)")
    print("| true word-5-gram Jaccard | pairs | resolved to one kept | recall |")
    print("|---|---|---|---|")
    for row in result["near"]:
        recall = "-" if row["recall"] is None else f"{row['recall']:.3f}"
        print(f"| {row['jaccard']} | {row['pairs']} | {row['resolved_to_one']} | {recall} |")
    return result


def permuted_leads(scale: int, out_dir: str) -> str:
    """The lead sections S times, copy k's words mapped through permutation k (copy 0 as is)."""
    texts = lead_texts()
    vocabulary = sorted({w for t in texts for w in t.split()})
    path = os.path.join(out_dir, f"leads_x{scale}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for copy in range(scale):
            shuffled = vocabulary[:]
            random.Random(copy).shuffle(shuffled)
            mapping = dict(zip(vocabulary, shuffled)) if copy else None
            for t in texts:
                if mapping:
                    t = "\n".join(" ".join(mapping[w] for w in p.split()) for p in t.split("\n"))
                f.write(json.dumps({"text": t}) + "\n")
    return path


def cost(args):
    from benchmarks.bench_pipeline import run_measured
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scale in [int(s) for s in args.scales.split(",")]:
            corpus = ",".join([f"wikipedia:{DATA}/wikipedia/enwiki-excerpt.xml.bz2",
                               f"jsonl:{permuted_leads(scale, tmp)}",
                               f"books:{DATA}/plays/*.txt"])
            runs = {"none": [], "near": []}
            for _ in range(args.repeats):
                for mode in ("none", "near"):
                    out = os.path.join(tmp, f"ds_{mode}")
                    seconds, rss, output = run_measured([
                        sys.executable, "-m", "pipeline.create_pretraining_data",
                        "--flagfile=configs/recipes/budget_tiny.data.flags",
                        "--input_file", corpus, "--vocab_file",
                        os.path.join(DATA, "vocab", "uncased_vocab.txt"), "--output_dir", out,
                        "--num_shards", "8", "--eval_fraction", "0.05", "--overwrite",
                        "--dedup", mode])
                    with open(os.path.join(out, "stats.json")) as f:
                        stats = json.load(f)
                    runs[mode].append({"seconds": seconds, "peak_rss_mb": rss,
                                       "cleaning_seconds": stats.get("cleaning_seconds", 0),
                                       "documents": stats["documents"]})
            med = {mode: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
                   for mode, rs in runs.items()}
            med["added_fraction"] = med["near"]["seconds"] / med["none"]["seconds"] - 1
            results[scale] = {"median": med, "runs": runs}
            print(f"{scale}x: none {med['none']['seconds']:.1f} s "
                  f"({med['none']['peak_rss_mb']:.0f} MB), near {med['near']['seconds']:.1f} s "
                  f"(pass 1 {med['near']['cleaning_seconds']:.1f} s, "
                  f"{med['near']['peak_rss_mb']:.0f} MB): +{100 * med['added_fraction']:.0f}%",
                  flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["quality", "cost"])
    parser.add_argument("--originals", type=int, default=3000)
    parser.add_argument("--exact", type=int, default=300)
    parser.add_argument("--near", type=int, default=1400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scales", default="1,8")
    args = parser.parse_args()
    started = time.time()
    result = quality(args) if args.mode == "quality" else cost(args)
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", f"dedup_{args.mode}.json"), "w") as f:
        json.dump({"args": vars(args), "result": result,
                   "seconds": round(time.time() - started, 1)}, f, indent=2)


if __name__ == "__main__":
    main()
