"""The sample-data conversions on hand-made inputs, and on the real data when fetched."""

import bz2
import json
import os

import pytest

from pipeline import sample_data
from tests.conftest import ROOT

DATA = ROOT / "data"


def test_play_markdown_keeps_every_word_and_drops_markup():
    md = (
        "# As You Like It\n\n## ACT I\n\n### SCENE I. Orchard of Oliver's house.\n\n"
        "_Enter ORLANDO and ADAM_\n\n**ORLANDO**  \nAs I remember, Adam,  \nit was upon this fashion\n\n"
        "*Sound a horn.*\n\n__\\[Awaking]_  \n"
    )
    assert sample_data.markdown_play_to_text(md) == (
        "As You Like It\n\nACT I\n\nSCENE I. Orchard of Oliver's house.\n\n"
        "Enter ORLANDO and ADAM\n\nORLANDO\n\nAs I remember, Adam,\nit was upon this fashion\n\n"
        "Sound a horn.\n\n[Awaking]\n"
    )


def test_leads_become_jsonl_with_text_from_extract(tmp_path):
    src = {"Albedo": {"title": "Albedo", "extract": "Albedo is the fraction of light.",
                      "description": "reflectivity", "topic": "physics"},
           "Empty": {"title": "Empty", "extract": "  ", "description": "", "topic": ""}}
    counts = sample_data.convert_leads({"s.json": json.dumps(src).encode()}, str(tmp_path))
    assert counts == {"documents": 1, "empty_skipped": 1}
    (line,) = (tmp_path / "leads.jsonl").read_text().splitlines()
    assert json.loads(line) == {"id": "Albedo", "title": "Albedo", "text": "Albedo is the fraction of light.",
                                "description": "reflectivity", "topic": "physics"}


def test_rotten_tomatoes_split_by_movie_in_sst2_format(tmp_path):
    csv_text = (
        "category,text,movie_name,has_plot_and_reviews\n"
        'plot,"A plot summary.",m1,True\n'
        'fresh,"Great\tfun,\nreally.",m1,True\n'
        'rotten,"Dull.",m1,True\n'
        'fresh,"Lovely.",m2,True\n'
    )
    counts = sample_data.convert_rotten_tomatoes(
        {"rt.csv.bz2": bz2.compress(csv_text.encode())}, str(tmp_path))
    assert counts["plot_dropped"] == 1
    rows = {}
    for split in ("train", "dev", "test"):
        lines = (tmp_path / f"{split}.tsv").read_text().splitlines()
        assert lines[0] == "sentence\tlabel"
        for line in lines[1:]:
            rows[line] = split
    assert set(rows) == {"Great fun, really.\t1", "Dull.\t0", "Lovely.\t1"}
    assert rows["Great fun, really.\t1"] == rows["Dull.\t0"] == sample_data.split_of("m1")


def test_ner_sentences_are_kept_whole(tmp_path):
    text = "Empire\tB-facility\nState\tI-facility\n\nhi\tO\n\n\nthere\tO\nyou\tO\n"
    counts = sample_data.convert_ner({"ner.txt": text.encode()}, str(tmp_path))
    assert sum(counts.values()) == 3
    blocks = []
    for split in ("train", "dev", "test"):
        blocks += [b for b in (tmp_path / f"{split}.txt").read_text().split("\n\n") if b.strip()]
    assert sorted(blocks) == sorted(["Empire\tB-facility\nState\tI-facility", "hi\tO", "there\tO\nyou\tO"])


def test_bad_ner_line_is_an_error(tmp_path):
    with pytest.raises(sample_data.SampleDataError, match="not token<TAB>tag"):
        sample_data.convert_ner({"ner.txt": b"one two three\n"}, str(tmp_path))


def test_unknown_item_is_refused(tmp_path):
    with pytest.raises(sample_data.SampleDataError, match="unknown item"):
        sample_data.fetch(str(tmp_path), only=["imdb"])


needs_data = pytest.mark.skipif(not (DATA / "rotten_tomatoes" / ".done").exists(),
                                reason="sample data not fetched: run `make data`")


@pytest.mark.data
@needs_data
def test_real_sample_data_counts():
    # DATA.md: 7,403 fresh + 5,405 rotten reviews; 2,394 NER sentences; 10,033 leads.
    reviews = sum(len((DATA / "rotten_tomatoes" / f"{s}.tsv").read_text().splitlines()) - 1
                  for s in ("train", "dev", "test"))
    assert reviews == 7403 + 5405
    ner = sum(json.loads((DATA / "ner" / ".done").read_text())["counts"].values())
    assert ner == 2394
    assert json.loads((DATA / "wiki_leads" / ".done").read_text())["counts"]["documents"] == 10033
    assert len(os.listdir(DATA / "vocab")) >= 1
    assert (DATA / "vocab" / "uncased_vocab.txt").read_text().splitlines()[100:104] == [
        "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
