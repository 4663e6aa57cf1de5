"""Fine-tuning metrics, computed as their published references compute them.

GLUE (accuracy, binary F1, Matthews correlation, Pearson, Spearman), seqeval's
entity-level precision/recall/F1 for BIO tags (default mode: an I- tag that
does not continue a chunk of its type starts one), and the official SQuAD
v1.1/v2.0 exact match and F1 (answers normalized: lower case, no punctuation,
no articles a/an/the, single spaces; max over the gold answers; an
unanswerable question scores 1 only for an empty prediction).
"""

import collections
import math
import re
import string
from typing import Dict, List, Sequence, Set, Tuple


def accuracy(labels: Sequence, predictions: Sequence) -> float:
    """Fraction of equal pairs.

    Example:
        >>> accuracy([1, 0, 1], [1, 1, 1])
        0.6666666666666666
    """
    if not labels:
        return 0.0
    return sum(a == b for a, b in zip(labels, predictions)) / len(labels)


def binary_f1(labels: Sequence, predictions: Sequence, positive=1) -> float:
    """F1 of the positive class (GLUE's MRPC and QQP F1)."""
    tp = sum(a == positive and b == positive for a, b in zip(labels, predictions))
    fp = sum(a != positive and b == positive for a, b in zip(labels, predictions))
    fn = sum(a == positive and b != positive for a, b in zip(labels, predictions))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def matthews_corrcoef(labels: Sequence, predictions: Sequence) -> float:
    """Matthews correlation of two binary labelings (CoLA); 0 when undefined (sklearn's rule)."""
    classes = sorted(set(labels) | set(predictions))
    if len(classes) > 2:
        raise ValueError("matthews_corrcoef here is binary; got classes %s" % classes)
    pos = classes[-1]
    tp = sum(a == pos and b == pos for a, b in zip(labels, predictions))
    tn = sum(a != pos and b != pos for a, b in zip(labels, predictions))
    fp = sum(a != pos and b == pos for a, b in zip(labels, predictions))
    fn = sum(a == pos and b != pos for a, b in zip(labels, predictions))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation (STS-B); 0 when either side is constant."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return 0.0 if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def _ranks(values: Sequence[float]) -> List[float]:
    """1-based ranks, ties given their average rank (as scipy.stats.rankdata)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation: Pearson of the (tie-averaged) ranks."""
    return pearson(_ranks(x), _ranks(y))


def bio_entities(tags: Sequence[str]) -> Set[Tuple[str, int, int]]:
    """(type, start, end) chunks of one BIO sequence, as seqeval's default mode finds them."""
    chunks = set()
    kind, start = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, typ = tag.partition("-") if tag != "O" else ("O", "", "")
        ends = kind is not None and (prefix in ("O", "B", "S") or typ != kind)
        if ends:
            chunks.add((kind, start, i - 1))
            kind = None
        if prefix in ("B", "S") or (prefix in ("I", "E") and kind is None):
            kind, start = typ, i
    return chunks


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> Dict:
    """Entity-level micro precision, recall and F1 over sentences (seqeval's classification_report
    micro avg), plus per-type F1."""
    tp = collections.Counter()
    n_gold = collections.Counter()
    n_pred = collections.Counter()
    for g, p in zip(gold, predicted):
        ge, pe = bio_entities(g), bio_entities(p)
        for e in ge:
            n_gold[e[0]] += 1
        for e in pe:
            n_pred[e[0]] += 1
        for e in ge & pe:
            tp[e[0]] += 1

    def prf(t, ng, np_):
        p = t / np_ if np_ else 0.0
        r = t / ng if ng else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    precision, recall, f1 = prf(sum(tp.values()), sum(n_gold.values()), sum(n_pred.values()))
    per_type = {k: round(prf(tp[k], n_gold[k], n_pred[k])[2], 4)
                for k in sorted(set(n_gold) | set(n_pred))}
    return {"precision": precision, "recall": recall, "f1": f1, "f1_per_type": per_type}


def normalize_answer(s: str) -> str:
    """The official SQuAD normalization."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:  # v2: both empty is a match
        return float(p == g)
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_scores(golds: Dict[str, List[str]], predictions: Dict[str, str]) -> Dict[str, float]:
    """Exact match and F1 in percent (official script), with v2's has-/no-answer splits.

    Args:
        golds: question id -> gold answer texts ([] for unanswerable).
        predictions: question id -> predicted text ("" = no answer).
    """
    em, f1 = {}, {}
    for qid, answers in golds.items():
        answers = [a for a in answers if normalize_answer(a)] or [""]
        pred = predictions.get(qid, "")
        em[qid] = max(float(normalize_answer(pred) == normalize_answer(a)) for a in answers)
        f1[qid] = max(squad_f1(pred, a) for a in answers)
    n = len(golds) or 1
    out = {"exact_match": 100 * sum(em.values()) / n, "f1": 100 * sum(f1.values()) / n}
    has = [q for q, a in golds.items() if any(normalize_answer(x) for x in a)]
    no = [q for q in golds if q not in set(has)]
    if no:
        out.update(HasAns_exact=100 * sum(em[q] for q in has) / max(len(has), 1),
                   HasAns_f1=100 * sum(f1[q] for q in has) / max(len(has), 1),
                   NoAns_exact=100 * sum(em[q] for q in no) / len(no))
    return out
