"""Readers of fine-tuning data in its published formats.

- GLUE TSVs, by header names where the file has a header (the column names
  of the GLUE distribution), CoLA by position (it has none);
- any CSV / TSV / JSONL with named text, second-text and label columns;
- CoNLL-style BIO files (token ... tag per line, blank line between sentences);
- SQuAD v1.1 / v2.0 JSON.

Rows that cannot be read (missing columns, empty text, a label outside the
task's set) are counted and skipped, and the caller reports the count; a file
that yields nothing is an error naming the file.
"""

import csv
import dataclasses
import io
import json
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from model import storage
from model.tasks.textfiles import INVALID_UTF8, read_text

csv.field_size_limit(sys.maxsize)


class TaskDataError(Exception):
    """Fine-tuning data that cannot be used; the message names the file."""


@dataclasses.dataclass
class Example:
    text_a: str
    text_b: str = ""
    label: Optional[object] = None  # str class name, float (regression), or None (test)


@dataclasses.dataclass
class NerExample:
    words: List[str]
    tags: Optional[List[str]]


@dataclasses.dataclass
class SquadExample:
    qid: str
    question: str
    context: str
    answers: List[Tuple[str, int]]  # (text, character start); [] if unanswerable or test
    is_impossible: bool = False


# GLUE: (text_a column, text_b column or None, label column, labels or None for regression).
GLUE = {
    "cola": (3, None, 1, ["0", "1"]),
    "sst2": ("sentence", None, "label", ["0", "1"]),
    "mrpc": ("#1 String", "#2 String", "Quality", ["0", "1"]),
    "stsb": ("sentence1", "sentence2", "score", None),
    "qqp": ("question1", "question2", "is_duplicate", ["0", "1"]),
    "mnli": ("sentence1", "sentence2", "gold_label", ["contradiction", "entailment", "neutral"]),
    "qnli": ("question", "sentence", "label", ["entailment", "not_entailment"]),
    "rte": ("sentence1", "sentence2", "label", ["entailment", "not_entailment"]),
    "wnli": ("sentence1", "sentence2", "label", ["0", "1"]),
}


@dataclasses.dataclass
class ReadStats:
    """Rows read, rows skipped by reason, and repairs made to rows that were kept."""

    read: int = 0
    skipped: int = 0
    reasons: Dict[str, int] = dataclasses.field(default_factory=dict)
    repaired: Dict[str, int] = dataclasses.field(default_factory=dict)

    def skip(self, why: str):
        self.skipped += 1
        self.reasons[why] = self.reasons.get(why, 0) + 1

    def repair(self, what: str, n: int = 1):
        if n:
            self.repaired[what] = self.repaired.get(what, 0) + n


def _open(path: str, stats: ReadStats):
    """The file as a text stream (csv's newline="" semantics); invalid UTF-8 is counted."""
    if not storage.isfile(path):
        raise TaskDataError(f"{path} not found")
    try:
        text, bad = read_text(path)
    except OSError as e:
        raise TaskDataError(f"{path}: {e.strerror}") from None
    stats.repair(INVALID_UTF8, bad)
    return io.StringIO(text, newline="")


def read_glue(task: str, path: str) -> Tuple[List[Example], ReadStats]:
    """A GLUE task's train/dev/test TSV (test files have no label column)."""
    a_col, b_col, y_col, labels = GLUE[task]
    stats = ReadStats()
    out = []
    with _open(path, stats) as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise TaskDataError(f"{path} is empty")
    if task == "cola" and rows[0][:2] == ["index", "sentence"]:  # CoLA's test file has a header
        a_col, y_col, rows = 1, None, rows[1:]
    elif task != "cola":
        header, rows = rows[0], rows[1:]
        missing = [c for c in (a_col, b_col) if c is not None and c not in header]
        if missing:
            raise TaskDataError(f"{path}: no column {missing[0]!r} in the header {header} "
                                f"(is it the {task} TSV?)")
        a_col = header.index(a_col)
        b_col = header.index(b_col) if b_col is not None else None
        y_col = header.index(y_col) if y_col in header else None
    for row in rows:
        stats.read += 1
        try:
            a = row[a_col]
            b = row[b_col] if b_col is not None else ""
            y = row[y_col] if y_col is not None else None
        except IndexError:
            stats.skip("missing columns")
            continue
        if not a.strip():
            stats.skip("empty text")
            continue
        if y is not None:
            if labels is None:
                try:
                    y = float(y)
                except ValueError:
                    stats.skip("label not a number")
                    continue
            elif y not in labels:
                stats.skip(f"label outside {labels}")
                continue
        out.append(Example(a, b, y))
    return out, stats


