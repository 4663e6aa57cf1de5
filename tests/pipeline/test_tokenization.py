"""Our tokenizer against the reference FullTokenizer, on the real lead sections."""

import importlib.util
import json

import pytest

from pipeline.text import normalize
from pipeline.tokenization import BertTokenizer, VocabError, load_vocab
from tests.conftest import FIXTURES, ROOT

DATA = ROOT / "data"


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


@pytest.mark.data
@pytest.mark.skipif(importlib.util.find_spec("official") is None,
                    reason="the reference tokenizer (tf-models-official) is not installed")
@pytest.mark.skipif(not (DATA / "wiki_leads" / ".done").exists(),
                    reason="sample data not fetched: run `make data`")
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
