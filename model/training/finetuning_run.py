"""Fine-tuning a task (model/tasks/) on the training engine (model/training/engine.py).

The engine brings what pretraining has: any tf.distribute strategy, mixed
precision, XLA, gradient accumulation, checkpoints every N steps and resume
after a crash. Fine-tuning adds epochs: the dev set is scored after each,
the best epoch's weights are kept in OUTPUT_DIR/checkpoints (what export and
further fine-tuning read), training stops after --early_stopping_patience
epochs without improvement. The loop's own checkpoints (model, optimizer,
RNG) go to OUTPUT_DIR/train_state; the epochs scored so far to
OUTPUT_DIR/history.json, so that a rerun after kill -9 resumes where the run
stopped and ends with the same best epoch.
"""

import dataclasses
import json
import math
import os
import sys
import time
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from model import storage
from model.networks.encoder import BERT_INPUTS
from model.networks.model_dir import (ModelDirError, open_model_dir, resolve_seq_length,
                                      restore_encoder, write_model_dir)
from model.networks.preprocessing import BertTextPreprocessor, trim_to_longest
from model.networks.presets import ConfigError, resolve
from model.tasks import TaskData, TaskError, finetune_task, setting_flags, task_defaults
from model.tasks.readers import TaskDataError
from model.training.engine import Engine, EngineConfig, TrainingError, engine_config
from model.training.finetune_report import report
from model.training.optimization import OptimizerConfig
from tfrecords.shards import DatasetError
from tfrecords.vocab import read_vocab



