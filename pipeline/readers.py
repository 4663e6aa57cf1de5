"""Corpus readers: one input file to a stream of documents, bad records counted.

Formats (`--input_format`):
    wikipedia  MediaWiki pages-articles XML, plain, .bz2 (multistream too) or .gz
    books      BookCorpus-style: one book per .txt file, blank line between paragraphs
    sentences  google-research/bert's: one sentence per line, blank line between documents
    jsonl      one JSON document per line, its text in `--text_field` (default "text")

Line formats may be .gz or .bz2 too. Every file is streamed, never loaded
whole (a book is one document, so a book is held at once). A document is
`Document(ordinal, units, presplit)`: its paragraphs (to be split into
sentences) or, for the sentences format, its sentences.

A record that cannot be used is skipped and reported through `skip(reason)`,
never raised: invalid UTF-8, malformed JSON or XML, a missing text field, an
empty document, a page without its `</page>`, a truncated compressed file
(what was read before the truncation is kept), a file not compressed as its
name says. The job sums the counts by reason, and by file under
`skipped_by_file` in stats.json.
"""

import bz2
import gzip
import json
import zlib
from typing import IO, Callable, Iterator, List, NamedTuple, Optional

from pipeline import wikitext
from pipeline.text import normalize

FORMATS = ("wikipedia", "books", "sentences", "jsonl")
# Formats whose uncompressed files can be read in byte ranges by several workers.
SPLITTABLE = ("sentences", "jsonl")

Skip = Callable[[str], None]


class Document(NamedTuple):
    """A document of one file: its position in the file and its text units."""

    ordinal: int
    units: List[str]
    presplit: bool  # True: units are sentences; False: paragraphs


def open_compressed(path: str, fileobj: IO[bytes]) -> IO[bytes]:
    """Decompresses .bz2 (multistream too) and .gz by suffix; otherwise as is."""
    if path.endswith(".bz2"):
        return bz2.BZ2File(fileobj)
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=fileobj)
    return fileobj


def _lines(stream: IO[bytes], skip: Skip) -> Iterator[bytes]:
    """Lines of a possibly compressed stream; a truncated or corrupt stream ends early,
    counted by reason: `truncated_file` (the end is missing), `not_compressed_as_named`
    (no gzip/bz2 header at all: e.g. a plain file named .gz), `corrupt_compressed_file`."""
    lines = 0
    try:
        for line in stream:
            lines += 1
            yield line
    except EOFError:
        skip("truncated_file")
    except (OSError, zlib.error) as e:
        header = isinstance(e, gzip.BadGzipFile) or "Invalid data stream" in str(e)
        skip("not_compressed_as_named" if header and not lines else "corrupt_compressed_file")


def _decode(raw: bytes, skip: Skip):
    try:
        return normalize(raw.decode("utf-8"))
    except UnicodeDecodeError:
        skip("invalid_utf8")
        return None


def read_sentences(stream: IO[bytes], skip: Skip) -> Iterator[Document]:
    """One sentence per line; a blank line ends a document."""
    ordinal, sentences = 0, []
    for raw in _lines(stream, skip):
        line = _decode(raw, skip)
        if line is None:
            continue
        line = line.strip()
        if line:
            sentences.append(line)
        elif sentences:
            yield Document(ordinal, sentences, True)
            ordinal, sentences = ordinal + 1, []
    if sentences:
        yield Document(ordinal, sentences, True)


def _paragraphs(lines: Iterator[str]) -> List[str]:
    paragraphs, current = [], []
    for line in lines:
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def read_book(stream: IO[bytes], skip: Skip) -> Iterator[Document]:
    """The whole file is one document; blank lines separate paragraphs."""
    decoded = (_decode(raw, skip) for raw in _lines(stream, skip))
    paragraphs = _paragraphs(line for line in decoded if line is not None)
    if paragraphs:
        yield Document(0, paragraphs, False)
    else:
        skip("empty_document")


