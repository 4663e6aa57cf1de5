import collections
import gzip
import io
import json

import pytest

from pipeline import readers
from tests.conftest import FIXTURES


def _read(data: bytes, fmt: str, path="f.txt", **kw):
    skipped = collections.Counter()
    docs = list(readers.read_documents(path, io.BytesIO(data), fmt,
                                       lambda reason: skipped.update([reason]), **kw))
    return docs, skipped


def test_sentences_format_blank_lines_end_documents():
    docs, skipped = _read((FIXTURES / "corpus" / "sentences.txt").read_bytes(), "sentences")
    assert [len(d.units) for d in docs] == [5, 4, 5, 4]
    assert all(d.presplit for d in docs) and not skipped
    assert docs[1].units[0] == "The library opened its doors to the public in the year 1902."


def test_books_format_joins_lines_into_paragraphs():
    docs, _ = _read((FIXTURES / "corpus" / "books" / "the_library.txt").read_bytes(), "books")
    assert [d.units for d in docs] == [[
        "THE LIBRARY",
        "The library opened its doors to the public in the year 1902. Its first collection "
        "held about four thousand books.",
        "Today the building also houses a small museum of local history. Children come every "
        "Saturday morning to hear stories read aloud.",
    ]]
    assert not docs[0].presplit


def test_jsonl_format_and_its_bad_records():
    good = (FIXTURES / "corpus" / "docs.jsonl").read_bytes()
    bad = b'{"text": 5}\n{not json\n{"body": "x"}\n{"text": "   "}\n\xff\xfe{"text": "bad"}\n'
    docs, skipped = _read(good + bad, "jsonl")
    assert [d.ordinal for d in docs] == [0, 1, 2]
    assert docs[1].units == ["The library opened its doors to the public in the year 1902. "
                             "Its first collection held about four thousand books.",
                             "Today the building also houses a small museum of local history."]
    assert skipped == {"missing_text_field": 2, "invalid_json": 1, "empty_document": 1,
                       "invalid_utf8": 1}


def test_custom_text_field():
    docs, _ = _read(b'{"body": "One. Two."}\n', "jsonl", text_field="body")
    assert docs[0].units == ["One. Two."]


def test_invalid_utf8_line_is_skipped_not_the_document():
    docs, skipped = _read(b"Good one.\n\xc3\x28 bad.\nGood two.\n", "sentences")
    assert docs[0].units == ["Good one.", "Good two."]
    assert skipped == {"invalid_utf8": 1}


def test_text_is_nfc_normalized():
    docs, _ = _read("Cafe\u0301 au lait.\n".encode(), "sentences")
    assert docs[0].units == ["Caf\u00e9 au lait."]


def test_gzip_line_input_and_truncation():
    data = gzip.compress((FIXTURES / "corpus" / "sentences.txt").read_bytes())
    docs, skipped = _read(data, "sentences", path="s.txt.gz")
    assert len(docs) == 4 and not skipped
    docs, skipped = _read(data[:-20], "sentences", path="s.txt.gz")
    assert skipped["truncated_file"] == 1


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="--input_format must be one of"):
        readers.read_documents("f", io.BytesIO(b""), "html", print)


@pytest.mark.parametrize("fmt", ["sentences", "jsonl"])
def test_byte_ranges_read_every_document_exactly_once(fmt):
    import random

    rng = random.Random(fmt)
    if fmt == "sentences":
        docs = ["\n".join(f"Doc {d} sentence {s}." for s in range(rng.randint(1, 4)))
                for d in range(60)]
        # documents end with one blank line, or now and then two
        data = "".join(d + rng.choice(["\n\n", "\n\n", "\n\n\n"]) for d in docs).encode()
    else:
        docs = [json.dumps({"text": f"Doc {d}. " * rng.randint(1, 9)}) for d in range(60)]
        data = ("\n".join(docs) + "\n").encode()
    whole = [d.units for d in _read(data, fmt)[0]]
    assert len(whole) == 60
    for split_bytes in (1, 7, 50, 333, len(data)):
        got = []
        for start, end in readers.plan_ranges("f.txt", len(data), fmt, split_bytes):
            skipped = collections.Counter()
            got += [d.units for d in readers.read_documents(
                "f.txt", io.BytesIO(data), fmt, lambda r: skipped.update([r]), start=start, end=end)]
        assert got == whole, split_bytes


def test_compressed_and_book_files_are_not_split():
    assert readers.plan_ranges("a.txt.gz", 10**9, "sentences", 1000) == [(0, None)]
    assert readers.plan_ranges("a.txt", 10**9, "books", 1000) == [(0, None)]
    assert len(readers.plan_ranges("a.jsonl", 2500, "jsonl", 1000)) == 3
