import pytest

from pipeline.inputs import UsageError
from pipeline.tokenization import BertTokenizer
from pipeline.vocab_learner import build_vocab, iter_texts, special_tokens
from tests.conftest import FIXTURES, run_module

CORPUS = FIXTURES / "corpus"


def test_bert_layout_and_exact_size():
    vocab = build_vocab([str(CORPUS / "sentences.txt")], input_format="sentences",
                        vocab_size=180, num_unused=5, min_frequency=1)
    assert len(vocab) == 180 and len(set(vocab)) == 180
    assert vocab[:10] == ["[PAD]", "[unused0]", "[unused1]", "[unused2]", "[unused3]",
                          "[unused4]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert any(t.startswith("##") for t in vocab)
    assert "the" in vocab and "The" not in vocab  # lower-cased
    # the learned vocabulary serves our tokenizer with few unknowns
    tok = BertTokenizer(vocab)
    ids = tok.tokenize_batch([l for l in (CORPUS / "sentences.txt").read_text().splitlines() if l])
    assert sum(i == tok.unk_id for s in ids for i in s) == 0


def test_default_layout_matches_bert():
    specials = special_tokens(99)
    assert specials.index("[UNK]") == 100 and specials.index("[MASK]") == 103


def test_too_small_and_empty_inputs(tmp_path):
    with pytest.raises(UsageError, match="leaves no room"):
        build_vocab([str(CORPUS / "sentences.txt")], input_format="sentences", vocab_size=50)
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"x": 1}\n')
    with pytest.raises(UsageError, match="no documents were read"):
        build_vocab([str(empty)], input_format="jsonl", vocab_size=200, num_unused=0)


def test_sampling_takes_a_fixed_subset_and_the_order_is_canonical():
    files = [str(CORPUS / "sentences.txt")]
    pairs = [(files[0], "sentences")]
    first = list(iter_texts(pairs, "text", 0.5, {}))
    assert first == list(iter_texts(pairs, "text", 0.5, {}))
    assert 0 < len(first) < len(list(iter_texts(pairs, "text", 1.0, {})))
    # HF's trainer breaks ties at random (a few entries differ run to run, see
    # vocab_learner.build_vocab); the order of what it learns is canonical
    learned = build_vocab(files, input_format="sentences", vocab_size=400, num_unused=0,
                          min_frequency=1)[5:]
    singles = [t for t in learned if len(t) == 1]
    assert learned[:len(singles)] == sorted(singles)
    rest = [t for t in learned if len(t) > 1 and not (t.startswith("##") and len(t) == 3)]
    assert learned[-len(rest):] == sorted(rest)


def test_command_line(tmp_path):
    out = tmp_path / "vocab.txt"
    run_module("pipeline.build_vocab", "--input_file", CORPUS / "wiki.xml", "--input_format",
               "wikipedia", "--vocab_size", 150, "--num_unused", 0, "--min_frequency", 1,
               "--output_file", out)
    lines = out.read_text().splitlines()
    assert lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(lines) <= 150