def read_table(path: str, text_column: str, text_b_column: str = "",
               label_column: str = "label") -> Tuple[List[Example], ReadStats]:
    """CSV (.csv), TSV (.tsv/.txt) with a header, or JSONL (.jsonl/.json); columns by name."""
    stats = ReadStats()
    out = []
    if path.endswith((".jsonl", ".json")):
        records = []
        with _open(path, stats) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError:
                    records.append(None)
        header = None
    else:
        with _open(path, stats) as f:
            reader = csv.DictReader(f, delimiter="," if path.endswith(".csv") else "\t")
            records = list(reader)
            header = reader.fieldnames or []
        for col in (text_column, text_b_column):
            if col and col not in header:
                raise TaskDataError(f"{path}: no column {col!r} (columns: {header})")
    for rec in records:
        stats.read += 1
        if not isinstance(rec, dict):
            stats.skip("not a JSON object")
            continue
        a = rec.get(text_column)
        if not isinstance(a, str) or not a.strip():
            stats.skip(f"no text in {text_column!r}")
            continue
        b = rec.get(text_b_column) if text_b_column else ""
        if text_b_column and (b is None or (isinstance(b, str) and not b.strip())):
            # a missing second text: skipped, never the text "None"
            stats.skip(f"no text in {text_b_column!r}")
            continue
        y = rec.get(label_column)
        out.append(Example(a, b if isinstance(b, str) else str(b),
                           None if y is None or y == "" else str(y)))
    return out, stats


def read_conll(path: str) -> Tuple[List[NerExample], ReadStats]:
    """token [...] tag lines (tab or space separated), blank lines between sentences."""
    stats = ReadStats()
    out, words, tags = [], [], []
    with _open(path, stats) as f:
        lines = f.read().splitlines() + [""]
    for line in lines:
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                stats.read += 1
                out.append(NerExample(words, tags if all(t is not None for t in tags) else None))
            words, tags = [], []
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        words.append(parts[0].strip() or "_")
        tags.append(parts[-1].strip() if len(parts) > 1 else None)
    bad = [e for e in out if e.tags is not None and any(
        not (t == "O" or t[:2] in ("B-", "I-")) for t in e.tags)]
    for e in bad:
        stats.skip("tag not O/B-X/I-X")
        out.remove(e)
    return out, stats


def read_squad(path: str) -> Tuple[List[SquadExample], ReadStats, str]:
    """SQuAD v1.1/v2.0 JSON; returns examples, stats and the version string."""
    stats = ReadStats()
    with _open(path, stats) as f:
        try:
            data = json.load(f)
        except ValueError as e:
            raise TaskDataError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict) or "data" not in data:
        raise TaskDataError(f"{path}: not SQuAD JSON (no 'data')")
    out = []
    for article in data["data"]:
        for para in article.get("paragraphs", []):
            context = para.get("context", "")
            for qa in para.get("qas", []):
                stats.read += 1
                impossible = bool(qa.get("is_impossible", False))
                answers = [(a["text"], int(a["answer_start"])) for a in qa.get("answers", [])
                           if "text" in a and "answer_start" in a]
                if not context or not qa.get("question"):
                    stats.skip("empty question or context")
                    continue
                ok = [(t, s) for t, s in answers if context[s:s + len(t)] == t]
                if answers and not ok:
                    stats.skip("answer text not at answer_start")
                    continue
                stats.repair("answers not at their answer_start, dropped (the question kept "
                             "with its other answers)", len(answers) - len(ok))
                out.append(SquadExample(str(qa.get("id", stats.read)), qa["question"], context,
                                        ok, impossible))
    return out, stats, str(data.get("version", ""))


def label_set(values: Sequence) -> List[str]:
    """The sorted distinct labels of a training set."""
    return sorted({v for v in values if v is not None})
