"""Fine-tuning tasks: features, task models on the encoder, and their serving outputs.

Kinds (config.json "kind"):
    classification  pooled [CLS] -> dropout -> dense: logits [B, C]   (GLUE, any table)
    regression      pooled [CLS] -> dropout -> dense: score [B]       (STS-B)
    ner             tokens -> dropout -> dense: logits [B, L, C], first subword of each word
    squad           tokens -> dense: start_logits, end_logits [B, L]

Features come from the in-graph tokenizer the export puts in the SavedModel
(model/preprocessing.py), so a served model sees exactly the ids it was
fine-tuned on.
"""

import collections
import dataclasses
from typing import Dict, List, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from model.model_dir import ModelDir, build_encoder
from model.preprocessing import BertTextPreprocessor
from model.task_data import Example, NerExample, SquadExample

KINDS = ("classification", "regression", "ner", "squad")
IGNORE = -1  # label of positions without a loss (NER continuation subwords, padding)


def _init():
    return keras.initializers.TruncatedNormal(stddev=0.02)


def build_task_model(md_or_config, kind: str = None, num_labels: int = 0):
    """The task model of a kind on a fresh encoder; returns (model, encoder).

    Args:
        md_or_config: a fine-tuned ModelDir (kind and labels from its config) or a ModelConfig.
        kind, num_labels: for a ModelConfig.
    """
    if isinstance(md_or_config, ModelDir):
        cfg, kind = md_or_config.model_config, md_or_config.kind
        num_labels = len(md_or_config.config["task"].get("labels") or [])
    else:
        cfg = md_or_config
    encoder = build_encoder(cfg)
    inputs = {k: keras.Input((None,), dtype="int32", name=k)
              for k in ("input_ids", "input_mask", "segment_ids")}
    enc = encoder({"token_ids": inputs["input_ids"], "segment_ids": inputs["segment_ids"],
                   "padding_mask": inputs["input_mask"]})
    drop = keras.layers.Dropout(cfg.dropout, name="head_dropout")
    if kind == "classification":
        outputs = {"logits": keras.layers.Dense(num_labels, kernel_initializer=_init(),
                                                name="classifier")(drop(enc["pooled_output"]))}
    elif kind == "regression":
        score = keras.layers.Dense(1, kernel_initializer=_init(),
                                   name="regressor")(drop(enc["pooled_output"]))
        outputs = {"score": keras.layers.Reshape((), name="score")(score)}
    elif kind == "ner":
        outputs = {"logits": keras.layers.Dense(num_labels, kernel_initializer=_init(),
                                                name="tagger")(drop(enc["sequence_output"]))}
    elif kind == "squad":
        both = keras.layers.Dense(2, kernel_initializer=_init(),
                                  name="span")(enc["sequence_output"])
        outputs = {"start_logits": both[..., 0], "end_logits": both[..., 1]}
    else:
        raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(KINDS)}")
    return keras.Model(inputs, outputs, name=f"bert_{kind}"), encoder


# -- features ----------------------------------------------------------------

def _batched_tokenize(pre: BertTextPreprocessor, texts: Sequence[str], batch: int = 2048):
    out = []
    for i in range(0, len(texts), batch):
        out += pre.tokenize(tf.constant(list(texts[i:i + batch]))).to_list()
    return out


def sequence_features(pre: BertTextPreprocessor, examples: Sequence[Example], labels,
                      seq_length: int) -> Dict[str, np.ndarray]:
    """Classification/regression: packed pairs and label ids (or floats)."""
    a = tf.ragged.constant(_batched_tokenize(pre, [e.text_a for e in examples]),
                           dtype=tf.int32, ragged_rank=1)
    b = None
    if any(e.text_b for e in examples):
        b = tf.ragged.constant(_batched_tokenize(pre, [e.text_b for e in examples]),
                               dtype=tf.int32, ragged_rank=1)
    x = {k: v.numpy() for k, v in pre.pack(a, b, seq_length).items()}
    if labels is None:  # regression
        x["labels"] = np.array([np.nan if e.label is None else e.label for e in examples],
                               np.float32)
    else:
        index = {label: i for i, label in enumerate(labels)}
        x["labels"] = np.array([index.get(e.label, IGNORE) for e in examples], np.int32)
    return x


def ner_features(pre: BertTextPreprocessor, examples: Sequence[NerExample], labels,
                 seq_length: int) -> Dict[str, np.ndarray]:
    """NER: [CLS] subwords [SEP]; the first subword of a word carries its tag.

    Also returns word_positions [N, max words] (-1: the word was truncated away).
    """
    words = [w for e in examples for w in e.words]
    pieces = _batched_tokenize(pre, words)
    index = {label: i for i, label in enumerate(labels)}
    n, L = len(examples), seq_length
    ids = np.zeros((n, L), np.int32)
    mask = np.zeros((n, L), np.int32)
    tags = np.full((n, L), IGNORE, np.int32)
    max_words = max(len(e.words) for e in examples)
    word_positions = np.full((n, max_words), -1, np.int32)
    k = 0
    for row, e in enumerate(examples):
        seq, pos = [pre.cls_id], 1
        for w in range(len(e.words)):
            sub = pieces[k] or [pre.unk_id]  # as tokenize_words: a word is never empty
            k += 1
            if pos + len(sub) > L - 1:
                k += len(e.words) - w - 1
                break  # this word and the rest are truncated: predicted "O", still scored
            word_positions[row, w] = pos
            if e.tags is not None:
                tags[row, pos] = index.get(e.tags[w], IGNORE)
            seq += sub
            pos += len(sub)
        seq.append(pre.sep_id)
        ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids),
            "labels": tags, "word_positions": word_positions}


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
    questions = _batched_tokenize(pre, [e.question for e in examples])
    split = [_context_words(e.context) for e in examples]
    flat = [w for words, _ in split for w in words]
    pieces = _batched_tokenize(pre, flat)
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


# -- serving -----------------------------------------------------------------

def serving_heads(md: ModelDir):
    """(pair inputs?, run(model, packed, positions) -> outputs) for export.ServingModule."""
    task = md.config["task"]
    labels = tf.constant(task.get("labels") or [""])

    def encode(model, x):
        return model({k: x[k] for k in ("input_ids", "input_mask", "segment_ids")},
                     training=False)

    if md.kind == "classification":
        def run(model, x, positions=None):
            probs = tf.nn.softmax(tf.cast(encode(model, x)["logits"], tf.float32))
            label_id = tf.argmax(probs, -1, output_type=tf.int32)
            return {"probabilities": probs, "label_id": label_id,
                    "label": tf.gather(labels, label_id)}
        return bool(task.get("pairs")), run
    if md.kind == "regression":
        def run(model, x, positions=None):
            return {"score": tf.cast(encode(model, x)["score"], tf.float32)}
        return bool(task.get("pairs")), run
    if md.kind == "ner":
        def run(model, x, positions=None):
            probs = tf.nn.softmax(tf.cast(encode(model, x)["logits"], tf.float32))
            tag_id = tf.argmax(probs, -1, output_type=tf.int32)
            return {"token_probabilities": probs, "token_label_ids": tag_id}
        return False, run
    if md.kind == "squad":
        def run(model, x, positions=None):
            out = encode(model, x)
            return {"start_logits": tf.cast(out["start_logits"], tf.float32),
                    "end_logits": tf.cast(out["end_logits"], tf.float32)}
        return True, run
    raise ValueError(f"{md.path}: unknown kind {md.kind!r}")
