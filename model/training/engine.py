"""One training loop for pretraining and fine-tuning, under a tf.distribute strategy.

A custom loop (as Model Garden's) rather than `model.fit`. It owns, for
every task alike: the strategy and `strategy.scope()`, the distributed step
(each replica's loss terms divided by their all-reduced counts, gradients
summed over replicas and then clipped as one global norm, after accumulation),
gradient accumulation, mixed precision with loss scaling, XLA, checkpoints every N
steps with resume after a crash (model, optimizer, the dropout RNG state),
TensorBoard and JSON-lines logs (loss, gradient norm before the clip, learning
rate, examples/s), the console progress line with an ETA, the
NaN stop, and preemption: on SIGTERM or SIGINT (a spot VM reclaimed, a pod
evicted, Ctrl-C) the step under way finishes, every worker saves a checkpoint
at the same step, and `train` raises `Preempted` (the commands exit with
EXIT_PREEMPTED); the same command resumes from that step. A task
(model/tasks/base.py's EngineTask, the one protocol of pretraining and
fine-tuning) supplies the model and its loss terms:

    task.build_model() -> keras.Model            (called inside strategy.scope())
    task.trainable_variables(model) -> list      (optional: what the optimizer updates)
    task.checkpoint_objects(model) -> dict       (optional: e.g. encoder=<the backbone>)
    task.replica_terms(model, batch, training) -> (losses, stats)
        losses: {name: (sum over this replica's examples, their count)}; the loss is
                sum_name(all-reduced sum / all-reduced count), so padding and
                uneven replicas weigh nothing
        stats:  {name: a sum to log}
    task.log_metrics(sums, micro_steps) -> {name: value}  (the logged figures)
"""

import dataclasses
import datetime
import json
import math
import os
import signal
import sys
import threading
import time
from typing import Callable, Dict, Optional

import keras
import tensorflow as tf

from model import storage
from model.training.distribute import make_strategy, split_cpu
from model.training.optimization import OptimizerConfig, build_optimizer

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def bf16_hardware(strategy) -> tuple:
    """(whether the devices compute in bfloat16 natively, what was found).

    TPUs do; GPUs from compute capability 8.0 (Ampere); CPUs with AVX512_BF16 or
    AMX-BF16. Elsewhere bfloat16 is emulated: on this project's 2-core Xeon without
    either, mixed_bfloat16 trained bert_mini 2.5x slower than float32 (measured).
    """
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return True, "TPU"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get(
            "compute_capability") or (0, 0)
        return tuple(capability) >= (8, 0), f"GPU compute capability {capability}"
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        flags = set()
    found = sorted(flags & {"avx512_bf16", "amx_bf16"})
    return bool(found), f"CPU with {', '.join(found)}" if found else \
        "CPU without AVX512_BF16 or AMX-BF16"


class TrainingError(Exception):
    """A run that cannot start or go on; the message says why, in one line."""


# The commands' exit status after a preemption: sysexits' EX_TEMPFAIL ("a temporary
# failure; the user is invited to retry"), apart from errors (1) and usage (2), so that a
# job controller's retry policy can match it.
EXIT_PREEMPTED = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """SIGTERM or SIGINT stopped the run after a checkpoint at `step`; the message is the
    line to print."""

    def __init__(self, step: int, signal_name: str):
        super().__init__(f"preempted at step {step} ({signal_name}): checkpoint saved; rerun "
                         "the same command to resume")
        self.step, self.signal_name = step, signal_name


class StopSignals:
    """While active, SIGTERM and SIGINT set `received` instead of killing the process.

    The loop passes it to each step, which sums it over the replicas with its other
    terms, so every worker learns of a signal that reached any one of them after the
    same step. A second
    signal while the checkpoint is written is noted and ignored: the save finishes
    (a SIGKILL then can still cut it; restore falls back to the previous checkpoint).
    Handlers can only be set from the main thread; elsewhere this does nothing.
    """

    def __init__(self):
        self.received: Optional[str] = None
        self._previous = {}

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received:
            print(f"{name} again: still finishing the step and saving the checkpoint",
                  file=sys.stderr, flush=True)
            return
        self.received = name
        print(f"{name}: finishing the current step, then saving a checkpoint", file=sys.stderr,
              flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type, *exc):
        # After a preemption the process is on its way out: a signal still to come (the
        # controller's second notice) must not kill it with another exit status.
        if exc_type is not Preempted:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
        self._previous = {}
        return False


