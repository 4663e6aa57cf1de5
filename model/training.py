"""Pretraining under a tf.distribute strategy: the loop, checkpoints, resume, logs, eval.

A custom loop (as Model Garden's) rather than `model.fit`: it resumes
mid-run from the latest checkpoint with the optimizer's step, moments and
learning-rate position, keeps the last K checkpoints, stops on a NaN loss
naming the step, and reads the dataset through tfrecords' reader sharded
by the strategy's input context.
"""

import dataclasses
import json
import math
import os
import sys
import time
from typing import Dict, Sequence

import keras
import tensorflow as tf

from model.distribute import make_strategy, split_cpu
from model.optimization import OptimizerConfig, build_optimizer
from model.presets import ConfigError, parse_overrides, resolve
from model.pretrainer import build_pretrainer, pretraining_losses
from tfrecords.reader import Source, make_dataset, open_source
from tfrecords.shards import DatasetError
from tfrecords.vocab import read_vocab

MODEL_INPUTS = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions")


class TrainingError(Exception):
    """A run that cannot start or go on; the message says why, in one line."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a pretraining run depends on (written to config.json)."""

    input_file: str
    output_dir: str
    preset: str = "bert_tiny"
    model_overrides: Sequence[str] = ()
    vocab_file: str = ""
    train_batch_size: int = 32
    max_seq_length: int = 0  # 0: the dataset's
    max_predictions_per_seq: int = 20  # dynamic masking only; static takes the dataset's
    masked_lm_prob: float = 0.15  # dynamic masking only
    optimizer: OptimizerConfig = OptimizerConfig()
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    log_steps: int = 100
    strategy: str = "auto"
    tpu: str = ""
    num_cpu_devices: int = 0
    mixed_precision: str = "float32"
    jit_compile: bool = False
    init_checkpoint: str = ""
    eval_input_file: str = ""
    eval_batch_size: int = 64
    max_eval_steps: int = 0
    seed: int = 12345  # initial weights, dropout, shuffling
    shuffle: bool = True  # False: files and records in order (reproducible runs, tests)


def _dynamic_masker(vocab, spec_max_predictions, masked_lm_prob):
    """A tf.data map that masks unmasked batches with keras-hub's MaskedLMMaskGenerator."""
    import keras_hub

    ids = {t: i for i, t in enumerate(vocab)}
    special = [ids[t] for t in ("[PAD]", "[CLS]", "[SEP]", "[UNK]") if t in ids]
    generator = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=len(vocab), mask_selection_rate=masked_lm_prob,
        mask_token_id=ids["[MASK]"], mask_selection_length=spec_max_predictions,
        unselectable_token_ids=special)

    def mask(batch):
        out = generator(batch["input_ids"])
        batch = dict(batch)
        batch["input_ids"] = tf.cast(out["token_ids"], tf.int32)
        batch["masked_lm_positions"] = tf.cast(out["mask_positions"], tf.int32)
        batch["masked_lm_ids"] = tf.cast(out["mask_ids"], tf.int32)
        batch["masked_lm_weights"] = tf.cast(out["mask_weights"], tf.float32)
        return batch

    return mask


def _open_eval_source(path: str) -> Source:
    """A dataset directory's eval split when it has one (else its train split), or a pattern."""
    if tf.io.gfile.isdir(path):
        try:
            return open_source(path, split="eval")
        except DatasetError:
            pass
    return open_source(path)


