"""Span extraction (SQuAD v1.1 / v2.0): start and end logits over the context's tokens.

    squad   tokens -> dense: start_logits, end_logits [B, L]

Features are run_squad.py's: windows of [CLS] question [SEP] context-span
[SEP] with a doc stride, each context token scored in the window where it
has the most context; answers are decoded n-best over all windows of a
question, "" (no answer) for v2 when the null score wins by more than
--null_score_diff_threshold. Served, the raw-text signature returns the best
span of one window, its text rebuilt from WordPieces.
"""

import collections
import dataclasses
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from model.networks.preprocessing import BertTextPreprocessor, trim_to_longest
from model.tasks import metrics as M
from model.tasks.base import (FinetuneTask, TaskData, TaskError, TaskSettings, batched_tokenize,
                              register, setting, softmax_ce)
from model.tasks.readers import SquadExample, read_squad


@dataclasses.dataclass(frozen=True)
class SquadSettings(TaskSettings):
    doc_stride: int = setting(128, "squad: stride between context windows.")
    max_query_length: int = setting(64, "squad: question tokens kept.")
    max_answer_length: int = setting(30, "squad: longest answer in tokens.")
    n_best_size: int = setting(20, "squad: start/end candidates.")
    null_score_diff_threshold: float = setting(
        0.0, "squad v2: answer nothing when the null score beats the best span by more.")


@register
class SquadTask(FinetuneTask):
    kind = "squad"
    task_names = ("squad",)
    primary_metric = "f1"
    uses_pooler = False
    per_token_outputs = ("start_logits", "end_logits")
    target_keys = ("start_positions", "end_positions")

    settings_type = SquadSettings

    def __init__(self, name, settings=None):
        super().__init__(name, settings)
        self.pairs = True
        s = self.s
        self.doc_stride, self.max_query_length = s.doc_stride, s.max_query_length
        self.max_answer_length, self.n_best_size = s.max_answer_length, s.n_best_size
        self.null_threshold = s.null_score_diff_threshold
        # Learned from the training set (fit); config.json carries it to serving.
        self.version_2 = bool(self.settings.get("version_2", False))
        if self.seq_length < self.max_query_length + 4:
            raise TaskError(f"--max_seq_length {self.seq_length} leaves no room for the "
                            f"context after --max_query_length {self.max_query_length} + 3")

    def config(self) -> dict:
        return dict(super().config(), version_2=self.version_2)

    def read(self, path):
        examples, stats, _ = read_squad(path)
        return examples, stats

    def fit(self, examples, path):
        self.version_2 = any(e.is_impossible for e in examples)

    def features(self, pre, examples, training):
        feats = squad_features(pre, examples, self.seq_length, self.doc_stride,
                               self.max_query_length, training)
        return TaskData("", examples, feats.arrays, extra=feats,
                        labelled=any(e.answers or e.is_impossible for e in examples))

    def head(self, encoder, inputs, cfg):
        both = self.dense(2, "span", encoder)(self.encode(encoder, inputs)["sequence_output"])
        return {"start_logits": both[..., 0], "end_logits": both[..., 1]}

    def loss_terms(self, outputs, batch):
        per = (softmax_ce(batch["start_positions"], outputs["start_logits"])
               + softmax_ce(batch["end_positions"], outputs["end_logits"])) / 2
        w = batch["weight"]
        return {"loss": (tf.reduce_sum(per * w), tf.reduce_sum(w))}

    def score(self, outputs, data):
        answers = squad_decode(data.extra, data.examples, outputs["start_logits"],
                               outputs["end_logits"], self.n_best_size, self.max_answer_length,
                               self.null_threshold, self.version_2)
        scores = {}
        if data.labelled:
            s = M.squad_scores({e.qid: [t for t, _ in e.answers] for e in data.examples}, answers)
            scores.update(s)
            scores["f1"] = s["f1"] / 100.0  # primary metric on the 0-1 scale of the rest
            scores["exact_match"] = s["exact_match"] / 100.0
        return scores, [{"id": e.qid, "answer": answers[e.qid]} for e in data.examples]

    # -- serving ---------------------------------------------------------------

    def serving_outputs(self, model, inputs):
        out = model(inputs, training=False)
        return {"start_logits": tf.cast(out["start_logits"], tf.float32),
                "end_logits": tf.cast(out["end_logits"], tf.float32)}

    def text_outputs(self, serving, inputs):
        x = trim_to_longest(self.pack(serving, inputs), multiple=serving.multiple)
        return self._best_span(serving, x)

    def _best_span(self, serving, x):
        """The best span of the context (segment 1, not its [SEP]), its text from WordPieces."""
        out = serving.outputs(x)
        s, e = out["start_logits"], out["end_logits"]
        context = tf.logical_and(x["segment_ids"] > 0, x["input_ids"] != serving.sep_id)
        L = tf.shape(s)[1]
        i = tf.range(L)
        ok = tf.logical_and(i[None, :, None] <= i[None, None, :],
                            i[None, None, :] - i[None, :, None] < self.max_answer_length)
        ok = tf.logical_and(ok, tf.logical_and(context[:, :, None], context[:, None, :]))
        scores = tf.where(ok, s[:, :, None] + e[:, None, :], -1e9)
        best = tf.argmax(tf.reshape(scores, [tf.shape(s)[0], -1]), -1, output_type=tf.int32)
        start, end = best // L, best % L
        best_score = tf.reduce_max(tf.reshape(scores, [tf.shape(s)[0], -1]), -1)
        span = tf.logical_and(i[None, :] >= start[:, None], i[None, :] <= end[:, None])
        tokens = tf.ragged.boolean_mask(tf.gather(serving.vocab, x["input_ids"]), span)
        text = tf.strings.regex_replace(tf.strings.reduce_join(tokens, axis=1, separator=" "),
                                        " ##", "")
        no_answer = tf.logical_or(s[:, 0] + e[:, 0] > best_score,
                                  tf.logical_not(tf.reduce_any(context, 1))) \
            if self.version_2 else tf.logical_not(tf.reduce_any(context, 1))
        return dict(out, input_ids=x["input_ids"], answer_start=tf.where(no_answer, 0, start),
                    answer_end=tf.where(no_answer, 0, end),
                    answer=tf.where(no_answer, "", text), answer_score=best_score)


