"""What a job reads: `FORMAT:pattern` input specs, the files they match, and the work
items (byte ranges, book groups) the readers take. The data job and the vocabulary job
both start here.
"""

import os
from typing import List, Sequence, Tuple

from apache_beam.io.filesystems import FileSystems

from pipeline import readers


class UsageError(Exception):
    """A flag or input a user can fix; printed as one line."""


def define_flags(flags) -> None:
    """--input_file, --input_format, --text_field (the data job and clean_corpus)."""
    flags.DEFINE_list("input_file", None,
                      "Comma-separated input files or globs; FORMAT:pattern sets one pattern's "
                      "format (e.g. wikipedia:dump.xml.bz2,books:plays/*.txt).")
    flags.DEFINE_enum("input_format", "sentences", list(readers.FORMATS),
                      "How input files without a FORMAT: prefix are laid out.")
    flags.DEFINE_string("text_field", "text", "JSONL field holding a document's text.")


def check_output_dir(output_dir: str, complete: bool, overwrite: bool, what: str) -> None:
    """Refuses to replace a complete `what` without --overwrite, and a directory that is not
    one at all (replacing it would delete it: it may be anything the flag was pointed at)."""
    if complete and not overwrite:
        raise UsageError(f"{output_dir} already holds a complete {what}; pass --overwrite "
                         "to replace it")
    if not complete and "://" not in output_dir and os.path.isdir(output_dir) and \
            os.listdir(output_dir):
        raise UsageError(f"{output_dir} exists and is not a {what} directory (no COMPLETED); "
                         "remove it or choose another --output_dir")


def parse_input(pattern: str, default_format: str) -> Tuple[str, str]:
    """"FORMAT:pattern" -> (format, pattern); a bare pattern takes default_format.

    Example:
        >>> parse_input("books:data/plays/*.txt", "sentences"), parse_input("gs://b/x", "jsonl")
        (('books', 'data/plays/*.txt'), ('jsonl', 'gs://b/x'))
    """
    prefix, sep, rest = pattern.partition(":")
    if sep and prefix in readers.FORMATS:
        return prefix, rest
    return default_format, pattern


def match_inputs(patterns: Sequence[str], default_format: str = "sentences"
                 ) -> List[Tuple[str, int, str]]:
    """(path, size, format) of every file the patterns match, sorted per pattern.

    The order fixes document keys, so it must not depend on the file system's listing.
    """
    parsed = [parse_input(p, default_format) for p in patterns]
    files = []
    for (fmt, pattern), result in zip(parsed, FileSystems.match([p for _, p in parsed])):
        matched = sorted((m.path, m.size_in_bytes, fmt) for m in result.metadata_list)
        if not matched:
            raise UsageError(f"--input_file: no files match {pattern!r}")
        for path, _, _ in matched:
            if "://" not in path and os.path.isdir(path):
                raise UsageError(f"--input_file: {path} is a directory; give its files "
                                 f"(e.g. '{path.rstrip('/')}/*.txt')")
        files.extend(matched)
    return files


def plan_work(files: Sequence[Tuple[str, int, str]], split_mb: int,
              books_per_item: int) -> List[List[tuple]]:
    """Work items: lists of (file index, path, start, end, format) read by one worker.

    Splittable files are cut in byte ranges of split_mb, one item each;
    wikipedia files are one item each; book files (one document each) are
    grouped books_per_item to an item, so that a bucket holds several books
    for NSP negatives to come from.
    """
    items: List[List[tuple]] = []
    books: List[tuple] = []
    for index, (path, size, fmt) in enumerate(files):
        for start, end in readers.plan_ranges(path, size, fmt, split_mb << 20):
            if fmt == "books":
                books.append((index, path, start, end, fmt))
                if len(books) == books_per_item:
                    items.append(books)
                    books = []
            else:
                items.append([(index, path, start, end, fmt)])
    if books:
        items.append(books)
    return items

