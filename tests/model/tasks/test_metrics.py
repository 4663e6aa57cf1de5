"""Metrics against values worked out by hand (in the comments)."""

import pytest

from model.tasks import metrics as M


def test_glue_metrics_by_hand():
    gold, pred = [1, 0, 1, 1], [1, 1, 1, 0]
    assert M.accuracy(gold, pred) == 0.5
    # tp 2, fp 1, fn 1: 2*2 / (2*2 + 1 + 1)
    assert M.binary_f1(gold, pred) == pytest.approx(4 / 6)
    # tp 2, tn 0, fp 1, fn 1: (2*0 - 1*1) / sqrt(3 * 3 * 1 * 1)
    assert M.matthews_corrcoef(gold, pred) == pytest.approx(-1 / 3)
    assert M.matthews_corrcoef([1, 1, 0], [1, 1, 1]) == 0.0  # undefined -> 0, as sklearn
    # dx = -1,0,1; dy = -4/3,-1/3,5/3: sxy 3, sxx 2, syy 42/9
    assert M.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / (2 * 42 / 9) ** 0.5)
    # ranks of 10,20,20,40 are 1,2.5,2.5,4: sxy 4.5, sxx 5, syy 4.5
    assert M.spearman([1, 2, 3, 4], [10, 20, 20, 40]) == pytest.approx(4.5 / 22.5 ** 0.5)


def test_entity_scores_as_seqeval():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG"]]
    # gold {PER 0-1, LOC 3} + {ORG 1}; predicted {PER 0-1, ORG 3} + {ORG 1}: 2 of 3 each way
    s = M.entity_scores(gold, pred)
    assert (s["precision"], s["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert s["f1_per_type"] == {"LOC": 0.0, "ORG": pytest.approx(2 / 3, abs=1e-4), "PER": 1.0}
    # seqeval's default mode: I- after O opens a chunk; a type change closes one.
    assert M.bio_entities(["I-PER", "I-PER", "O"]) == {("PER", 0, 1)}
    assert M.bio_entities(["B-PER", "I-LOC", "I-LOC"]) == {("PER", 0, 0), ("LOC", 1, 2)}
    assert M.bio_entities(["B-PER", "B-PER"]) == {("PER", 0, 0), ("PER", 1, 1)}


def test_squad_official_scores():
    golds = {"a": ["the Denver Broncos", "Denver Broncos"], "b": ["Santa Clara, California"],
             "c": []}
    # a: exact after normalization (article dropped); b: "Santa Clara" is 2 of 3 gold
    # tokens: P 1, R 2/3, F1 0.8; c: unanswerable, "" is right.
    s = M.squad_scores(golds, {"a": "Denver Broncos.", "b": "Santa Clara", "c": ""})
    assert s["exact_match"] == pytest.approx(100 * 2 / 3)
    assert s["f1"] == pytest.approx(100 * (1 + 0.8 + 1) / 3)
    assert s["NoAns_exact"] == 100.0 and s["HasAns_exact"] == 50.0
    assert M.squad_scores({"c": []}, {"c": "flour"})["exact_match"] == 0.0