@dataclasses.dataclass
class SquadFeatures:
    arrays: Dict[str, np.ndarray]
    example_index: List[int]  # feature -> example
    token_to_word: List[Dict[int, int]]  # feature token position -> context word
    max_context: List[Dict[int, bool]]  # token position -> this window gives it most context
    words: List[List[str]]  # per example, the context split on whitespace


def _context_words(context: str):
    """run_squad's whitespace split, with each character's word index."""
    words, char_to_word, prev_space = [], [], True
    for ch in context:
        if ch.isspace() or ord(ch) == 0x202F:
            prev_space = True
        else:
            if prev_space:
                words.append(ch)
            else:
                words[-1] += ch
            prev_space = False
        char_to_word.append(len(words) - 1)
    return words, char_to_word


def squad_features(pre: BertTextPreprocessor, examples: Sequence[SquadExample],
                   seq_length: int, doc_stride: int, max_query_length: int,
                   training: bool) -> SquadFeatures:
    """Windows of [CLS] question [SEP] context-span [SEP] with doc stride (run_squad.py)."""
    questions = batched_tokenize(pre, [e.question for e in examples])
    split = [_context_words(e.context) for e in examples]
    flat = [w for words, _ in split for w in words]
    pieces = batched_tokenize(pre, flat)
    rows = collections.defaultdict(list)
    feats = SquadFeatures({}, [], [], [], [w for w, _ in split])
    k = 0
    for ex_i, e in enumerate(examples):
        words, char_to_word = split[ex_i]
        tok_to_word, doc = [], []
        for w in range(len(words)):
            for p in pieces[k]:
                tok_to_word.append(w)
                doc.append(p)
            k += 1
        word_start = [None] * len(words)
        word_end = [None] * len(words)
        for t, w in enumerate(tok_to_word):
            word_start[w] = t if word_start[w] is None else word_start[w]
            word_end[w] = t
        q = questions[ex_i][:max_query_length]
        max_doc = seq_length - len(q) - 3
        if max_doc < 1:
            raise ValueError(f"seq_length {seq_length} leaves no room for context after a "
                             f"{len(q)}-token question")
        tok_start = tok_end = None
        if training and e.answers and not e.is_impossible:
            text, start = e.answers[0]
            ws, we = char_to_word[start], char_to_word[start + len(text) - 1]
            if word_start[ws] is not None and word_end[we] is not None:
                tok_start, tok_end = word_start[ws], word_end[we]
        spans, offset = [], 0
        while offset < len(doc) or not spans:
            length = min(len(doc) - offset, max_doc)
            spans.append((offset, length))
            if offset + length >= len(doc):
                break
            offset += min(length, doc_stride)
        for si, (off, length) in enumerate(spans):
            ids = [pre.cls_id] + q + [pre.sep_id]
            seg = [0] * len(ids)
            t2w, best = {}, {}
            for i in range(length):
                t = off + i
                t2w[len(ids)] = tok_to_word[t]
                best[len(ids)] = _is_max_context(spans, si, t)
                ids.append(doc[t])
                seg.append(1)
            ids.append(pre.sep_id)
            seg.append(1)
            start = end = 0
            if tok_start is not None and off <= tok_start and tok_end < off + length:
                start = tok_start - off + len(q) + 2
                end = tok_end - off + len(q) + 2
            pad = seq_length - len(ids)
            rows["input_ids"].append(ids + [0] * pad)
            rows["input_mask"].append([1] * len(ids) + [0] * pad)
            rows["segment_ids"].append(seg + [0] * pad)
            rows["start_positions"].append(start)
            rows["end_positions"].append(end)
            feats.example_index.append(ex_i)
            feats.token_to_word.append(t2w)
            feats.max_context.append(best)
    feats.arrays = {k: np.array(v, np.int32) for k, v in rows.items()}
    return feats