@dataclasses.dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """The settings of the loop, shared by `model.pretrain` and `model.finetune` (same flags)."""

    train_batch_size: int = 32  # global, over all replicas and accumulation steps
    optimizer: OptimizerConfig = OptimizerConfig()
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    log_steps: int = 100
    strategy: str = "auto"
    tpu: str = ""
    num_cpu_devices: int = 0
    mixed_precision: str = "auto"
    jit_compile: bool = False
    seed: int = 12345  # initial weights, dropout, shuffling


def engine_config(config) -> EngineConfig:
    """The EngineConfig part of a run's config (a subclass of EngineConfig)."""
    return EngineConfig(**{f.name: getattr(config, f.name)
                           for f in dataclasses.fields(EngineConfig)})


def seed_states(model) -> list:
    """The RNG states of the model's dropout layers (Keras keeps them out of checkpoints)."""
    return [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]


class Engine:
    """Devices, strategy and precision first; then `build(task)`; then `train(...)`.

    Args:
        config: the loop's settings.
        output_dir: the model directory (logs, train_log.jsonl).
        checkpoint_dir: where the loop's checkpoints go (default OUTPUT_DIR/checkpoints).

    Example:
        >>> engine = Engine(EngineConfig(), "runs/m")  # doctest: +SKIP
        >>> engine.build(task); engine.restore()  # doctest: +SKIP
        >>> engine.train(task, iterator, total_steps=100)  # doctest: +SKIP
    """

    def __init__(self, config: EngineConfig, output_dir: str, checkpoint_dir: str = ""):
        self.config, self.output_dir = config, output_dir
        c = config
        if c.mixed_precision not in PRECISIONS:
            raise TrainingError(f"--mixed_precision must be one of {', '.join(PRECISIONS)}, "
                                f"got {c.mixed_precision!r}")
        # Logical CPUs and multi-worker collectives must be set up before
        # anything starts TensorFlow's runtime (reading data does).
        if c.num_cpu_devices > 1:
            split_cpu(c.num_cpu_devices)
        try:
            self.strategy = make_strategy(c.strategy, tpu=c.tpu)
        except ValueError as e:
            raise TrainingError(str(e)) from None
        if c.mixed_precision == "auto":
            native, found = bf16_hardware(self.strategy)
            precision = "mixed_bfloat16" if native else "float32"
            print(f"--mixed_precision auto: {precision} ({found})", file=sys.stderr, flush=True)
            c = self.config = dataclasses.replace(c, mixed_precision=precision)
        # The same seed gives the same initial weights, whatever the strategy.
        keras.utils.set_random_seed(c.seed)
        self.replicas = self.strategy.num_replicas_in_sync
        self._set_micro_batch(c.optimizer.gradient_accumulation_steps)
        resolver = getattr(self.strategy, "cluster_resolver", None)
        task_type = getattr(resolver, "task_type", None)
        task_id = getattr(resolver, "task_id", 0) or 0
        has_chief = bool(task_type) and "chief" in resolver.cluster_spec().as_dict()
        # The chief task when the cluster names one, else worker 0.
        self.is_chief = task_type in (None, "chief") or (
            task_type == "worker" and task_id == 0 and not has_chief)
        self.checkpoint_dir = checkpoint_dir or os.path.join(output_dir, "checkpoints")
        # Only the chief writes to the checkpoint directory; the others write to
        # a hidden subdirectory of their own. All resume from the chief's.
        self._save_dir = self.checkpoint_dir if self.is_chief else os.path.join(
            self.checkpoint_dir, f".{task_type}-{task_id}")
        self.model = self.optimizer = self.manager = self.progress = None
        self.elapsed = 0.0  # training seconds of the run so far (all its sessions)

    # -- set-up ---------------------------------------------------------------

    def _set_micro_batch(self, accum: int) -> None:
        """The global batch of one micro-step (what the input pipeline must give)."""
        batch = self.config.train_batch_size
        if batch % (self.replicas * accum):
            raise TrainingError(
                f"--train_batch_size {batch} is not divisible by {self.replicas} "
                f"replica(s) x {accum} accumulation step(s)")
        self.micro_batch = batch // accum  # global, per micro-step

    def build(self, task, optimizer: Optional[OptimizerConfig] = None) -> keras.Model:
        """The task's model and the optimizer, inside the strategy's scope.

        Args:
            optimizer: overrides config.optimizer (fine-tuning knows its step count only
                once it has read its data).
        """
        c = self.config
        if optimizer is not None:
            c = self.config = dataclasses.replace(c, optimizer=optimizer)
            # Fine-tuning's input pipeline is sized from micro_batch after this call.
            self._set_micro_batch(optimizer.gradient_accumulation_steps)
        # Layers take the dtype policy when they are built: set it for this model
        # only, not for whatever the process builds next.
        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy(c.mixed_precision)
        try:
            with self.strategy.scope():
                self.model = task.build_model()
        finally:
            keras.mixed_precision.set_dtype_policy(previous)
        with self.strategy.scope():
            # A wall-clock budget: the fraction spent, set in every step (all replicas
            # and workers agree on it: their measurements are averaged), read by the
            # learning-rate schedule. One copy per replica (ON_READ), each assigned the
            # same all-reduced figure inside the step; a mirrored (ON_WRITE) variable
            # cannot be assigned there without a cross-replica merge.
            self.progress = tf.Variable(
                0.0, trainable=False, name="budget_progress",
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA) \
                if c.optimizer.train_budget_minutes else None
            self.optimizer = build_optimizer(c.optimizer, replicas=self.replicas,
                                             progress=self.progress)
            if c.mixed_precision == "mixed_float16":
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            get_vars = getattr(task, "trainable_variables", None)
            self.variables = get_vars(self.model) if get_vars else self.model.trainable_variables
            self.optimizer.build(self.variables)
        extra = getattr(task, "checkpoint_objects", lambda m: {})(self.model)
        self._rng = seed_states(self.model)
        # The training seconds spent so far (a budget run resumes with what is left).
        self._elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                    name="train_seconds")
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                              rng=self._rng, train_seconds=self._elapsed,
                                              **extra)
        # Restored alone, and checked: every model and optimizer variable must be
        # found (a checkpoint of an earlier version has no RNG state: still resumable).
        self._checked = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, **extra)
        self.manager = self.checkpoint_manager(self.checkpoint, self.checkpoint_dir,
                                               self.config.keep_checkpoint_max)
        return self.model

    def checkpoint_manager(self, checkpoint, directory: str, max_to_keep: int):
        """A manager that saves into `directory` on the chief, a hidden subdirectory elsewhere
        (every worker takes part in saving: it is a collective op)."""
        if not self.is_chief:
            directory = os.path.join(directory, os.path.basename(self._save_dir))
        return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep)

    def step(self) -> int:
        """Optimizer steps taken, as a Python int."""
        return int(keras.ops.convert_to_numpy(self.optimizer.iterations))

    def restore(self) -> int:
        """Resumes from the newest readable checkpoint in checkpoint_dir; returns its step
        (0: none).

        A checkpoint that cannot be read (a truncated .data file, a bad index: a
        copy or a kill during the save) is moved aside as `ckpt-N.unreadable-*`, with a
        warning naming it, and the previous one is tried. A checkpoint of another
        model is an error (no fallback: it would silently train something else).
        The training log is cut back to the restored step, and the temporary
        directories of an interrupted save are removed.
        """
        state = tf.train.get_checkpoint_state(self.checkpoint_dir)
        candidates = list(state.all_model_checkpoint_paths) if state else []
        if state and state.model_checkpoint_path and \
                state.model_checkpoint_path not in candidates:
            candidates.append(state.model_checkpoint_path)
        candidates = [p if os.path.isabs(p) or "://" in p else
                      os.path.join(self.checkpoint_dir, p) for p in candidates]
        restored, bad = None, []
        for path in reversed(candidates):
            try:
                self._checked.restore(path).assert_existing_objects_matched()
                tf.train.Checkpoint(rng=self._rng, train_seconds=self._elapsed).restore(
                    path).expect_partial()
            except AssertionError as e:
                raise TrainingError(f"{path} does not hold this run's model "
                                    f"({str(e).splitlines()[0][:160]}); use a new --output_dir") \
                    from None
            except (tf.errors.OpError, ValueError, IndexError) as e:
                reason = (getattr(e, "message", None) or str(e)).strip().splitlines()[0][:160]
                print(f"warning: checkpoint {path} is unreadable ({type(e).__name__}: {reason}); "
                      "trying the one before it", file=sys.stderr, flush=True)
                bad.append(path)
                continue
            restored = path
            break
        if self.is_chief:
            self._set_aside(bad, [p for p in candidates if p not in bad])
        if candidates and restored is None:
            raise TrainingError(f"no readable checkpoint in {self.checkpoint_dir} (tried "
                                f"{', '.join(os.path.basename(p) for p in bad)}); use a new "
                                "--output_dir, or delete them to start over")
        step = self.step() if restored else 0
        self.elapsed = float(self._elapsed.numpy()) if restored else 0.0
        if self.is_chief:
            for name in ("train_log.jsonl", "eval_log.jsonl"):
                self._truncate_log(step, name)
        if restored:
            print(f"Resuming from {restored} at step {step}", file=sys.stderr, flush=True)
        return step

    def _set_aside(self, bad: list, good: list) -> None:
        """Moves unreadable checkpoints aside, records the readable ones as the state,
        and removes the *_temp directories a kill during a save leaves."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for prefix in bad:
            for name in tf.io.gfile.glob(prefix + ".*"):
                tf.io.gfile.rename(name, name.replace(
                    os.path.basename(prefix) + ".", os.path.basename(prefix) + f".unreadable-{stamp}.",
                    1), overwrite=True)
        if bad:
            tf.compat.v1.train.update_checkpoint_state(
                self.checkpoint_dir, model_checkpoint_path=good[-1] if good else "",
                all_model_checkpoint_paths=good)
            self.manager = self.checkpoint_manager(self.checkpoint, self.checkpoint_dir,
                                                   self.config.keep_checkpoint_max)
        for temp in tf.io.gfile.glob(os.path.join(self.checkpoint_dir, "*_temp")):
            tf.io.gfile.rmtree(temp)

    def _truncate_log(self, step: int, name: str = "train_log.jsonl") -> None:
        """The log keeps the records up to `step`: after a kill and a resume, the steps
        between the last checkpoint and the kill are logged once, by the resumed run."""
        path = os.path.join(self.output_dir, name)
        if not tf.io.gfile.exists(path):
            return
        with tf.io.gfile.GFile(path) as f:
            lines = f.read().splitlines()
        kept, foreign = [], 0
        for index, line in enumerate(lines):
            try:
                record = json.loads(line)
                logged = record["step"]
                if not isinstance(logged, int):
                    raise TypeError(logged)
            except (ValueError, KeyError, TypeError):
                if index == len(lines) - 1:  # the last line, cut by the kill: dropped
                    continue
                foreign += 1  # not ours to delete: kept where it is
                kept.append(line)
                continue
            if logged <= step:
                kept.append(line)
        if foreign:
            print(f"warning: {path} has {foreign} line(s) that are not a step's record; kept",
                  file=sys.stderr, flush=True)
        if len(kept) != len(lines):
            storage.write_text(path, "".join(line + "\n" for line in kept))

    def save(self, step: int) -> None:
        self._elapsed.assign(self.elapsed)
        if self.manager.latest_checkpoint != os.path.join(self.manager.directory,
                                                          f"ckpt-{step}"):
            self.manager.save(checkpoint_number=step)

    def distribute(self, dataset_fn: Callable) -> tf.distribute.DistributedDataset:
        """dataset_fn(input_context) -> per-replica batches, distributed over the replicas."""
        return self.strategy.distribute_datasets_from_function(dataset_fn)

    # -- steps ----------------------------------------------------------------

    def _terms(self, task, batch, training):
        """This replica's part of the global loss, and the task's sums."""
        ctx = tf.distribute.get_replica_context()
        losses, stats = task.replica_terms(self.model, batch, training)
        out = dict(stats)
        total = 0.0
        for name, (loss_sum, count) in losses.items():
            count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(count, tf.float32))
            out[name] = tf.cast(loss_sum, tf.float32) / tf.maximum(count, 1e-5)
            total += out[name]
        out["loss"] = total
        return out

    def _train_step_fn(self, task):
        scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        variables, optimizer = self.variables, self.optimizer

        def replica_step(batch, stop, progress):
            ctx = tf.distribute.get_replica_context()
            # On the replica's device (the argument lives on the host, which all_reduce
            # cannot take).
            progress = tf.zeros([], tf.float32) + tf.cast(progress, tf.float32)
            if self.progress is not None:  # before the update: the schedule reads it
                progress = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, progress)
                self.progress.assign(progress)
            with tf.GradientTape() as tape:
                terms = self._terms(task, batch, training=True)
                loss = terms["loss"]
                scaled_loss = optimizer.scale_loss(loss) if scaled else loss
            grads = tape.gradient(scaled_loss, variables)
            unused = [v.path for v, g in zip(variables, grads) if g is None]
            if unused:  # at trace time: a task that trains what its loss does not read
                raise TrainingError(f"no gradient reaches {len(unused)} trained variable(s) "
                                    f"({', '.join(unused[:3])}): the task's "
                                    "trainable_variables() must leave them out")
            # Sum over replicas here and hand each replica 1/n of the sum: the
            # optimizer sums again, and clips each replica's part at clip_norm / n
            # (model/training/optimization.py), after accumulating micro-steps: BERT's clip of
            # the global gradient (Keras alone would clip each replica's own part).
            grads = [tf.convert_to_tensor(g) for g in grads]  # embedding grads are sparse
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            # The global batch's gradient norm before the clip (as Hugging Face's Trainer
            # logs it; unscaled), summed over the replicas by _reduce: 1/n each.
            norm = tf.linalg.global_norm(grads)
            if scaled:
                norm = norm / tf.cast(optimizer.scale_loss(1.0), norm.dtype)
            terms["grad_norm"] = norm / ctx.num_replicas_in_sync
            grads = [g / ctx.num_replicas_in_sync for g in grads]
            optimizer.apply_gradients(zip(grads, variables))
            # A stop signal that reached any worker: summed over the replicas with the
            # other terms (> 0 when one did), so every worker learns of it after the same
            # step. Computed on the replica's device (the argument lives on the host).
            terms["stop"] = tf.zeros_like(terms["loss"]) + stop
            # The agreed progress (summed over the replicas by _reduce: 1/n each).
            terms["progress"] = tf.zeros_like(terms["loss"]) + progress / ctx.num_replicas_in_sync
            return terms

        # XLA compiles the replica's computation only: the iterator fetch
        # (IteratorGetNext) has no XLA kernel.
        compiled = tf.function(replica_step, jit_compile=True) if self.config.jit_compile \
            else replica_step
        return tf.function(lambda iterator, stop, progress: self._reduce(
            self.strategy.run(compiled, args=(next(iterator), stop, progress))))

    def _reduce(self, terms):
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in terms.items()}

    # -- the loop ---------------------------------------------------------------

    def train(self, task, iterator, total_steps: int,
              after_step: Optional[Callable[[int], bool]] = None, start_step: int = 0,
              description: str = "") -> Dict[str, float]:
        """Optimizer steps from start_step to total_steps; returns the last logged metrics.

        Args:
            iterator: over the distributed dataset (micro-batches), positioned at start_step.
            after_step: called with the step after every optimizer step (fine-tuning
                evaluates at epoch ends); returning True stops the run (early stopping).
                Its time does not count against a wall-clock budget.

        With config.optimizer.train_budget_minutes, the run also ends when the budget
        is spent (the training time of every session of the run, resumes included):
        the step that finds it spent runs at the schedule's end learning rate, and is
        the last.
        """
        c = self.config
        accum = c.optimizer.gradient_accumulation_steps
        budget = c.optimizer.train_budget_minutes * 60.0
        train_step = self._train_step_fn(task)
        writer = tf.summary.create_file_writer(os.path.join(self.output_dir, "logs", "train")) \
            if self.is_chief else tf.summary.create_noop_writer()
        print(f"Training {description}({self.model.count_params():,} parameters) on "
              f"{self.replicas} replica(s), global batch {c.train_batch_size}, precision "
              f"{c.mixed_precision}, from step {start_step} to "
              + (f"the end of a {c.optimizer.train_budget_minutes:g}-minute budget "
                 f"({self.elapsed / 60:.1f} spent; at most {total_steps} steps)" if budget
                 else str(total_steps)), file=sys.stderr, flush=True)
        window: Dict[str, float] = {}
        window_start, window_steps, run_start = time.time(), 0, time.time()
        step, last, progress = start_step, {}, self.elapsed / budget if budget else 0.0
        with StopSignals() as signals:
            while step < total_steps and progress < 1.0:
                started = time.time()
                for _ in range(accum):
                    measured = self.elapsed + time.time() - started
                    terms = train_step(iterator, tf.constant(1.0 if signals.received else 0.0),
                                       tf.constant(measured / budget if budget else 0.0))
                    stop = float(terms.pop("stop"))
                    agreed = float(terms.pop("progress"))
                    for k, v in terms.items():
                        window[k] = window.get(k, 0.0) + float(v)
                if budget:  # every worker reads the same agreed figure: they stop together
                    progress = agreed
                step = self.step()
                window_steps += 1
                loss = float(terms["loss"])
                if not math.isfinite(loss):
                    raise TrainingError(
                        f"the loss became {loss} at step {step}; the last checkpoint is "
                        f"{self.manager.latest_checkpoint}. Lower --learning_rate or check the "
                        "data")
                done = step >= total_steps or progress >= 1.0
                if step % c.log_steps == 0 or done or stop:
                    eta = (time.time() - run_start) / max(step - start_step, 1) * \
                        (total_steps - step)
                    if budget:
                        eta = min(eta, max(budget - self.elapsed - time.time() + started, 0))
                    last = self._log(task, writer, step, "?" if budget else total_steps,
                                     window, window_steps, time.time() - window_start, eta)
                    window, window_start, window_steps = {}, time.time(), 0
                self.elapsed += time.time() - started
                if step % c.save_checkpoints_steps == 0 or done or stop:
                    self.save(step)
                if stop:
                    writer.flush()
                    raise Preempted(step, signals.received or "a peer's stop signal")
                if after_step is not None:
                    called = time.time()
                    finished = after_step(step)
                    # Evaluation time is neither budget nor this window's examples/s.
                    window_start += time.time() - called
                    if finished:
                        self.save(step)
                        break
        writer.flush()
        return last

    def _log(self, task, writer, step, total, window, steps, seconds, eta) -> Dict[str, float]:
        micro = max(steps * self.config.optimizer.gradient_accumulation_steps, 1)
        metrics = dict(task.log_metrics(window, micro))
        metrics["loss"] = window.get("loss", 0.0) / micro
        # With accumulation: the mean of the micro-batches' gradient norms.
        metrics["grad_norm"] = window.get("grad_norm", 0.0) / micro
        metrics["learning_rate"] = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
        metrics["examples_per_second"] = steps * self.config.train_batch_size / max(seconds, 1e-9)
        if self.progress is not None:  # the fraction of the wall-clock budget spent
            metrics["budget_spent"] = float(keras.ops.convert_to_numpy(self.progress))
        with writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
        if self.is_chief:  # the same figures as JSON lines, for scripts and reports
            storage.append_line(storage.join(self.output_dir, "train_log.jsonl"),
                                json.dumps(dict(step=step, **metrics)))
        print(f"step {step}/{total} " + " ".join(f"{k} {v:.4g}" for k, v in metrics.items())
              + f" eta {datetime.timedelta(seconds=round(eta))}", file=sys.stderr, flush=True)
        return metrics

    def evaluate_sums(self, task, dataset, max_steps: int = 0) -> Dict[str, float]:
        """The task's stats summed over one pass of a distributed dataset (no update)."""

        @tf.function
        def eval_step(batch):
            return self._reduce(self.strategy.run(
                lambda b: self._terms(task, b, training=False), args=(batch,)))

        sums: Dict[str, float] = {}
        for index, batch in enumerate(dataset):
            if max_steps and index >= max_steps:
                break
            for k, v in eval_step(batch).items():
                sums[k] = sums.get(k, 0.0) + float(v)
        return sums

    def write_summaries(self, name: str, step: int, results: Dict[str, float]) -> None:
        """TensorBoard scalars under OUTPUT_DIR/logs/<name> (chief only)."""
        if not self.is_chief:
            return
        writer = tf.summary.create_file_writer(os.path.join(self.output_dir, "logs", name))
        with writer.as_default(step=step):
            for key, value in results.items():
                if isinstance(value, (int, float)):
                    tf.summary.scalar(key, value)
        writer.flush()
