"""Text normalization and sentence splitting.

Sentence splitter: blingfire (a finite-state splitter in C++). Measured on
4.9 MB of Wikipedia lead sections on this machine (shared/MEASURED.md):
blingfire ~15 MB/s, NLTK Punkt ~4.5 MB/s, spaCy's rule-based sentencizer
~1.6 MB/s, pysbd ~0.2 MB/s; blingfire also keeps abbreviations such as
"Dr." and "D.C." inside their sentence.
"""

import unicodedata
from typing import Iterable, List

import blingfire


def normalize(text: str) -> str:
    """NFC-normalized text (composed characters; the tokenizer lower-cases and
    strips accents itself, as BERT's does)."""
    return unicodedata.normalize("NFC", text)


def split_sentences(paragraphs: Iterable[str]) -> List[str]:
    """Sentences of each paragraph, in order; a sentence never spans paragraphs.

    Example:
        >>> split_sentences(["Dr. Smith came. He left!", "Next one?"])
        ['Dr. Smith came.', 'He left!', 'Next one?']
    """
    sentences: List[str] = []
    for paragraph in paragraphs:
        paragraph = " ".join(paragraph.split())  # blingfire splits at newlines too
        if not paragraph:
            continue
        for sentence in blingfire.text_to_sentences(paragraph).split("\n"):
            sentence = sentence.strip()
            if sentence:
                sentences.append(sentence)
    return sentences
