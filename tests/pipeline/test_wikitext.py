import bz2
import collections
import io

from pipeline import readers, wikitext
from tests.conftest import FIXTURES


def _read(data: bytes, path="dump.xml"):
    skipped = collections.Counter()
    docs = list(readers.read_documents(path, io.BytesIO(data), "wikipedia",
                                       lambda reason: skipped.update([reason])))
    return docs, skipped


def test_fixture_dump_gives_clean_paragraphs_of_articles_only():
    docs, skipped = _read((FIXTURES / "corpus" / "wiki.xml").read_bytes())
    # hand-checked against tests/fixtures/corpus/wiki.xml: the infobox, ref, table,
    # heading, file link, category, comment, list and <i> markup are gone; text after
    # a table starts a new paragraph, as MediaWiki renders it
    assert [d.units for d in docs] == [
        ["The River Test starts high in the northern hills. It runs south for three hundred "
         "miles before it reaches the sea.",
         "Farmers along its banks grow wheat, barley and apples.",
         "In spring the water rises quickly after the snow melts."],
        ["Bread is made from flour, water, salt and yeast. The dough is kneaded until it "
         "becomes smooth and elastic.",
         "It is then left to rise in a warm place for about an hour. After baking, the loaf "
         "should sound hollow when tapped underneath."],
    ]
    assert skipped == {"redirect_or_non_article": 2}  # the redirect and the Talk page


def test_malformed_page_is_skipped_and_the_rest_kept():
    xml = (FIXTURES / "corpus" / "wiki.xml").read_bytes()
    broken = xml.replace(b"<title>River Test</title>", b"<title>River <b>Test</title>", 1)
    docs, skipped = _read(broken)
    assert len(docs) == 1 and docs[0].units[0].startswith("Bread is made")
    assert skipped["malformed_page"] == 1


def _two_streams():
    """The fixture dump as a two-stream bz2 (as multistream dumps are): River Test, then Bread."""
    xml = (FIXTURES / "corpus" / "wiki.xml").read_bytes()
    head, rest = xml.split(b"  <page>\n    <title>Bread", 1)
    return bz2.compress(head), bz2.compress(b"  <page>\n    <title>Bread" + rest)


def test_truncated_bz2_keeps_pages_before_the_cut():
    first, second = _two_streams()
    docs, skipped = _read(first + second[: len(second) // 2], path="dump.xml.bz2")
    assert skipped["truncated_file"] == 1
    assert [d.units[0][:14] for d in docs] == ["The River Test"]


def test_multistream_bz2_reads_every_stream():
    docs, skipped = _read(b"".join(_two_streams()), path="dump.xml.bz2")
    assert len(docs) == 2 and "truncated_file" not in skipped


def test_interlanguage_and_colon_links():
    assert wikitext.clean_wikitext("See [[:Category:Rivers|the rivers]] here.[[de:Fluss]]") == [
        "See the rivers here."]
    assert wikitext.clean_wikitext("A [https://x.org site] and [https://y.org].") == ["A site and ."]


def test_real_dump_excerpt_when_fetched():
    path = FIXTURES.parents[1] / "data" / "wikipedia" / "enwiki-excerpt.xml.bz2"
    if not path.exists():
        import pytest
        pytest.skip("sample data not fetched: run `make data`")
    with open(path, "rb") as f:
        skipped = collections.Counter()
        docs = list(readers.read_documents(str(path), f, "wikipedia", lambda r: skipped.update([r])))
    # DATA.md: 206 pages, 106 articles and 100 redirects; one article, "List of
    # anthropologists", is nothing but list items and headings, so it has no prose
    assert len(docs) == 105
    assert skipped == {"redirect_or_non_article": 100, "empty_document": 1}
    text = "\n".join(p for d in docs for p in d.units)
    for markup in ("{{", "}}", "[[", "]]", "<ref", "&lt;", "{|", "|}", "'''", "Category:", "thumb|"):
        assert markup not in text, markup
