"""Our tokenizer against the reference FullTokenizer, on the real lead sections."""

import importlib.util
import json

import pytest

from pipeline.text import normalize
from pipeline.tokenization import BertTokenizer, VocabError, load_vocab
from tests.conftest import FIXTURES, ROOT

DATA = ROOT / "data"


def needs_reference_and_leads(test):
    """The real lead sections and the reference FullTokenizer (tf-models-official)."""
    for mark in (
            pytest.mark.skipif(not (DATA / "wiki_leads" / ".done").exists(),
                               reason="sample data not fetched: run `make data`"),
            pytest.mark.skipif(importlib.util.find_spec("official") is None,
                               reason="the reference tokenizer (tf-models-official) is not "
                               "installed"),
            pytest.mark.data):
        test = mark(test)
    return test


def test_fixture_vocab_wordpieces_and_unknown_characters():
    tok = BertTokenizer(load_vocab(str(FIXTURES / "vocab.txt")))
    vocab = tok.vocab
    (ids,) = tok.tokenize_batch(["Bakers knead\u00a0galaxy \u2603!"])
    # "bakers" -> baker ##s; the no-break space splits words; the snowman has no piece
    assert [vocab[i] for i in ids] == ["baker", "##s", "knead", "g", "##a", "##l", "##a", "##x",
                                       "##y", "[UNK]", "!"]
    assert tok.cls_id == 4 and tok.sep_id == 5 and tok.mask_id == 6
    assert all(not vocab[i].startswith("[") for i in tok.replacement_ids)


def test_literal_special_tokens_in_text_are_plain_text_as_in_the_reference():
    tok = BertTokenizer(load_vocab(str(FIXTURES / "vocab.txt")))
    (ids,) = tok.tokenize_batch(["the [MASK] sea"])
    # the reference's FullTokenizer splits "[MASK]" into "[", "mask", "]"; "[" is
    # not in the fixture vocab, "mask" is spelled with pieces
    assert tok.mask_id not in ids
    assert [tok.vocab[i] for i in ids][:2] == ["the", "[UNK]"]


def test_vocab_without_special_tokens_is_refused(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("the\ncat\n")
    with pytest.raises(VocabError, match=r"lacks BERT's special tokens \['\[PAD\]'"):
        BertTokenizer(load_vocab(str(path)), source=str(path))
    with pytest.raises(VocabError, match="cannot read vocabulary file"):
        load_vocab(str(tmp_path / "missing.txt"))


@needs_reference_and_leads
def test_ids_equal_the_reference_on_every_lead_section():
    from official.nlp.tools import tokenization

    vocab_file = str(DATA / "vocab" / "uncased_vocab.txt")
    reference = tokenization.FullTokenizer(vocab_file, do_lower_case=True)
    ours = BertTokenizer(load_vocab(vocab_file), do_lower_case=True)
    lines = [json.loads(l)["text"] for l in (DATA / "wiki_leads" / "leads.jsonl").open()]
    assert len(lines) == 10033
    # and text that spells out special tokens, which a tokenizer must not take as them
    lines.append("BERT replaces 15% of tokens with [MASK]; inputs start with [CLS] and [SEP].")
    got = ours.tokenize_batch([normalize(line) for line in lines])
    differ = [line for line, ids in zip(lines, got)
              if ids != reference.convert_tokens_to_ids(reference.tokenize(line))]
    rate = 1 - len(differ) / len(lines)
    print(f"agreement with FullTokenizer: {rate:.4%} of {len(lines)} lines")
    assert not differ, f"{len(differ)} lines differ, first: {differ[0][:200]!r}"


@needs_reference_and_leads
def test_sentences_as_the_pipeline_cuts_them_equal_the_reference_on_both_paths():
    """The job tokenizes sentences: most are printable ASCII and take the regex +
    word-cache path, the rest the Rust tokenizer; both must give the reference's ids,
    cased and uncased, and with the cache cold, warm, or cleared when full."""
    from official.nlp.tools import tokenization

    from pipeline import tokenization as ours_module
    from pipeline.text import split_sentences

    vocab_file = str(DATA / "vocab" / "uncased_vocab.txt")
    lines = [json.loads(l)["text"] for l in (DATA / "wiki_leads" / "leads.jsonl").open()]
    sentences = split_sentences(normalize(line) for line in lines[:4000])
    sentences += ["x" * 100, "a_b-c~d{e}f|g\\\\h^i`j", "  two  spaces ", "", "UPPER Case 42nd"]
    fast = sum(s.isascii() and s.isprintable() for s in sentences)
    assert 0.8 < fast / len(sentences) < 1  # both paths are exercised
    for lower in (True, False):
        reference = tokenization.FullTokenizer(vocab_file, do_lower_case=lower)
        ours = BertTokenizer(load_vocab(vocab_file), do_lower_case=lower)
        expected = [reference.convert_tokens_to_ids(reference.tokenize(s)) for s in sentences]
        assert ours.tokenize_batch(sentences) == expected  # cold cache
        assert ours.tokenize_batch(sentences) == expected  # warm
        # Longer words are [UNK] on both paths, as in serving (model/networks/preprocessing.py) and
        # Hugging Face; FullTokenizer would cut them into pieces (up to 400 characters).
        assert ours.tokenize_batch(["x" * 101, "\u00e9" + "x" * 100]) == [[ours.unk_id]] * 2
        small = ours_module._CACHE_WORDS
        try:
            ours_module._CACHE_WORDS = 50
            ours._cache.clear()
            assert [ids for i in range(0, len(sentences), 500)
                    for ids in ours.tokenize_batch(sentences[i:i + 500])] == expected
            # cleared whenever it would pass 50 words: at most one batch's words remain
            assert len(ours._cache) <= len({w for s in sentences[-500:] for w in s.split()}) * 3
        finally:
            ours_module._CACHE_WORDS = small
