"""Statistics of generated instances against the configured rates, and traceability."""

import importlib.util
import random

import pytest

from pipeline.instances import InstanceConfig, SpecialIds, create_instances, truncate_pair
from pipeline.masking import MaskingConfig, mask_tokens

CLS, SEP, MASK = 2, 3, 4
FIRST_CONTENT = 10


def synthetic_corpus(num_docs=1000, seed=0):
    """Documents of 4-15 sentences of 5-25 tokens; every token id is unique, so
    each id tells its document and position."""
    rng = random.Random(seed)
    docs, where, next_id = [], {}, FIRST_CONTENT
    for d in range(num_docs):
        doc, pos = [], 0
        for _ in range(rng.randint(4, 15)):
            sentence = list(range(next_id, next_id + rng.randint(5, 25)))
            for t in sentence:
                where[t] = (d, pos)
                pos += 1
            next_id += len(sentence)
            doc.append(sentence)
        docs.append(doc)
    return docs, where, next_id


@pytest.fixture(scope="module")
def generated():
    docs, where, vocab_size = synthetic_corpus()
    ids = SpecialIds(CLS, SEP, MASK, [False] * vocab_size, list(range(FIRST_CONTENT, vocab_size)))
    config = InstanceConfig(max_seq_length=128, short_seq_prob=0.1,
                            masked=MaskingConfig(0.15, 20))
    stats = {}
    rng = random.Random(12345)
    instances = [i for _ in range(3) for i in create_instances(docs, config, rng, ids, stats)]
    return instances, where, stats, config


def test_thousands_of_instances(generated):
    instances, _, stats, _ = generated
    assert len(instances) > 3000
    assert stats["instances"] == len(instances)


def test_masking_budget_rate_and_80_10_10(generated):
    instances, _, _, config = generated
    shown = {"mask": 0, "same": 0, "other": 0}
    masked = tokens = 0
    for inst in instances:
        n = len(inst.input_ids)
        budget = min(20, max(1, int(round(n * 0.15))))
        assert len(inst.masked_lm_positions) == budget
        assert inst.masked_lm_positions == sorted(set(inst.masked_lm_positions))
        masked += budget
        tokens += n
        for pos, original in zip(inst.masked_lm_positions, inst.masked_lm_ids):
            assert original not in (CLS, SEP)  # never [CLS] or [SEP]
            seen = inst.input_ids[pos]
            shown["mask" if seen == MASK else "same" if seen == original else "other"] += 1
    assert masked / tokens == pytest.approx(0.15, abs=0.005)
    total = sum(shown.values())
    assert shown["mask"] / total == pytest.approx(0.8, abs=0.01)
    assert shown["same"] / total == pytest.approx(0.1, abs=0.01)
    assert shown["other"] / total == pytest.approx(0.1, abs=0.01)


def test_nsp_balance_and_short_sequence_rate(generated):
    instances, _, stats, _ = generated
    labels = [i.next_sentence_label for i in instances]
    # Chunks of one sentence get a random B (the reference does the same); the
    # coin flip of every other pair is fair.
    forced = stats["nsp_forced_random"]
    flipped_random = sum(labels) - forced
    assert flipped_random / (len(labels) - forced) == pytest.approx(0.5, abs=0.02)
    assert stats["nsp_random_next"] == sum(labels)
    assert stats["short_targets"] / stats["targets"] == pytest.approx(0.1, abs=0.02)
    lengths = [len(i.input_ids) for i in instances]
    assert max(lengths) == 128
    # Half the short targets (uniform in [2, 125]) are under 64 tokens: >= 5% of
    # instances (document ends make more).
    assert sum(n < 64 for n in lengths) / len(lengths) > 0.04


def test_every_instance_traces_back_to_the_source_in_order(generated):
    instances, where, _, _ = generated
    for inst in instances:
        tokens = list(inst.input_ids)
        for pos, original in zip(inst.masked_lm_positions, inst.masked_lm_ids):
            tokens[pos] = original
        assert tokens[0] == CLS and tokens[-1] == SEP
        sep = tokens.index(SEP)
        a, b = tokens[1:sep], tokens[sep + 1:-1]
        assert a and b
        assert inst.segment_ids == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        for segment in (a, b):  # each segment: consecutive tokens of one document
            places = [where[t] for t in segment]
            assert len({d for d, _ in places}) == 1
            assert [p for _, p in places] == list(range(places[0][1], places[0][1] + len(places)))
        doc_a, end_a = where[a[-1]]
        doc_b, start_b = where[b[0]]
        if inst.next_sentence_label:
            assert doc_b != doc_a  # random next: another document
        else:
            assert doc_b == doc_a and start_b > end_a  # the actual continuation