def read_jsonl(stream: IO[bytes], skip: Skip, text_field: str = "text") -> Iterator[Document]:
    """One JSON object per line, its text (paragraphs split at blank lines) in text_field."""
    ordinal = 0
    for raw in _lines(stream, skip):
        if not raw.strip():
            continue
        line = _decode(raw, skip)
        if line is None:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            skip("invalid_json")
            continue
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            skip("missing_text_field")
            continue
        paragraphs = _paragraphs(text.splitlines())
        if not paragraphs:
            skip("empty_document")
            continue
        yield Document(ordinal, paragraphs, False)
        ordinal += 1


def read_wikipedia(stream: IO[bytes], skip: Skip) -> Iterator[Document]:
    """Articles of a pages-articles dump, cleaned to paragraphs (see pipeline.wikitext)."""
    ordinal = 0
    for xml in wikitext.iter_page_xml(_lines(stream, skip),
                                      on_unclosed=lambda: skip("unclosed_page")):
        try:
            page = wikitext.parse_page(xml)
        except wikitext.PageError:
            skip("malformed_page")
            continue
        if page is None:
            skip("redirect_or_non_article")
            continue
        paragraphs = wikitext.clean_wikitext(normalize(page.text))
        if not paragraphs:
            skip("empty_document")
            continue
        yield Document(ordinal, paragraphs, False)
        ordinal += 1


def is_splittable(path: str, input_format: str) -> bool:
    return input_format in SPLITTABLE and not path.endswith((".bz2", ".gz"))


def plan_ranges(path: str, size: int, input_format: str, split_bytes: int) -> List[tuple]:
    """(start, end) byte ranges of a file, each read by one worker; (0, None) = whole file.

    The plan depends only on the file size and split_bytes, never on the
    number of workers, so document keys (and the output bytes) do not either.
    """
    if not is_splittable(path, input_format) or size <= split_bytes:
        return [(0, None)]
    return [(start, min(start + split_bytes, size)) for start in range(0, size, split_bytes)]


def owned_lines(fileobj: IO[bytes], start: int, end: Optional[int],
                by_document: bool) -> Iterator[bytes]:
    """The lines of the documents a byte range owns.

    A line (JSONL) belongs to the range holding its first byte. A document of
    the sentences format belongs to the range holding the first byte of the
    blank line before it (the first document to the range at 0), so every
    document is read exactly once, wholly, by one range.
    """
    offset = start
    if start > 0:
        fileobj.seek(start - 1)
        if fileobj.read(1) != b"\n":
            offset += len(fileobj.readline())  # finish the line that straddles start
    else:
        fileobj.seek(0)
    seen_separator = start == 0 or not by_document
    while True:
        line = fileobj.readline()
        if not line:
            return
        blank = not line.strip()
        if end is not None and offset >= end and (blank or not by_document):
            return  # the next document is the next range's
        if seen_separator:
            yield line
        elif blank:
            seen_separator = True
        offset += len(line)


def read_documents(path: str, fileobj: IO[bytes], input_format: str, skip: Skip,
                   text_field: str = "text", start: int = 0,
                   end: Optional[int] = None) -> Iterator[Document]:
    """The documents of one input file.

    Args:
        path: the file's name (its suffix picks the decompression).
        fileobj: the open binary file.
        input_format: one of FORMATS.
        skip: called with a reason for every record skipped.
        text_field: the JSONL field holding the text.
        start, end: read only the documents of this byte range (see
            owned_lines; splittable formats only).

    Example:
        >>> import io
        >>> docs = read_documents("a.txt", io.BytesIO(b"One.\\nTwo.\\n\\nThree.\\n"), "sentences", print)
        >>> [d.units for d in docs]
        [['One.', 'Two.'], ['Three.']]
    """
    if start or end is not None:
        if not is_splittable(path, input_format):
            raise ValueError(f"{path}: {input_format} files cannot be read in byte ranges")
        stream = owned_lines(fileobj, start, end, by_document=input_format == "sentences")
    else:
        stream = open_compressed(path, fileobj)
    if input_format == "sentences":
        return read_sentences(stream, skip)
    if input_format == "books":
        return read_book(stream, skip)
    if input_format == "jsonl":
        return read_jsonl(stream, skip, text_field)
    if input_format == "wikipedia":
        return read_wikipedia(stream, skip)
    raise ValueError(f"--input_format must be one of {', '.join(FORMATS)}, got {input_format!r}")