class Trainer:
    """Builds everything inside the strategy's scope and runs the loop.

    Example:
        >>> Trainer(TrainConfig("runs/ds", "runs/model")).train()  # doctest: +SKIP
    """

    def __init__(self, config: TrainConfig):
        self.config = config
        c = config
        # Devices and the strategy first: logical CPUs and multi-worker
        # collectives must be set up before anything starts TensorFlow's runtime.
        if c.num_cpu_devices > 1:
            split_cpu(c.num_cpu_devices)
        try:
            self.strategy = make_strategy(c.strategy, tpu=c.tpu)
        except ValueError as e:
            raise TrainingError(str(e)) from None
        # The same seed gives the same initial weights, whatever the strategy.
        keras.utils.set_random_seed(c.seed)
        if c.mixed_precision not in ("float32", "mixed_float16", "mixed_bfloat16"):
            raise TrainingError(f"--mixed_precision must be float32, mixed_float16 or "
                                f"mixed_bfloat16, got {c.mixed_precision!r}")
        keras.mixed_precision.set_dtype_policy(c.mixed_precision)
        try:
            self.source: Source = open_source(c.input_file)
        except DatasetError as e:
            raise TrainingError(str(e)) from None
        spec = self.source.spec
        if c.max_seq_length and c.max_seq_length != spec.max_seq_length:
            raise TrainingError(
                f"--max_seq_length {c.max_seq_length} does not fit the dataset {c.input_file}, "
                f"made with max_seq_length {spec.max_seq_length}")
        self.seq_length = spec.max_seq_length
        self.max_predictions = spec.max_predictions_per_seq if spec.masked \
            else c.max_predictions_per_seq
        vocab_file = c.vocab_file or (self.source.dataset.vocab_file if self.source.dataset else "")
        if not vocab_file:
            raise TrainingError(f"{c.input_file} has no vocab.txt: pass --vocab_file")
        try:
            self.vocab = read_vocab(vocab_file)
        except DatasetError as e:
            raise TrainingError(str(e)) from None
        try:
            self.model_config = resolve(c.preset, vocabulary_size=len(self.vocab),
                                        overrides=parse_overrides(c.model_overrides))
        except ConfigError as e:
            raise TrainingError(str(e)) from None
        if self.seq_length > self.model_config.max_sequence_length:
            raise TrainingError(
                f"the dataset's sequences have {self.seq_length} tokens, more than the model's "
                f"max_sequence_length {self.model_config.max_sequence_length}")
        self._check_previous_run()
        accum = c.optimizer.gradient_accumulation_steps
        replicas = self.strategy.num_replicas_in_sync
        if c.train_batch_size % (replicas * accum):
            raise TrainingError(
                f"--train_batch_size {c.train_batch_size} is not divisible by {replicas} "
                f"replica(s) x {accum} accumulation step(s)")
        self.micro_batch = c.train_batch_size // accum
        with self.strategy.scope():
            self.model = build_pretrainer(self.model_config, next_sentence=spec.next_sentence)
            self.optimizer = build_optimizer(c.optimizer)
            if c.mixed_precision == "mixed_float16":
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.optimizer.build(self.model.trainable_variables)
        # `encoder` lets fine-tuning and export take the encoder alone (model/model_dir.py).
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                              encoder=self.model.get_layer("backbone"))
        # Every worker takes part in saving (it is a collective op), but only
        # the chief writes to MODEL_DIR/checkpoints; the others write to a
        # hidden subdirectory of their own. All resume from the chief's.
        self.checkpoint_dir = os.path.join(c.output_dir, "checkpoints")
        resolver = getattr(self.strategy, "cluster_resolver", None)
        task_type = getattr(resolver, "task_type", None)
        task_id = getattr(resolver, "task_id", 0) or 0
        has_chief = bool(task_type) and "chief" in resolver.cluster_spec().as_dict()
        # The chief task when the cluster names one, else worker 0.
        self.is_chief = task_type in (None, "chief") or (
            task_type == "worker" and task_id == 0 and not has_chief)
        save_dir = self.checkpoint_dir if self.is_chief else os.path.join(
            self.checkpoint_dir, f".{task_type}-{task_id}")
        self.manager = tf.train.CheckpointManager(self.checkpoint, save_dir,
                                                  max_to_keep=c.keep_checkpoint_max)

    # -- set-up ---------------------------------------------------------------

    def _step(self) -> int:
        """Optimizer steps taken (micro-steps // accumulation), as a Python int."""
        return int(keras.ops.convert_to_numpy(self.optimizer.iterations))

    def _check_previous_run(self):
        path = os.path.join(self.config.output_dir, "config.json")
        if not os.path.exists(path):
            return
        with open(path) as f:
            previous = json.load(f)
        if previous.get("model") != dataclasses.asdict(self.model_config):
            raise TrainingError(
                f"{self.config.output_dir} holds a run of another model ({path}); use a new "
                "--output_dir, or --init_checkpoint to start from its weights")

    def _write_config(self):
        os.makedirs(self.config.output_dir, exist_ok=True)
        generation = self.source.dataset.info.get("generation", {}) if self.source.dataset else {}
        data = {"kind": "pretrainer", "model": dataclasses.asdict(self.model_config),
                "tokenizer": {"do_lower_case": bool(generation.get("do_lower_case", True))},
                "training": dataclasses.asdict(self.config),
                "dataset": {"max_seq_length": self.seq_length,
                            "max_predictions_per_seq": self.max_predictions,
                            "masked": self.source.spec.masked,
                            "next_sentence": self.source.spec.next_sentence},
                "vocab_size": len(self.vocab)}
        with open(os.path.join(self.config.output_dir, "config.json"), "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        with open(os.path.join(self.config.output_dir, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(self.vocab) + "\n")

    def _restore(self) -> int:
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            step = self._step()
            print(f"Resuming from {latest} at step {step}", file=sys.stderr, flush=True)
            return step
        if self.config.init_checkpoint:
            path = self.config.init_checkpoint
            if os.path.isdir(path):
                path = tf.train.latest_checkpoint(os.path.join(path, "checkpoints")) or \
                    tf.train.latest_checkpoint(path)
            if not path:
                raise TrainingError(f"--init_checkpoint {self.config.init_checkpoint}: "
                                    "no checkpoint found")
            # Weights only: phase 2 starts a new schedule (and optimizer state).
            tf.train.Checkpoint(model=self.model).restore(path).expect_partial()
            print(f"Initialized the weights from {path}", file=sys.stderr, flush=True)
        return 0

    def _dataset(self, source: Source, batch_size: int, is_training: bool):
        """The distributed dataset of `source`, masked in tf.data when its records are not."""
        vocab, P, prob = self.vocab, self.max_predictions, self.config.masked_lm_prob
        seed, shuffle = self.config.seed, self.config.shuffle and is_training

        def dataset_fn(ctx):
            ds = make_dataset(source.origin, global_batch_size=batch_size, input_context=ctx,
                              is_training=is_training, shuffle=shuffle, seed=seed, source=source)
            if not source.spec.masked:
                ds = ds.map(_dynamic_masker(vocab, P, prob), num_parallel_calls=tf.data.AUTOTUNE)
            return ds

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # -- steps ----------------------------------------------------------------

    def _replica_losses(self, batch, global_batch, training):
        ctx = tf.distribute.get_replica_context()
        local_weight = tf.reduce_sum(tf.cast(batch["masked_lm_weights"], tf.float32))
        denominator = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local_weight) + 1e-5
        outputs = self.model({k: batch[k] for k in MODEL_INPUTS}, training=training)
        return pretraining_losses(outputs, batch, denominator, global_batch)

    def _train_step_fn(self):
        global_batch = self.micro_batch
        scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        clip_norm = self.config.optimizer.clip_norm

        def replica_step(batch):
            with tf.GradientTape() as tape:
                terms = self._replica_losses(batch, global_batch, training=True)
                loss = terms["mlm_loss"] + terms["nsp_loss"]
                scaled_loss = self.optimizer.scale_loss(loss) if scaled else loss
            variables = self.model.trainable_variables
            grads = tape.gradient(scaled_loss, variables)
            # Sum over replicas here, clip the global gradient, and hand each
            # replica 1/n of it: the optimizer sums again (Keras 3 would clip
            # each replica's part before summing, which is not BERT's clip).
            ctx = tf.distribute.get_replica_context()
            grads = [tf.convert_to_tensor(g) for g in grads]  # embedding grads are sparse
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            if clip_norm:
                threshold = clip_norm * (self.optimizer.scale_loss(1.0) if scaled else 1.0)
                grads, _ = tf.clip_by_global_norm(grads, threshold)
            grads = [g / ctx.num_replicas_in_sync for g in grads]
            self.optimizer.apply_gradients(zip(grads, variables))
            terms["loss"] = loss
            return terms

        # XLA compiles the replica's computation only: the iterator fetch
        # (IteratorGetNext) has no XLA kernel.
        compiled = tf.function(replica_step, jit_compile=True) if self.config.jit_compile \
            else replica_step

        def step(iterator):
            terms = self.strategy.run(compiled, args=(next(iterator),))
            return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in terms.items()}

        return tf.function(step)

    # -- the loop ---------------------------------------------------------------

    def train(self) -> Dict[str, float]:
        c = self.config
        step = self._restore()
        if self.is_chief:
            self._write_config()
        total = c.optimizer.num_train_steps
        if step >= total:
            print(f"Already at step {step} of {total}: nothing to train", file=sys.stderr)
            return self.evaluate() if c.eval_input_file else {}
        accum = c.optimizer.gradient_accumulation_steps
        iterator = iter(self._dataset(self.source, self.micro_batch, True))
        train_step = self._train_step_fn()
        writer = tf.summary.create_file_writer(os.path.join(c.output_dir, "logs", "train")) \
            if self.is_chief else tf.summary.create_noop_writer()
        window: Dict[str, float] = {}
        window_start, window_steps = time.time(), 0
        print(f"Training {self.model_config.preset} ({self.model.count_params():,} parameters) "
              f"on {self.strategy.num_replicas_in_sync} replica(s), global batch "
              f"{c.train_batch_size}, from step {step} to {total}", file=sys.stderr, flush=True)
        last = {}
        while step < total:
            for _ in range(accum):
                terms = train_step(iterator)
                for k, v in terms.items():
                    window[k] = window.get(k, 0.0) + float(v)
            step = self._step()
            window_steps += 1
            loss = float(terms["loss"])
            if not math.isfinite(loss):
                raise TrainingError(f"the loss became {loss} at step {step}; the last checkpoint "
                                    f"is {self.manager.latest_checkpoint}. Lower --learning_rate "
                                    "or check the data")
            if step % c.log_steps == 0 or step == total:
                last = self._log(writer, step, total, window, window_steps,
                                 time.time() - window_start)
                window, window_start, window_steps = {}, time.time(), 0
            if step % c.save_checkpoints_steps == 0 or step == total:
                self.manager.save(checkpoint_number=step)
        writer.flush()
        if c.eval_input_file:
            last.update(self.evaluate())
        return last

    def _log(self, writer, step, total, window, steps, seconds) -> Dict[str, float]:
        accum = self.config.optimizer.gradient_accumulation_steps
        micro = max(steps * accum, 1)
        metrics = {"mlm_loss": window.get("mlm_loss", 0.0) / micro,
                   "mlm_accuracy": window.get("mlm_correct", 0.0) / max(window.get("mlm_weight", 0), 1),
                   "learning_rate": float(keras.ops.convert_to_numpy(self.optimizer.learning_rate)),
                   "examples_per_second": steps * self.config.train_batch_size / max(seconds, 1e-9)}
        if "nsp_count" in window:
            metrics["nsp_loss"] = window["nsp_loss"] / micro
            metrics["nsp_accuracy"] = window["nsp_correct"] / max(window["nsp_count"], 1)
        metrics["loss"] = window.get("loss", 0.0) / micro
        with writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
        if self.is_chief:  # the same figures as JSON lines, for scripts and reports
            with open(os.path.join(self.config.output_dir, "train_log.jsonl"), "a") as f:
                f.write(json.dumps(dict(step=step, **metrics)) + "\n")
        print(f"step {step}/{total} " + " ".join(
            f"{k} {v:.4g}" for k, v in metrics.items()), file=sys.stderr, flush=True)
        return metrics

    def evaluate(self) -> Dict[str, float]:
        """One pass over --eval_input_file: MLM loss, accuracy, perplexity, NSP accuracy."""
        c = self.config
        try:
            source = _open_eval_source(c.eval_input_file)
        except DatasetError as e:
            raise TrainingError(str(e)) from None
        if source.spec.max_seq_length != self.seq_length:
            raise TrainingError(f"--eval_input_file has max_seq_length {source.spec.max_seq_length},"
                                f" the model trains at {self.seq_length}")
        dataset = self._dataset(source, c.eval_batch_size, False)
        batch_size = c.eval_batch_size

        @tf.function
        def eval_step(batch):
            terms = self.strategy.run(
                lambda b: self._replica_losses(b, batch_size, training=False), args=(batch,))
            return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in terms.items()}

        sums: Dict[str, float] = {}
        for index, batch in enumerate(dataset):
            if c.max_eval_steps and index >= c.max_eval_steps:
                break
            for k, v in eval_step(batch).items():
                sums[k] = sums.get(k, 0.0) + float(v)
        if not sums:
            raise TrainingError(f"--eval_input_file {c.eval_input_file} holds no records")
        mlm_loss = sums["mlm_loss_sum"] / max(sums["mlm_weight"], 1e-9)
        results = {"eval_mlm_loss": mlm_loss,
                   "eval_mlm_accuracy": sums["mlm_correct"] / max(sums["mlm_weight"], 1e-9),
                   "eval_mlm_perplexity": math.exp(min(mlm_loss, 50.0))}
        if "nsp_count" in sums:
            results["eval_nsp_accuracy"] = sums["nsp_correct"] / max(sums["nsp_count"], 1)
        step = self._step()
        if not self.is_chief:
            return results
        writer = tf.summary.create_file_writer(os.path.join(c.output_dir, "logs", "eval"))
        with writer.as_default(step=step):
            for name, value in results.items():
                tf.summary.scalar(name, value)
        with open(os.path.join(c.output_dir, "eval_results.json"), "w") as f:
            json.dump(dict(results, step=step), f, indent=2)
        print("eval " + " ".join(f"{k} {v:.4g}" for k, v in results.items()), file=sys.stderr,
              flush=True)
        return results


def train(config: TrainConfig) -> Dict[str, float]:
    """Builds a Trainer and runs it; returns the last logged (and eval) metrics."""
    return Trainer(config).train()