def test_truncation_trims_the_longer_side_from_both_ends():
    rng = random.Random(0)
    a, b = list(range(100)), list(range(100, 110))
    truncate_pair(a, b, 50, rng)
    assert len(a) + len(b) == 50 and b == list(range(100, 110))
    assert a[0] > 0 and a[-1] < 99  # both ends were cut


def test_whole_word_and_ngram_masking_take_whole_words():
    # ids 10.. are words, 11 and 13 are "##" continuations: words [10 11] [12 13] [14]
    cont = [False] * 30
    cont[11] = cont[13] = True
    ids = [CLS, 10, 11, 12, 13, 14, SEP]
    for max_ngram in (0, 3):
        config = MaskingConfig(masked_lm_prob=0.6, max_predictions_per_seq=20,
                               do_whole_word_mask=True, max_ngram_size=max_ngram)
        for seed in range(50):
            _, positions, _ = mask_tokens(ids, config, random.Random(seed), cls_id=CLS, sep_id=SEP,
                                          mask_id=MASK, is_continuation=cont,
                                          replacement_ids=list(range(10, 30)))
            chosen = set(positions)
            assert (1 in chosen) == (2 in chosen) and (3 in chosen) == (4 in chosen)
            assert len(chosen) <= 4  # budget round(7 * 0.6) = 4


def test_no_nsp_packs_single_segments_and_dynamic_masking_leaves_masks_out():
    docs, _, vocab_size = synthetic_corpus(20)
    ids = SpecialIds(CLS, SEP, MASK, [False] * vocab_size, list(range(FIRST_CONTENT, vocab_size)))
    config = InstanceConfig(max_seq_length=64, next_sentence_prediction=False, masking="dynamic")
    out = list(create_instances(docs, config, random.Random(1), ids, {}))
    assert out and all(i.next_sentence_label is None and i.masked_lm_positions is None for i in out)
    assert all(i.input_ids[0] == CLS and i.input_ids[-1] == SEP and i.input_ids.count(SEP) == 1
               and len(i.input_ids) <= 64 and set(i.segment_ids) == {0} for i in out)


def test_a_bucket_of_one_document_never_fakes_a_negative():
    ids = SpecialIds(CLS, SEP, MASK, [False] * 100, list(range(10, 100)))
    stats = {}
    out = list(create_instances([[[10, 11, 12]]], InstanceConfig(max_seq_length=16),
                                random.Random(0), ids, stats))
    assert out == []  # one sentence, no other document: no pair can be made
    assert stats["nsp_negative_unavailable"] == 1


def test_packing_fills_sequences_with_consecutive_text_across_documents():
    docs, where, vocab_size = synthetic_corpus(300, seed=3)
    ids = SpecialIds(CLS, SEP, MASK, [False] * vocab_size, list(range(FIRST_CONTENT, vocab_size)))
    config = InstanceConfig(max_seq_length=128, next_sentence_prediction=False, packing=True,
                            masked=MaskingConfig(0.15, 20))
    rng, stats = random.Random(5), {}
    passes = [list(create_instances(docs, config, rng, ids, stats, pass_index=p))
              for p in range(2)]
    total = sum(len(s) for d in docs for s in d)
    for instances in passes:
        lengths = [len(i.input_ids) for i in instances]
        # Every sequence is full but the pass's last one: padding <= 1% of positions.
        assert lengths[:-1] == [128] * (len(lengths) - 1)
        assert sum(128 - n for n in lengths) <= 0.01 * 128 * len(lengths)
        stream = []
        for inst in instances:
            tokens = list(inst.input_ids)
            for pos, original in zip(inst.masked_lm_positions, inst.masked_lm_ids):
                tokens[pos] = original
            assert tokens[0] == CLS and inst.segment_ids == [0] * len(tokens)
            assert inst.document_ids[0] == 1 and len(inst.document_ids) == len(tokens)
            # Text is consecutive within a document; after a [SEP] the next document
            # starts at its beginning, and document_ids counts up by one exactly there.
            for k in range(2, len(tokens)):
                prev, cur = tokens[k - 1], tokens[k]
                step = inst.document_ids[k] - inst.document_ids[k - 1]
                if prev == SEP:
                    assert step == 1 and where[cur][1] == 0, k
                else:
                    assert step == 0, k
                    if cur != SEP:
                        assert where[cur] == (where[prev][0], where[prev][1] + 1), k
            stream.extend(t for t in tokens[1:] if t != SEP)
        # Each pass holds every token of the bucket exactly once.
        assert sorted(stream) == list(range(FIRST_CONTENT, FIRST_CONTENT + total))
    # A second pass starts elsewhere: other sequence boundaries, not copies.
    firsts = [i.input_ids[1:4] for i in passes[0]], [i.input_ids[1:4] for i in passes[1]]
    assert firsts[0] != firsts[1]
    assert stats["padding_positions"] == sum(128 - len(i.input_ids) for p in passes for i in p)


