r"""Fine-tune an encoder on a labelled task; the result is a model directory.

    python -m model.finetune --task sst2 --init_checkpoint runs/minilm \
        --train_file glue/SST-2/train.tsv --eval_file glue/SST-2/dev.tsv --output_dir runs/sst2

--task: a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli) in its
published TSV format; `classification` for any CSV/TSV/JSONL (--text_column,
--text_b_column, --label_column); `ner` for CoNLL-style BIO files; `squad` for
SQuAD v1.1/v2.0 JSON. --init_checkpoint: any model directory of this project
(pretrained, imported, fine-tuned: its encoder is taken) or `none` (random
initialization of --preset, with --vocab_file). --eval_file may name several
files separated by commas (MNLI: matched,mismatched); the first decides the
best epoch.

AdamW with linear warmup and decay; the dev set is scored after every epoch
and the best epoch's weights are kept (training stops after
--early_stopping_patience epochs without improvement). Writes
OUTPUT_DIR/{config.json, vocab.txt, checkpoints/, metrics.json, report.md,
predictions*.jsonl}; `python -m model.export --model_dir OUTPUT_DIR` serves it.
"""

import dataclasses
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

from absl import app, flags

from model import metrics as M
from model.task_data import GLUE, TaskDataError

TASKS = tuple(GLUE) + ("classification", "ner", "squad")
# The dev metric that picks the best epoch (GLUE's headline for each task).
PRIMARY = {"cola": "mcc", "mrpc": "f1", "qqp": "f1", "stsb": "pearson", "ner": "f1",
           "squad": "f1"}


class FinetuneError(Exception):
    """A fine-tuning run that cannot start; the message names the flag or file."""


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    task: str
    train_file: str
    eval_file: str
    output_dir: str
    init_checkpoint: str = "none"
    test_file: str = ""
    preset: str = "bert_tiny"  # with init_checkpoint none
    vocab_file: str = ""  # with init_checkpoint none
    do_lower_case: bool = True  # with init_checkpoint none
    text_column: str = "text"
    text_b_column: str = ""
    label_column: str = "label"
    max_seq_length: int = 128
    train_batch_size: int = 32
    eval_batch_size: int = 64
    num_train_epochs: float = 3.0
    learning_rate: float = 5e-5
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    early_stopping_patience: int = 2
    dropout: float = -1.0  # <0: the encoder's
    doc_stride: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    n_best_size: int = 20
    null_score_diff_threshold: float = 0.0
    log_steps: int = 50
    seed: int = 42


def kind_of(task: str) -> str:
    if task == "stsb":
        return "regression"
    return task if task in ("ner", "squad") else "classification"


class TaskData:
    """The examples and model inputs of one file, plus what scoring needs."""

    def __init__(self, path, examples, arrays, skipped, extra=None):
        self.path, self.examples, self.arrays, self.skipped = path, examples, arrays, skipped
        self.extra = extra  # SquadFeatures for squad
        self.labelled = True

    def __len__(self):
        return len(self.arrays["input_ids"])


def _read(c: FinetuneConfig, path: str):
    from model import task_data as D

    if c.task in GLUE:
        return D.read_glue(c.task, path)
    if c.task == "classification":
        return D.read_table(path, c.text_column, c.text_b_column, c.label_column)
    if c.task == "ner":
        return D.read_conll(path)
    examples, stats, version = D.read_squad(path)
    return examples, stats


