"""Readers of the published fine-tuning formats, on hand-written fixture files."""

import json

import pytest

from model.tasks import readers as D
from tests.conftest import FIXTURES

GLUE = FIXTURES / "glue"


@pytest.mark.parametrize("task,path,first", [
    ("cola", "CoLA/train.tsv", ("The baker tapped the dough.", "", "1")),
    ("sst2", "SST-2/train.tsv", ("warm bread and warm light ", "", "1")),
    ("mrpc", "MRPC/train.tsv", ("The baker made bread.", "Bread was made by the baker.", "1")),
    ("stsb", "STS-B/train.tsv", ("A baker makes bread.", "A baker is making bread.", 5.0)),
    ("qqp", "QQP/train.tsv", ("How is bread made?", "How do you make bread?", "1")),
    ("mnli", "MNLI/dev_mismatched.tsv", ("The baker made bread at dawn.", "The baker made bread.",
                                         "entailment")),
    ("qnli", "QNLI/train.tsv", ("What does the baker make?", "The baker makes bread at dawn.",
                                "entailment")),
    ("rte", "RTE/train.tsv", ("The baker made bread at dawn.", "The baker made bread.",
                              "entailment")),
    ("wnli", "WNLI/train.tsv", ("The baker tapped the dough because it was ready.",
                                "The dough was ready.", "1")),
])
def test_glue_tsvs(task, path, first):
    examples, stats = D.read_glue(task, str(GLUE / path))
    assert (examples[0].text_a, examples[0].text_b, examples[0].label) == first
    assert stats.skipped == 0 and stats.read == len(examples)


def test_glue_test_files_and_bad_rows(tmp_path):
    examples, _ = D.read_glue("cola", str(GLUE / "CoLA" / "test.tsv"))
    assert [e.label for e in examples] == [None, None]
    bad = tmp_path / "train.tsv"
    bad.write_text("sentence\tlabel\ngood row\t1\nno label column\nbad label\t7\n\t0\n")
    examples, stats = D.read_glue("sst2", str(bad))
    assert len(examples) == 1 and stats.skipped == 3
    assert stats.reasons == {"missing columns": 1, "label outside ['0', '1']": 1, "empty text": 1}
    with pytest.raises(D.TaskDataError, match="no column 'sentence1'"):
        D.read_glue("rte", str(GLUE / "SST-2" / "train.tsv"))


def test_tables_and_jsonl(tmp_path):
    (tmp_path / "a.csv").write_text('review,stars\n"Warm, fresh bread",good\nstale,bad\n')
    examples, _ = D.read_table(str(tmp_path / "a.csv"), "review", "", "stars")
    assert [(e.text_a, e.label) for e in examples] == [("Warm, fresh bread", "good"),
                                                       ("stale", "bad")]
    (tmp_path / "a.jsonl").write_text(json.dumps({"q": "x", "p": "y", "y": 1}) + "\nnot json\n")
    examples, stats = D.read_table(str(tmp_path / "a.jsonl"), "q", "p", "y")
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [("x", "y", "1")]
    assert stats.reasons == {"not a JSON object": 1}


def test_conll_and_squad():
    examples, _ = D.read_conll(str(FIXTURES / "ner" / "train.txt"))
    assert len(examples) == 3  # -DOCSTART- is not a sentence
    assert examples[0].words[3:5] == ["South", "River"]
    assert examples[0].tags[3:5] == ["B-loc", "I-loc"]
    examples, stats, version = D.read_squad(str(FIXTURES / "squad" / "dev-v2.0.json"))
    assert version == "v2.0" and [e.qid for e in examples] == ["q1", "q2", "q3"]
    assert examples[0].answers == [("at dawn", 27), ("dawn", 30)]
    assert examples[2].is_impossible and examples[2].answers == []


def test_nothing_is_changed_or_dropped_silently(tmp_path):
    """A missing second text is skipped (never the text "None"); invalid UTF-8 is decoded
    with U+FFFD and counted; a SQuAD answer not at its answer_start is dropped and counted
    (the question stays, with its other answers)."""
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in (
        {"q": "x", "p": "y", "y": 1}, {"q": "x", "p": None, "y": 0}, {"q": "x", "y": 0})) + "\n")
    examples, stats = D.read_table(str(tmp_path / "pairs.jsonl"), "q", "p", "y")
    assert [(e.text_a, e.text_b) for e in examples] == [("x", "y")]
    assert stats.reasons == {"no text in 'p'": 2}
    (tmp_path / "short.csv").write_text("a,b,label\none,two,1\nthree\n")  # a row cut short
    examples, stats = D.read_table(str(tmp_path / "short.csv"), "a", "b", "label")
    assert len(examples) == 1 and stats.reasons == {"no text in 'b'": 1}

    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\u00e9,1\nplain,0\n".encode("latin-1"))
    examples, stats = D.read_table(str(tmp_path / "latin1.csv"), "text", "", "label")
    assert [e.text_a for e in examples] == ["caf\ufffd", "plain"]
    assert stats.repaired == {"lines with invalid UTF-8 (bytes replaced by U+FFFD)": 1}
    assert stats.skipped == 0

    squad = json.loads((FIXTURES / "squad" / "dev-v2.0.json").read_text())
    qa = squad["data"][0]["paragraphs"][0]["qas"][0]
    qa["answers"].append({"text": "dawn", "answer_start": 2})  # not where the text is
    (tmp_path / "squad.json").write_text(json.dumps(squad))
    examples, stats, _ = D.read_squad(str(tmp_path / "squad.json"))
    assert examples[0].answers == [("at dawn", 27), ("dawn", 30)] and stats.skipped == 0
    assert stats.repaired == {"answers not at their answer_start, dropped (the question kept "
                              "with its other answers)": 1}