class FinetuneError(Exception):
    """A fine-tuning run that cannot start; the message names the flag or file."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class FinetuneConfig(EngineConfig):
    task: str
    train_file: str
    eval_file: str
    output_dir: str
    init_checkpoint: str = "none"
    test_file: str = ""
    preset: str = "bert_tiny"  # with init_checkpoint none
    vocab_file: str = ""  # with init_checkpoint none
    do_lower_case: bool = True  # with init_checkpoint none
    max_seq_length: int = 0  # 0: the initial model's (config.json "inputs"), else 128
    eval_batch_size: int = 64
    # None: the task's default (FinetuneTask.defaults), resolved when the run starts
    train_batch_size: Optional[int] = None
    num_train_epochs: Optional[float] = None
    learning_rate: Optional[float] = None
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    adam_epsilon: float = 1e-6
    clip_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    early_stopping_patience: int = 2
    dropout: float = -1.0  # <0: the encoder's
    # The task families' settings (model/tasks/: TableSettings, SquadSettings, ...; the
    # same names as setting_flags()); None: the family's default, written there once.
    text_column: Optional[str] = None
    text_b_column: Optional[str] = None
    label_column: Optional[str] = None
    doc_stride: Optional[int] = None
    max_query_length: Optional[int] = None
    max_answer_length: Optional[int] = None
    n_best_size: Optional[int] = None
    null_score_diff_threshold: Optional[float] = None
    log_steps: int = 50
    seed: int = 42


# FinetuneConfig fields that are the task's settings (config.json "task").
TASK_SETTINGS = tuple(setting_flags())


class Finetuner:
    """Reads the data, builds the task model on the initial encoder, trains, scores."""

    def __init__(self, c: FinetuneConfig):
        try:
            defaults = task_defaults(c.task)
        except TaskError as e:
            raise FinetuneError(str(e)) from None
        c = self.c = dataclasses.replace(c, **{k: v for k, v in defaults.items()
                                               if getattr(c, k) is None})
        try:  # devices and strategy before anything starts TensorFlow's runtime
            # The accumulation is known now (the step count only once the data is read):
            # the batch's divisibility is checked before anything is read.
            self.engine = Engine(engine_config(dataclasses.replace(c, optimizer=OptimizerConfig(
                gradient_accumulation_steps=c.gradient_accumulation_steps))), c.output_dir,
                checkpoint_dir=os.path.join(c.output_dir, "train_state"))
        except TrainingError as e:
            raise FinetuneError(str(e)) from None
        if c.init_checkpoint.lower() == "none":
            if not c.vocab_file:
                raise FinetuneError("--init_checkpoint none needs --vocab_file")
            self.init_dir, self.vocab_file, self.do_lower_case = None, c.vocab_file, c.do_lower_case
            trained_at = 0
        else:
            try:
                self.init_dir = open_model_dir(c.init_checkpoint)
            except ModelDirError as e:
                raise FinetuneError(f"--init_checkpoint: {e}") from None
            self.vocab_file, self.do_lower_case = self.init_dir.vocab_file, \
                self.init_dir.do_lower_case
            trained_at = self.init_dir.max_seq_length
        try:
            self.vocab = read_vocab(self.vocab_file)
            model_config = self.init_dir.model_config if self.init_dir else \
                resolve(c.preset, vocabulary_size=len(self.vocab))
        except (DatasetError, ConfigError) as e:
            raise FinetuneError(f"--vocab_file: {e}" if isinstance(e, DatasetError) else str(e)) \
                from None
        if c.dropout >= 0:
            model_config = dataclasses.replace(model_config, dropout=c.dropout)
        self.seq_length = resolve_seq_length(c.max_seq_length, trained_at,
                                             model_config.max_sequence_length)
        if self.seq_length > model_config.max_sequence_length:
            raise FinetuneError(f"--max_seq_length {self.seq_length} exceeds the encoder's "
                                f"max_sequence_length {model_config.max_sequence_length}")
        self.model_config = model_config
        settings = {k: getattr(c, k) for k in TASK_SETTINGS}
        settings["max_seq_length"] = self.seq_length
        try:
            self.task = finetune_task(c.task, settings)
        except TaskError as e:
            raise FinetuneError(str(e)) from None
        self.pre = BertTextPreprocessor(self.vocab_file, self.do_lower_case, self.seq_length)
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
        self.model = None

    def _load(self, path: str, training: bool = False) -> TaskData:
        try:
            examples, stats = self.task.read(path)
            if not examples:
                raise FinetuneError(f"{path}: no usable examples ({stats.read} read, skipped: "
                                    f"{stats.reasons})")
            if stats.skipped:
                print(f"{path}: skipped {stats.skipped} of {stats.read} rows: {stats.reasons}",
                      file=sys.stderr)
            for what, n in stats.repaired.items():
                print(f"{path}: {n} {what}", file=sys.stderr)
            if training:
                self.task.fit(examples, path)
            data = self.task.features(self.pre, examples, training)
            data.path, data.skipped = path, stats.skipped
            if training:
                if not data.labelled:
                    raise FinetuneError(f"{path}: the training file has unlabelled rows")
                self.task.validate(data)
        except (TaskDataError, TaskError) as e:
            raise FinetuneError(str(e)) from None
        return data

    # -- training ------------------------------------------------------------

    def _dataset_fn(self, steps_per_epoch: int, epochs: int, skip_micro: int):
        """input_context -> this pipeline's per-replica batches, epoch after epoch.

        Each epoch is a permutation of the examples (stateless: derived from the seed
        and the epoch, so a resumed run sees the same order), padded with weight-0
        examples to steps_per_epoch full global batches; each global micro-batch is
        split over the replicas in order, so any number of replicas computes the
        same global batch as one device.
        """
        c, task, n = self.c, self.task, len(self.train)
        replicas = self.engine.replicas
        micro = self.engine.micro_batch
        per_replica = micro // replicas
        padded = steps_per_epoch * c.train_batch_size
        keys = BERT_INPUTS + task.target_keys
        arrays = {k: tf.constant(self.train.arrays[k]) for k in keys}
        per_token = BERT_INPUTS + task.per_token_keys

        def fn(ctx):
            k = replicas // ctx.num_input_pipelines
            first = ctx.input_pipeline_id * k

            def epoch(e):
                seed = tf.stack([tf.constant(c.seed, tf.int64), e])
                order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=seed)
                index = tf.concat([order, tf.zeros([padded - n], tf.int32)], 0)
                weight = tf.concat([tf.ones([n]), tf.zeros([padded - n])], 0)
                index, weight = (tf.reshape(tf.reshape(t, [-1, replicas, per_replica])
                                            [:, first:first + k], [-1, per_replica])
                                 for t in (index, weight))
                return tf.data.Dataset.from_tensor_slices((index, weight))

            def gather(index, weight):
                batch = {key: tf.gather(arrays[key], index) for key in keys}
                return trim_to_longest(dict(batch, weight=weight), per_token)

            return tf.data.Dataset.range(epochs).flat_map(epoch).skip(skip_micro * k) \
                .map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)

        return fn

    def schedule(self):
        """(steps per epoch, total optimizer steps, epochs the input pipeline runs)."""
        steps_per_epoch = math.ceil(len(self.train) / self.c.train_batch_size)
        total = max(1, int(round(steps_per_epoch * self.c.num_train_epochs)))
        return steps_per_epoch, total, math.ceil(total / steps_per_epoch)

    def build(self) -> keras.Model:
        """The task model on the initial encoder's weights, and the optimizer (before any
        resume). run() calls it; a harness may call it first to read the initial weights."""
        if self.model is not None:
            return self.model
        c = self.c
        _, total, _ = self.schedule()
        self.task.model_config = self.model_config
        self.model = self.engine.build(self.task, OptimizerConfig(
            learning_rate=c.learning_rate, num_train_steps=total,
            num_warmup_steps=int(total * c.warmup_proportion), weight_decay=c.weight_decay,
            epsilon=c.adam_epsilon, clip_norm=c.clip_norm,
            gradient_accumulation_steps=c.gradient_accumulation_steps))
        if self.init_dir is not None:
            try:
                restore_encoder(self.init_dir, self.task.encoder)
            except ModelDirError as e:
                raise FinetuneError(f"--init_checkpoint: {e}") from None
        return self.model

    def run(self) -> dict:
        c, engine, task = self.c, self.engine, self.task
        n = len(self.train)
        steps_per_epoch, total, epochs = self.schedule()
        model = self.build()
        step = engine.restore()  # a rerun resumes where the run stopped
        best_ckpt = tf.train.Checkpoint(model=model, encoder=task.encoder)
        best_manager = engine.checkpoint_manager(
            best_ckpt, os.path.join(c.output_dir, "checkpoints"), 1)
        self.history = [h for h in self._read_history() if h["step"] <= step]
        primary = task.primary_metric
        print(f"Fine-tuning {c.task} ({task.kind}): {n} train examples, {epochs} epoch(s), "
              f"{total} steps of {c.train_batch_size}; dev metric {primary}", file=sys.stderr,
              flush=True)
        start_time = time.time()

        def after_step(s: int) -> bool:
            if s % steps_per_epoch and s != total:
                return False
            scores = self.evaluate(self.evals[0])
            best = self._best()
            self.history.append({"epoch": len(self.history) + 1, "step": s, "dev": scores})
            print(f"epoch {len(self.history)}: dev " + ", ".join(
                f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float)),
                file=sys.stderr, flush=True)
            if best is None or scores[primary] > best["dev"][primary]:
                best_manager.save(checkpoint_number=s)
            self._write_history()
            return self._stopped_early() and s < total

        if step and (step % steps_per_epoch == 0 or step == total) and \
                (not self.history or self.history[-1]["step"] < step):
            after_step(step)  # killed between the epoch's checkpoint and its evaluation
        if step < total and not self._stopped_early():
            iterator = iter(engine.distribute(self._dataset_fn(
                steps_per_epoch, epochs, step * c.gradient_accumulation_steps)))
            engine.train(task, iterator, total, after_step=after_step, start_step=step,
                         description=f"{c.task} ")
        best = self._best()
        if best is None:
            raise FinetuneError(f"{c.output_dir}/history.json records no epoch; remove "
                                f"{c.output_dir}/train_state to start over")
        # The final metrics, the export and further fine-tuning are the best epoch's: its
        # checkpoint must be there and hold every variable (never the last epoch's weights
        # by default).
        # Each worker reads the copy it saved itself (the chief's is in checkpoints/, the
        # others' in a hidden subdirectory): the chief's may not be written yet.
        path = tf.train.latest_checkpoint(best_manager.directory)
        if path is None or not path.endswith(f"ckpt-{best['step']}"):
            raise FinetuneError(
                f"the best epoch's checkpoint ({best_manager.directory}/ckpt-{best['step']}, "
                f"epoch {best['epoch']} in history.json) is missing (found: {path or 'none'}); "
                f"remove {c.output_dir}/train_state and history.json to start over")
        try:
            best_ckpt.restore(path).assert_existing_objects_matched()
        except AssertionError as e:
            raise FinetuneError(f"{path} does not hold this model "
                                f"({str(e).splitlines()[0][:160]})") from None
        return self._finish(best, total, time.time() - start_time)

    def _best(self) -> Optional[dict]:
        """The first epoch with the best primary metric so far."""
        best = None
        for h in self.history:
            if best is None or h["dev"][self.task.primary_metric] > \
                    best["dev"][self.task.primary_metric]:
                best = h
        return best

    def _stopped_early(self) -> bool:
        patience, best = self.c.early_stopping_patience, self._best()
        return bool(patience and best and self.history[-1]["epoch"] - best["epoch"] >= patience)

    def _read_history(self) -> list:
        path = storage.join(self.c.output_dir, "history.json")
        if not storage.exists(path):
            return []
        return json.loads(storage.read_text(path))

    def _write_history(self):
        if not self.engine.is_chief:
            return
        storage.write_text(storage.join(self.c.output_dir, "history.json"),
                           json.dumps(self.history, indent=1))

    def _finish(self, best: dict, total: int, seconds: float) -> dict:
        c, task = self.c, self.task
        stopped = self._stopped_early() and self.history[-1]["step"] < total
        if stopped:
            print(f"Stopped early: no better {task.primary_metric} for "
                  f"{c.early_stopping_patience} epoch(s)", file=sys.stderr)
        write = self.engine.is_chief
        result = {"task": c.task, "kind": task.kind, "primary_metric": task.primary_metric,
                  "best_epoch": best["epoch"], "stopped_early": stopped,
                  "train_examples": len(self.train), "train_steps": self.history[-1]["step"],
                  "train_seconds": round(seconds, 1), "init_checkpoint": c.init_checkpoint,
                  "history": self.history, "loss_log": self._loss_log(), "dev": {},
                  "skipped_rows": {self.train.path: self.train.skipped}}
        for data in self.evals:
            result["dev"][data.path] = self.evaluate(data, write=write)
            result["skipped_rows"][data.path] = data.skipped
        if self.test is not None:
            result["test"] = self.evaluate(self.test, write=write)
            result["skipped_rows"][self.test.path] = self.test.skipped
        if write:
            write_model_dir(c.output_dir, kind=task.kind, model_config=self.model_config,
                            vocab=self.vocab, do_lower_case=self.do_lower_case,
                            max_seq_length=self.seq_length,
                            extra={"task": task.config(), "finetuning": _as_json(
                                dataclasses.replace(
                                    c, optimizer=self.engine.config.optimizer,
                                    max_seq_length=self.seq_length,
                                    mixed_precision=self.engine.config.mixed_precision))})
            storage.write_text(storage.join(c.output_dir, "metrics.json"),
                               json.dumps(result, indent=2, sort_keys=True))
            storage.write_text(storage.join(c.output_dir, "report.md"), report(result))
        print(f"Best epoch {best['epoch']}: dev {task.primary_metric} "
              f"{best['dev'][task.primary_metric]:.4f}; model, metrics.json and report.md in "
              f"{c.output_dir}", file=sys.stderr, flush=True)
        return result

    def _loss_log(self) -> list:
        path = storage.join(self.c.output_dir, "train_log.jsonl")
        if not storage.exists(path):
            return []
        records = []
        for line in storage.read_text(path).splitlines():
            try:  # a line someone added to the log is not a step's record
                records.append(json.loads(line))
            except ValueError:
                continue
        return [{"step": r["step"], "loss": round(r["loss"], 5)}
                for r in records if isinstance(r, dict) and "loss" in r]

    # -- scoring -------------------------------------------------------------

    def predict(self, data: TaskData) -> Dict[str, np.ndarray]:
        """The model's outputs on every feature of a file (per-token ones padded back to L)."""
        size, step = self.c.eval_batch_size, self._predict_step(data.arrays["input_ids"].ndim)
        outs: Dict[str, list] = {}
        L = data.arrays["input_ids"].shape[-1]
        for i in range(0, len(data), size):
            batch = trim_to_longest({k: data.arrays[k][i:i + size] for k in BERT_INPUTS})
            for k, v in step(batch).items():
                v = v.numpy().astype(np.float32)
                if k in self.task.per_token_outputs:
                    v = np.pad(v, [(0, 0), (0, L - v.shape[1])] + [(0, 0)] * (v.ndim - 2),
                               constant_values=-1e4)
                outs.setdefault(k, []).append(v)
        return {k: np.concatenate(v) for k, v in outs.items()}

    def _predict_step(self, rank: int):
        """The model's forward pass as one tf.function per input rank (traced once)."""
        steps = self.__dict__.setdefault("_predict_steps", {})
        if rank not in steps:
            model = self.model
            spec = {k: tf.TensorSpec([None] * rank, tf.int32) for k in BERT_INPUTS}
            steps[rank] = tf.function(lambda batch: model(batch, training=False),
                                      input_signature=[spec])
        return steps[rank]

    def evaluate(self, data: TaskData, write: bool = False) -> dict:
        """The task's metrics on a labelled file; predictions only when it has no labels."""
        scores, records = self.task.score(self.predict(data), data)
        if write:
            name = os.path.splitext(os.path.basename(data.path))[0]
            storage.write_text(storage.join(self.c.output_dir, f"predictions_{name}.jsonl"),
                               "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                       for r in records))
        scores = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in scores.items()}
        return scores if data.labelled else {"predictions": len(records)}


def _as_json(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def finetune(config: FinetuneConfig) -> dict:
    """Runs (or resumes) one fine-tuning job; returns metrics.json's content."""
    return Finetuner(config).run()