class Finetuner:
    """Reads the data, builds the task model on the initial encoder, trains, scores."""

    def __init__(self, c: FinetuneConfig):
        import keras
        import tensorflow as tf

        from model.model_dir import ModelDirError, open_model_dir, restore_encoder
        from model.preprocessing import BertTextPreprocessor
        from model.presets import ConfigError, resolve
        from model.tasks import build_task_model

        if c.task not in TASKS:
            raise FinetuneError(f"--task {c.task!r}: known tasks are {', '.join(TASKS)}")
        self.c, self.kind = c, kind_of(c.task)
        keras.utils.set_random_seed(c.seed)
        if c.init_checkpoint.lower() == "none":
            if not c.vocab_file:
                raise FinetuneError("--init_checkpoint none needs --vocab_file")
            self.init_dir = None
            self.vocab = self._read_vocab(c.vocab_file)
            try:
                model_config = resolve(c.preset, vocabulary_size=len(self.vocab))
            except ConfigError as e:
                raise FinetuneError(str(e)) from None
            self.vocab_file, self.do_lower_case = c.vocab_file, c.do_lower_case
        else:
            try:
                self.init_dir = open_model_dir(c.init_checkpoint)
            except ModelDirError as e:
                raise FinetuneError(f"--init_checkpoint: {e}") from None
            model_config = self.init_dir.model_config
            self.vocab_file, self.do_lower_case = (self.init_dir.vocab_file,
                                                   self.init_dir.do_lower_case)
            self.vocab = self._read_vocab(self.vocab_file)
        if c.dropout >= 0:
            model_config = dataclasses.replace(model_config, dropout=c.dropout)
        if c.max_seq_length > model_config.max_sequence_length:
            raise FinetuneError(f"--max_seq_length {c.max_seq_length} exceeds the encoder's "
                                f"max_sequence_length {model_config.max_sequence_length}")
        if self.kind == "squad" and c.max_seq_length < c.max_query_length + 4:
            raise FinetuneError(f"--max_seq_length {c.max_seq_length} leaves no room for the "
                                f"context after --max_query_length {c.max_query_length} + 3")
        self.model_config = model_config
        self.pre = BertTextPreprocessor(self.vocab_file, self.do_lower_case, c.max_seq_length)

        self.train = self._load(c.train_file, training=True)
        evals = [p for p in c.eval_file.split(",") if p]
        if not evals:
            raise FinetuneError("--eval_file is required (the best epoch is chosen on it)")
        self.evals = [self._load(p) for p in evals]
        unlabelled = [d.path for d in self.evals if not d.labelled]
        if unlabelled:
            raise FinetuneError(f"--eval_file {unlabelled[0]} has no labels (the best epoch is "
                                "chosen on it); pass unlabelled files as --test_file")
        self.test = self._load(c.test_file) if c.test_file else None

        self.model, self.encoder = build_task_model(model_config, self.kind,
                                                    len(self.labels or []))
        if self.init_dir is not None:
            try:
                restore_encoder(self.init_dir, self.encoder)
            except ModelDirError as e:
                raise FinetuneError(f"--init_checkpoint: {e}") from None
        self.tf = tf

    @staticmethod
    def _read_vocab(path: str):
        from tfrecords.shards import DatasetError
        from tfrecords.vocab import read_vocab

        try:
            return read_vocab(path)
        except (DatasetError, OSError) as e:
            raise FinetuneError(f"--vocab_file: {e}") from None

    # -- data ----------------------------------------------------------------

    def _load(self, path: str, training: bool = False) -> TaskData:
        from model import tasks as T
        from model.task_data import label_set

        try:
            examples, stats = _read(self.c, path)
        except TaskDataError as e:
            raise FinetuneError(str(e)) from None
        if not examples:
            raise FinetuneError(f"{path}: no usable examples ({stats.read} read, skipped: "
                                f"{stats.reasons})")
        if stats.skipped:
            print(f"{path}: skipped {stats.skipped} of {stats.read} rows: {stats.reasons}",
                  file=sys.stderr)
        c = self.c
        if training:
            if self.kind == "regression" or self.kind == "squad":
                self.labels = None
            elif c.task in GLUE:
                self.labels = GLUE[c.task][3]
            elif self.kind == "ner":
                self.labels = label_set(t for e in examples for t in (e.tags or []))
            else:
                self.labels = label_set(e.label for e in examples)
            if self.kind in ("classification", "ner") and len(self.labels or []) < 2:
                raise FinetuneError(f"{path}: fewer than two labels ({self.labels})")
        extra = None
        if self.kind in ("classification", "regression"):
            arrays = T.sequence_features(self.pre, examples, self.labels, c.max_seq_length)
            labelled = all(e.label is not None for e in examples)
        elif self.kind == "ner":
            arrays = T.ner_features(self.pre, examples, self.labels, c.max_seq_length)
            labelled = all(e.tags is not None for e in examples)
        else:
            extra = T.squad_features(self.pre, examples, c.max_seq_length, c.doc_stride,
                                     c.max_query_length, training)
            arrays = extra.arrays
            labelled = any(e.answers or e.is_impossible for e in examples)
        data = TaskData(path, examples, arrays, stats.skipped, extra)
        data.labelled = labelled
        if training and not labelled:
            raise FinetuneError(f"{path}: the training file has unlabelled rows")
        return data

    # -- training ------------------------------------------------------------

    def _loss(self, outputs, batch):
        tf = self.tf
        if self.kind == "classification":
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                batch["labels"], tf.cast(outputs["logits"], tf.float32)))
        if self.kind == "regression":
            return tf.reduce_mean(tf.square(tf.cast(outputs["score"], tf.float32) - batch["labels"]))
        if self.kind == "ner":
            labels = batch["labels"]
            weights = tf.cast(labels >= 0, tf.float32)
            per = tf.nn.sparse_softmax_cross_entropy_with_logits(
                tf.maximum(labels, 0), tf.cast(outputs["logits"], tf.float32))
            return tf.reduce_sum(per * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)
        start = tf.nn.sparse_softmax_cross_entropy_with_logits(
            batch["start_positions"], tf.cast(outputs["start_logits"], tf.float32))
        end = tf.nn.sparse_softmax_cross_entropy_with_logits(
            batch["end_positions"], tf.cast(outputs["end_logits"], tf.float32))
        return tf.reduce_mean(start + end) / 2

    def run(self) -> dict:
        import keras

        from model.model_dir import write_model_dir
        from model.optimization import OptimizerConfig, build_optimizer
        from model.preprocessing import PACKED, trim_to_longest

        tf, c = self.tf, self.c
        n = len(self.train)
        steps_per_epoch = math.ceil(n / c.train_batch_size)
        total = max(1, int(round(steps_per_epoch * c.num_train_epochs)))
        epochs = math.ceil(total / steps_per_epoch)
        optimizer = build_optimizer(OptimizerConfig(
            learning_rate=c.learning_rate, num_train_steps=total,
            num_warmup_steps=int(total * c.warmup_proportion), weight_decay=c.weight_decay))
        # Token tasks never use the pooler: leave it out of the update (and out
        # of Keras' "Gradients do not exist" warning).
        train_vars = [v for v in self.model.trainable_variables
                      if self.kind not in ("ner", "squad") or "pooled_dense" not in v.path]
        optimizer.build(train_vars)
        inputs = PACKED
        if self.kind == "squad":
            targets = ("start_positions", "end_positions")
        else:
            targets = ("labels",)
        per_token = PACKED + (("labels",) if self.kind == "ner" else ())
        if self.kind == "classification":
            bad = int((self.train.arrays["labels"] < 0).sum())
            if bad:
                raise FinetuneError(f"{c.train_file}: {bad} rows have labels outside {self.labels}")
        model = self.model

        spec = {k: tf.TensorSpec([None] * self.train.arrays[k].ndim, tf.as_dtype(
            self.train.arrays[k].dtype)) for k in inputs + targets}

        @tf.function(input_signature=[spec])
        def train_step(batch):
            with tf.GradientTape() as tape:
                outputs = model({k: batch[k] for k in inputs}, training=True)
                loss = self._loss(outputs, batch)
            grads = tape.gradient(loss, train_vars)
            grads, _ = tf.clip_by_global_norm(grads, 1.0)
            optimizer.apply_gradients(zip(grads, train_vars))
            return loss

        arrays = {k: self.train.arrays[k] for k in inputs + targets}
        dataset = tf.data.Dataset.from_tensor_slices(arrays)
        os.makedirs(c.output_dir, exist_ok=True)
        checkpoint = tf.train.Checkpoint(model=model, encoder=self.encoder)
        manager = tf.train.CheckpointManager(checkpoint, os.path.join(c.output_dir, "checkpoints"),
                                             max_to_keep=1)
        primary = PRIMARY.get(c.task, "accuracy")
        history, best, best_epoch, waited, step = [], None, 0, 0, 0
        losses_log = []
        print(f"Fine-tuning {c.task} ({self.kind}): {n} train examples, {epochs} epoch(s), "
              f"{total} steps of {c.train_batch_size}; dev metric {primary}", file=sys.stderr,
              flush=True)
        start_time = time.time()
        stopped_early = False
        for epoch in range(1, epochs + 1):
            ds = dataset.shuffle(n, seed=c.seed + epoch, reshuffle_each_iteration=False) \
                .batch(c.train_batch_size).map(
                    lambda b: trim_to_longest(b, per_token)).prefetch(2)
            window, t0 = [], time.time()
            for batch in ds:
                if step >= total:
                    break
                loss = float(train_step(batch))
                step += 1
                window.append(loss)
                if step % c.log_steps == 0 or step == total:
                    mean = sum(window) / len(window)
                    lr = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                    rate = len(window) * c.train_batch_size / max(time.time() - t0, 1e-9)
                    print(f"epoch {epoch} step {step}/{total} loss {mean:.4f} lr {lr:.2e} "
                          f"{rate:.0f} ex/s", file=sys.stderr, flush=True)
                    losses_log.append({"step": step, "loss": round(mean, 5)})
                    window, t0 = [], time.time()
            scores = self.evaluate(self.evals[0])
            value = scores[primary]
            history.append({"epoch": epoch, "step": step, "dev": scores})
            print(f"epoch {epoch}: dev " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()
                                                    if isinstance(v, float)),
                  file=sys.stderr, flush=True)
            if best is None or value > best:
                best, best_epoch, waited = value, epoch, 0
                manager.save(checkpoint_number=step)
            else:
                waited += 1
                if c.early_stopping_patience and waited >= c.early_stopping_patience \
                        and epoch < epochs:
                    print(f"Stopping early: no better {primary} for {waited} epoch(s)",
                          file=sys.stderr, flush=True)
                    stopped_early = True
                    break
        train_seconds = time.time() - start_time
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
        result = {"task": c.task, "kind": self.kind, "primary_metric": primary,
                  "best_epoch": best_epoch, "stopped_early": stopped_early,
                  "train_examples": n, "train_steps": step, "train_seconds": round(train_seconds, 1),
                  "init_checkpoint": c.init_checkpoint, "history": history,
                  "loss_log": losses_log, "skipped_rows": {self.train.path: self.train.skipped}}
        result["dev"] = {}
        for data in self.evals:
            result["dev"][data.path] = self.evaluate(data, write=True)
            result["skipped_rows"][data.path] = data.skipped
        if self.test is not None:
            result["test"] = self.evaluate(self.test, write=True)
            result["skipped_rows"][self.test.path] = self.test.skipped
        task = {"name": c.task, "labels": self.labels, "pairs": self._pairs(),
                "max_seq_length": c.max_seq_length, "primary_metric": primary}
        if self.kind == "squad":
            task.update(version_2=self._squad_v2(), max_answer_length=c.max_answer_length)
        write_model_dir(c.output_dir, kind=self.kind, model_config=self.model_config,
                        vocab=self.vocab, do_lower_case=self.do_lower_case,
                        extra={"task": task, "finetuning": dataclasses.asdict(c)})
        with open(os.path.join(c.output_dir, "metrics.json"), "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
        with open(os.path.join(c.output_dir, "report.md"), "w") as f:
            f.write(report(result))
        print(f"Best epoch {best_epoch}: dev {primary} {best:.4f}; model, metrics.json and "
              f"report.md in {c.output_dir}", file=sys.stderr, flush=True)
        return result

    def _pairs(self) -> bool:
        if self.kind == "squad":
            return True
        if self.kind == "ner":
            return False
        return any(e.text_b for e in self.train.examples)

    def _squad_v2(self) -> bool:
        return any(e.is_impossible for e in self.train.examples)

    # -- scoring -------------------------------------------------------------

    def predict(self, data: TaskData) -> Dict[str, "np.ndarray"]:
        import numpy as np

        from model.preprocessing import PACKED, trim_to_longest
        tf = self.tf
        model = self.model
        inputs = PACKED

        spec = {k: tf.TensorSpec([None, None], tf.int32) for k in inputs}

        @tf.function(input_signature=[spec])
        def step(batch):
            return model(batch, training=False)

        outs = {}
        L = data.arrays["input_ids"].shape[1]
        for i in range(0, len(data), self.c.eval_batch_size):
            batch = trim_to_longest({k: data.arrays[k][i:i + self.c.eval_batch_size]
                                  for k in inputs})
            for k, v in step(batch).items():
                v = v.numpy()
                if v.ndim == 2 and k != "logits" or v.ndim == 3:  # per token: pad back to L
                    v = np.pad(v, [(0, 0), (0, L - v.shape[1])] + [(0, 0)] * (v.ndim - 2),
                               constant_values=-1e4)
                outs.setdefault(k, []).append(v)
        return {k: np.concatenate(v) for k, v in outs.items()}

    def evaluate(self, data: TaskData, write: bool = False) -> dict:
        """The task's metrics on a labelled file; predictions only when it has no labels."""
        import numpy as np

        out = self.predict(data)
        c = self.c
        records, scores = [], {}
        if self.kind == "classification":
            pred = out["logits"].argmax(-1)
            names = [self.labels[i] for i in pred]
            records = [{"label": p} for p in names]
            if data.labelled:
                gold = [e.label for e in data.examples]
                scores["accuracy"] = M.accuracy(gold, names)
                if len(self.labels) == 2:
                    pos = self.labels[1]
                    scores["f1"] = M.binary_f1(gold, names, positive=pos)
                    scores["mcc"] = M.matthews_corrcoef(
                        [g == pos for g in gold], [p == pos for p in names])
        elif self.kind == "regression":
            pred = out["score"].astype(float)
            records = [{"score": round(float(p), 4)} for p in pred]
            if data.labelled:
                gold = [float(e.label) for e in data.examples]
                scores["pearson"] = M.pearson(gold, list(pred))
                scores["spearman"] = M.spearman(gold, list(pred))
        elif self.kind == "ner":
            ids = out["logits"].argmax(-1)
            predicted = []
            for row, e in enumerate(data.examples):
                pos = data.arrays["word_positions"][row, :len(e.words)]
                predicted.append([self.labels[ids[row, p]] if p >= 0 else "O" for p in pos])
            records = [{"words": e.words, "tags": p} for e, p in zip(data.examples, predicted)]
            if data.labelled:
                ent = M.entity_scores([e.tags for e in data.examples], predicted)
                scores.update(precision=ent["precision"], recall=ent["recall"], f1=ent["f1"],
                              f1_per_type=ent["f1_per_type"])
        else:
            from model.tasks import squad_decode
            answers = squad_decode(data.extra, data.examples, out["start_logits"],
                                   out["end_logits"], c.n_best_size, c.max_answer_length,
                                   c.null_score_diff_threshold, self._squad_v2())
            records = [{"id": e.qid, "answer": answers[e.qid]} for e in data.examples]
            if data.labelled:
                golds = {e.qid: [t for t, _ in e.answers] for e in data.examples}
                s = M.squad_scores(golds, answers)
                scores.update(s)
                scores["f1"] = s["f1"] / 100.0  # primary metric on the 0-1 scale of the rest
                scores["exact_match"] = s["exact_match"] / 100.0
        if write:
            name = os.path.splitext(os.path.basename(data.path))[0]
            with open(os.path.join(c.output_dir, f"predictions_{name}.jsonl"), "w",
                      encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
        scores = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in scores.items()}
        return scores if data.labelled else {"predictions": len(records)}


def report(result: dict) -> str:
    """metrics.json in a few readable lines."""
    lines = [f"# Fine-tuning: {result['task']} ({result['kind']})", "",
             f"- initialized from: `{result['init_checkpoint']}`",
             f"- {result['train_examples']} training examples, {result['train_steps']} steps, "
             f"{result['train_seconds']} s; best epoch {result['best_epoch']}"
             + (" (stopped early)" if result["stopped_early"] else ""), "",
             "| epoch | " + " | ".join(k for k, v in result["history"][0]["dev"].items()
                                      if isinstance(v, float)) + " |"]
    keys = [k for k, v in result["history"][0]["dev"].items() if isinstance(v, float)]
    lines.append("|---" * (len(keys) + 1) + "|")
    for h in result["history"]:
        lines.append(f"| {h['epoch']} | " + " | ".join(f"{h['dev'][k]:.4f}" for k in keys) + " |")
    lines.append("")
    for path, scores in result["dev"].items():
        lines.append(f"- dev `{path}`: " + ", ".join(
            f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float)))
    if "test" in result:
        lines.append("- test: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in result["test"].items()
                                            if not isinstance(v, dict)))
    return "\n".join(lines) + "\n"