@pytest.mark.skipif(importlib.util.find_spec("official") is None,
                    reason="the peer generator (tf-models-official) is not installed")
def test_long_documents_give_the_reference_generators_statistics(monkeypatch):
    """Instance count and short-sequence fraction within 2% of the reference generator's
    (tf-models-official's create_instances_from_document, run here on the same documents
    and settings). Measured: 456,646 instances (0.995x), 44.7% short (0.988x); the old
    per-instance draw gives 0.79x the instances and 0.53x the short fraction.

    Long documents (20-40 sentences: ~9 instances each) are where the target-length draw
    matters. short_seq_prob 0.5 and 48 passes over 1,000 documents (48,000 target draws,
    ~450,000 instances per generator) put one standard deviation of each side's short
    fraction at ~0.5% (3.5% at 1,000 draws, measured over 12 seeds), so 2% is ~3 sigma
    of the difference; the seeds are fixed, so the outcome is too.
    """
    from official.nlp.data import create_pretraining_data as reference

    # Masking does not change which instances are made: left out of both, for speed.
    monkeypatch.setattr(reference, "create_masked_lm_predictions",
                        lambda tokens, *args, **kwargs: (tokens, [], []))
    rng = random.Random(7)
    docs, next_id = [], FIRST_CONTENT
    for _ in range(1000):
        doc = []
        for _ in range(rng.randint(20, 40)):
            length = rng.randint(5, 30)
            doc.append(list(range(next_id, next_id + length)))
            next_id += length
        docs.append(doc)
    passes, max_seq_length, short_seq_prob = 48, 128, 0.5

    def summary(lengths):
        return len(lengths), sum(n < max_seq_length // 2 for n in lengths) / len(lengths)

    text_docs = [[[str(t) for t in s] for s in d] for d in docs]
    peer_rng = random.Random(12345)
    peer = summary([len(inst.tokens) for _ in range(passes) for index in range(len(docs))
                    for inst in reference.create_instances_from_document(
                        text_docs, index, max_seq_length, short_seq_prob, 0.15, 20, ["x"],
                        peer_rng)])
    ids = SpecialIds(CLS, SEP, MASK, [False] * next_id, list(range(FIRST_CONTENT, next_id)))
    ours = {}
    for draw in ("per_document", "per_instance"):
        config = InstanceConfig(max_seq_length=max_seq_length, short_seq_prob=short_seq_prob,
                                masking="dynamic", target_length_draw=draw)
        our_rng = random.Random(12345)
        ours[draw] = summary([len(inst.input_ids) for p in range(passes)
                              for inst in create_instances(docs, config, our_rng, ids, {}, p)])
    count, short = ours["per_document"]
    assert count / peer[0] == pytest.approx(1, abs=0.02), (ours, peer)
    assert short / peer[1] == pytest.approx(1, abs=0.02), (ours, peer)
    # The flag keeps the old behaviour, which this test tells apart.
    assert ours["per_instance"][0] / peer[0] < 0.95 and ours["per_instance"][1] / peer[1] < 0.8


@pytest.mark.parametrize("layout", ["pair", "pair_known", "packed"])
def test_single_token_masking_draws_every_candidate_equally_often(layout):
    a, b = list(range(100, 110)), list(range(200, 211))
    if layout == "packed":  # [CLS] A [SEP] B [SEP] with a [SEP] inside: the general path
        ids = [CLS, *a, SEP, *b[:5], SEP, *b[5:], SEP]
    else:
        ids = [CLS, *a, SEP, *b, SEP]
    first_sep = len(a) + 1 if layout == "pair_known" else None
    candidates = [i for i, t in enumerate(ids) if t not in (CLS, SEP)]
    rng, counts = random.Random(5), [0] * len(ids)
    draws = 20000
    config = MaskingConfig(masked_lm_prob=0.12, max_predictions_per_seq=20)  # budget 3
    for _ in range(draws):
        _, positions, originals = mask_tokens(
            ids, config, rng, cls_id=CLS, sep_id=SEP, mask_id=MASK, is_continuation=[False] * 300,
            replacement_ids=list(range(FIRST_CONTENT, 300)), first_sep=first_sep)
        assert len(positions) == 3 and originals == [ids[p] for p in positions]
        for p in positions:
            counts[p] += 1
    expected = draws * 3 / len(candidates)  # ~2,860; one sigma ~50
    assert all(counts[i] == 0 for i in range(len(ids)) if i not in candidates)
    assert all(abs(counts[i] - expected) < 0.06 * expected for i in candidates), counts
