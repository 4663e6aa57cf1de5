"""Masked-LM predictions: which positions to mask and what the model sees there.

google-research/bert's rule: a budget of round(len * masked_lm_prob) tokens
(at least 1, at most max_predictions_per_seq), never [CLS] or [SEP] (and
never padding, which is added later); of the chosen tokens 80% become
[MASK], 10% a random token, 10% stay unchanged. Whole-word masking takes a
word's WordPieces together; n-gram masking (Model Garden's
`--max_ngram_size`) takes up to n consecutive whole words at once, shorter
n-grams being likelier (p(n) proportional to 1/n).
"""

import dataclasses
import random
from typing import List, Optional, Sequence, Tuple

from tfrecords.generation import DEFAULT_MASKED_LM_PROB, DEFAULT_MAX_PREDICTIONS_PER_SEQ


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
    """How to mask.

    Args:
        masked_lm_prob: the fraction of tokens to predict.
        max_predictions_per_seq: the most predictions per instance.
        do_whole_word_mask: mask all WordPieces of a word together.
        max_ngram_size: when set, mask spans of up to this many whole words.
    """

    masked_lm_prob: float = DEFAULT_MASKED_LM_PROB
    max_predictions_per_seq: int = DEFAULT_MAX_PREDICTIONS_PER_SEQ
    do_whole_word_mask: bool = False
    max_ngram_size: int = 0


def _word_groups(ids: Sequence[int], special: Tuple[int, int], is_continuation: Sequence[bool],
                 whole_word: bool) -> List[List[int]]:
    """Candidate positions grouped by word (or one per token), in order."""
    groups: List[List[int]] = []
    previous_special = True
    for index, token in enumerate(ids):
        if token in special:
            previous_special = True
            continue
        if whole_word and groups and not previous_special and is_continuation[token]:
            groups[-1].append(index)
        else:
            groups.append([index])
        previous_special = False
    return groups


def _ngram_candidates(groups: List[List[int]], ids: Sequence[int], special, max_n: int,
                      rng: random.Random) -> List[List[int]]:
    """Spans of 1..max_n consecutive words (never across [SEP]), in random order."""
    weights = [1.0 / n for n in range(1, max_n + 1)]
    starts = list(range(len(groups)))
    rng.shuffle(starts)
    spans = []
    for start in starts:
        n = rng.choices(range(1, max_n + 1), weights=weights)[0]
        span = list(groups[start])
        for k in range(start + 1, min(start + n, len(groups))):
            nxt = groups[k]
            # consecutive words only: nothing special between them
            if any(ids[i] in special for i in range(span[-1] + 1, nxt[0])):
                break
            span.extend(nxt)
        spans.append(span)
    return spans


def mask_tokens(ids: List[int], config: MaskingConfig, rng: random.Random, *, cls_id: int,
                sep_id: int, mask_id: int, is_continuation: Sequence[bool],
                replacement_ids: Sequence[int], first_sep: Optional[int] = None
                ) -> Tuple[List[int], List[int], List[int]]:
    """Masks an instance's ids.

    Args:
        ids: [CLS] A [SEP] B [SEP] token ids (not padded).
        config: rates and modes.
        rng: the instance's random source.
        cls_id, sep_id, mask_id: special token ids.
        is_continuation: per vocab id, True for "##" pieces.
        replacement_ids: ids a random replacement draws from.
        first_sep: the index of the first [SEP] when the caller knows that ids are exactly
            [CLS] A [SEP] or [CLS] A [SEP] B [SEP] (saves scanning them).

    Returns:
        (masked ids, positions sorted ascending, original ids at those positions).

    Example:
        >>> out, pos, orig = mask_tokens([2, 10, 11, 12, 3], MaskingConfig(masked_lm_prob=0.4),
        ...     random.Random(1), cls_id=2, sep_id=3, mask_id=4,
        ...     is_continuation=[False] * 20, replacement_ids=list(range(5, 20)))
        >>> len(pos), all(p not in (0, 4) for p in pos)
        (2, True)
    """
    special = (cls_id, sep_id)
    whole_word = config.do_whole_word_mask or config.max_ngram_size > 1
    budget = min(config.max_predictions_per_seq,
                 max(1, int(round(len(ids) * config.masked_lm_prob))))
    if not whole_word:
        # Single tokens, drawn uniformly without replacement by rejection: int(random() * n)
        # is one C call per draw, where rng.sample's _randbelow runs Python code per draw
        # (masking was a third of the job's CPU time with it).
        if first_sep is None and ids[:1] == [cls_id] and ids[-1] == sep_id and \
                ids.count(cls_id) == 1 and ids.count(sep_id) in (1, 2):
            first_sep = ids.index(sep_id)
        if first_sep is not None:
            # [CLS] A [SEP] (B [SEP]): candidate c is position c + 1 in A, c + 2 in B.
            a_end = first_sep
            count = len(ids) - (2 if first_sep == len(ids) - 1 else 3)
            position = None
        else:
            candidates = [i for i, t in enumerate(ids) if t != cls_id and t != sep_id]
            count = len(candidates)
            position = candidates.__getitem__
        take = min(budget, count)
        if take > count // 2:  # rejection would retry often: draw from the list instead
            picks = rng.sample(range(count), take)
        else:
            random_draw = rng.random
            drawn = {int(random_draw() * count) for _ in range(take)}
            while len(drawn) < take:  # a repeat: draw again
                drawn.add(int(random_draw() * count))
            picks = sorted(drawn)
        if position is None:
            chosen = [c + 1 if c < a_end - 1 else c + 2 for c in picks]
        else:
            chosen = [position(c) for c in picks]
    else:
        groups = _word_groups(ids, special, is_continuation, whole_word)
        if config.max_ngram_size > 1:
            spans = _ngram_candidates(groups, ids, special, config.max_ngram_size, rng)
        else:
            spans = groups
            rng.shuffle(spans)
        covered = set()
        chosen = []
        for group in spans:
            if len(chosen) >= budget:
                break
            if len(chosen) + len(group) > budget or any(i in covered for i in group):
                continue
            covered.update(group)
            chosen.extend(group)
    output = list(ids)
    random_draw, n_replacements = rng.random, len(replacement_ids)
    for index in chosen:
        r = random_draw()
        if r < 0.8:
            output[index] = mask_id
        elif r >= 0.9:  # 0.8 <= r < 0.9: kept unchanged
            output[index] = replacement_ids[int(random_draw() * n_replacements)]
    chosen.sort()
    return output, chosen, [ids[i] for i in chosen]