def finetune(config: FinetuneConfig) -> dict:
    """Runs one fine-tuning job; returns metrics.json's content."""
    return Finetuner(config).run()


FLAGS = flags.FLAGS


def define_flags():
    """The command's flags (defined only when it runs as a command, so that tests and
    other modules can import this one beside other commands)."""
    flags.DEFINE_enum("task", None, list(TASKS), "The task and its file format.")
    flags.DEFINE_string("init_checkpoint", None, "A model directory, or `none` (random init).")
    flags.DEFINE_string("train_file", None, "Training data.")
    flags.DEFINE_string("eval_file", None, "Dev data (comma-separated for several; the first picks "
                        "the best epoch).")
    flags.DEFINE_string("test_file", "", "Test data: scored if labelled, else predictions only.")
    flags.DEFINE_string("output_dir", None, "The fine-tuned model directory.")
    flags.DEFINE_string("preset", "bert_tiny", "Model size with --init_checkpoint none.")
    flags.DEFINE_string("vocab_file", "", "Vocabulary with --init_checkpoint none.")
    flags.DEFINE_bool("do_lower_case", True, "Casing with --init_checkpoint none.")
    flags.DEFINE_string("text_column", "text", "classification: the text column.")
    flags.DEFINE_string("text_b_column", "", "classification: the second text column, if any.")
    flags.DEFINE_string("label_column", "label", "classification: the label column.")
    flags.DEFINE_integer("max_seq_length", 128, "Tokens per example.", lower_bound=8)
    flags.DEFINE_integer("train_batch_size", 32, "Training batch.", lower_bound=1)
    flags.DEFINE_integer("eval_batch_size", 64, "Evaluation batch.", lower_bound=1)
    flags.DEFINE_float("num_train_epochs", 3.0, "Epochs (may be fractional).", lower_bound=0.01)
    flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate.", lower_bound=0.0)
    flags.DEFINE_float("warmup_proportion", 0.1, "Share of steps warming up.", lower_bound=0.0,
                       upper_bound=1.0)
    flags.DEFINE_float("weight_decay", 0.01, "AdamW weight decay.", lower_bound=0.0)
    flags.DEFINE_integer("early_stopping_patience", 2, "Epochs without improvement before stopping "
                         "(0: never).", lower_bound=0)
    flags.DEFINE_float("dropout", -1.0, "Override the encoder's dropout (<0: keep).")
    flags.DEFINE_integer("doc_stride", 128, "squad: stride between context windows.", lower_bound=1)
    flags.DEFINE_integer("max_query_length", 64, "squad: question tokens kept.", lower_bound=1)
    flags.DEFINE_integer("max_answer_length", 30, "squad: longest answer in tokens.", lower_bound=1)
    flags.DEFINE_integer("n_best_size", 20, "squad: start/end candidates.", lower_bound=1)
    flags.DEFINE_float("null_score_diff_threshold", 0.0, "squad v2: answer nothing when the null "
                       "score beats the best span by more than this.")
    flags.DEFINE_integer("log_steps", 50, "Progress line every N steps.", lower_bound=1)
    flags.DEFINE_integer("seed", 42, "Initial head weights, dropout, shuffling.")


def main(argv):
    del argv
    from model.model_dir import quiet_tensorflow
    quiet_tensorflow()
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    config = FinetuneConfig(**{k: getattr(FLAGS, k) for k in fields})
    try:
        finetune(config)
    except (FinetuneError, TaskDataError) as e:
        sys.exit(f"finetune: {e}")


def entry_point():
    define_flags()
    flags.mark_flags_as_required(["task", "init_checkpoint", "train_file", "eval_file",
                                  "output_dir"])
    app.run(main)


if __name__ == "__main__":
    entry_point()