def _is_max_context(spans, index, position) -> bool:
    """run_squad's rule: the window where the token has the most context on either side."""
    best_score, best_index = None, None
    for i, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, i
    return best_index == index


def squad_decode(feats: SquadFeatures, examples: Sequence[SquadExample], start_logits,
                 end_logits, n_best: int = 20, max_answer_length: int = 30,
                 null_threshold: float = 0.0, version_2: bool = False) -> Dict[str, str]:
    """n-best span decoding over all windows of a question; "" (no answer) for v2 when the
    null score beats the best span by more than null_threshold."""
    by_example = collections.defaultdict(list)
    for f, ex in enumerate(feats.example_index):
        by_example[ex].append(f)
    out = {}
    for ex_i, e in enumerate(examples):
        best_text, best_score, null_score = "", -1e30, 1e30
        for f in by_example[ex_i]:
            s, en = start_logits[f], end_logits[f]
            null_score = min(null_score, float(s[0] + en[0]))
            t2w, best = feats.token_to_word[f], feats.max_context[f]
            starts = np.argsort(-s)[:n_best]
            ends = np.argsort(-en)[:n_best]
            for a in starts:
                if a not in t2w or not best.get(a, False):
                    continue
                for b in ends:
                    if b not in t2w or b < a or b - a + 1 > max_answer_length:
                        continue
                    score = float(s[a] + en[b])
                    if score > best_score:
                        best_score = score
                        best_text = " ".join(feats.words[ex_i][t2w[a]:t2w[b] + 1])
        if version_2 and null_score > best_score + null_threshold:
            best_text = ""
        out[e.qid] = best_text
    return out
