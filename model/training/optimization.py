"""BERT's optimizers: AdamW (no decay on LayerNorm and biases) or LAMB, warmup + decay.

The learning rate rises linearly from 0 over num_warmup_steps, then decays
polynomially (power 1: linearly, as BERT) to end_learning_rate at
num_train_steps. With gradient accumulation the optimizer counts
micro-steps; the schedule divides them back into optimizer steps.

Two more shapes, both functions of the run's progress p in [0, 1]:
  - "linear" with warmup_fraction: warmup over that fraction, then the decay;
    with warmup_fraction 0.5 it is the one-cycle triangle (Cramming);
  - "wsd" (warmup-stable-decay): warmup, the peak held, then the decay over the
    last decay_fraction of the run.
p is step / num_train_steps, or with train_budget_minutes the fraction of the
wall-clock budget spent (academic-budget-bert, Cramming): the engine measures
it before every step and the schedule reaches end_learning_rate exactly when
the budget ends; the steps are what fits.
"""

import dataclasses

import keras

# Substrings of variable paths that get no weight decay (BERT's exclusions).
NO_DECAY = ["bias", "gamma", "beta", "layer_norm", "LayerNorm"]


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and schedule settings (google-research/bert's defaults)."""

    optimizer: str = "adamw"  # or "lamb"
    learning_rate: float = 1e-4
    end_learning_rate: float = 0.0
    num_train_steps: int = 100_000
    num_warmup_steps: int = 10_000
    decay_power: float = 1.0
    weight_decay: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6
    clip_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    lr_schedule: str = "linear"  # or "wsd" (warmup-stable-decay)
    warmup_fraction: float = 0.0  # > 0: warmup over this fraction of the run (steps or budget)
    decay_fraction: float = 0.2  # wsd: the final fraction of the run spent decaying
    train_budget_minutes: float = 0.0  # > 0: the schedule follows wall-clock time

    def check(self) -> None:
        """Raises ValueError naming the flag that cannot work."""
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"--lr_schedule must be one of {', '.join(SCHEDULES)}, "
                             f"got {self.lr_schedule!r}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"--warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not 0.0 < self.decay_fraction <= 1.0:
            raise ValueError(f"--decay_fraction must be in (0, 1], got {self.decay_fraction}")
        if self.lr_schedule == "wsd" and self.warmup_fraction + self.decay_fraction > 1.0:
            raise ValueError(f"--warmup_fraction {self.warmup_fraction} + --decay_fraction "
                             f"{self.decay_fraction} exceed the run")
        if self.train_budget_minutes < 0:
            raise ValueError(f"--train_budget_minutes must be >= 0, "
                             f"got {self.train_budget_minutes}")

    @property
    def by_progress(self) -> bool:
        """The schedule is a function of the run's progress (not BERT's step schedule)."""
        return bool(self.train_budget_minutes or self.warmup_fraction or
                    self.lr_schedule != "linear")


SCHEDULES = ("linear", "wsd")


@keras.saving.register_keras_serializable(package="bert_pipeline")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then polynomial decay, counted in optimizer steps.

    Example:
        >>> s = WarmupPolynomialDecay(1e-3, 0.0, num_train_steps=100, num_warmup_steps=10)
        >>> [round(float(s(i)), 6) for i in (0, 5, 10, 55, 100)]
        [0.0, 0.0005, 0.001, 0.0005, 0.0]
    """

    def __init__(self, learning_rate, end_learning_rate, num_train_steps, num_warmup_steps,
                 power=1.0, accumulation_steps=1):
        self.learning_rate = learning_rate
        self.end_learning_rate = end_learning_rate
        self.num_train_steps = num_train_steps
        self.num_warmup_steps = num_warmup_steps
        self.power = power
        self.accumulation_steps = accumulation_steps

    def __call__(self, iterations):
        ops = keras.ops
        step = ops.cast(ops.floor_divide(iterations, self.accumulation_steps), "float32")
        warmup = ops.cast(max(self.num_warmup_steps, 1), "float32")
        decay_steps = ops.cast(max(self.num_train_steps - self.num_warmup_steps, 1), "float32")
        progress = ops.clip((step - warmup) / decay_steps, 0.0, 1.0)
        decayed = (self.learning_rate - self.end_learning_rate) * ops.power(
            1.0 - progress, self.power) + self.end_learning_rate
        warm = self.learning_rate * step / warmup
        if self.num_warmup_steps <= 0:
            return decayed
        return ops.where(step < warmup, warm, decayed)

    def get_config(self):
        return dict(learning_rate=self.learning_rate, end_learning_rate=self.end_learning_rate,
                    num_train_steps=self.num_train_steps, num_warmup_steps=self.num_warmup_steps,
                    power=self.power, accumulation_steps=self.accumulation_steps)


@keras.saving.register_keras_serializable(package="bert_pipeline")
class ProgressSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate as a function of the run's progress p in [0, 1].

    p is `progress` (a variable the engine sets before every step: the fraction of the
    wall-clock budget spent) or, without one, optimizer steps / num_train_steps.

    Example:
        >>> s = ProgressSchedule(1e-3, 0.0, "wsd", warmup_fraction=0.1, decay_fraction=0.2,
        ...                      num_train_steps=100)
        >>> [round(float(s(i)), 6) for i in (0, 5, 10, 50, 80, 90, 100)]
        [0.0, 0.0005, 0.001, 0.001, 0.001, 0.0005, 0.0]
    """

    def __init__(self, learning_rate, end_learning_rate, shape="linear", warmup_fraction=0.0,
                 decay_fraction=0.2, power=1.0, num_train_steps=1, accumulation_steps=1,
                 progress=None):
        self.learning_rate = learning_rate
        self.end_learning_rate = end_learning_rate
        self.shape = shape
        self.warmup_fraction = warmup_fraction
        self.decay_fraction = decay_fraction
        self.power = power
        self.num_train_steps = num_train_steps
        self.accumulation_steps = accumulation_steps
        self.progress = progress

    def __call__(self, iterations):
        ops = keras.ops
        if self.progress is not None:
            p = ops.cast(self.progress, "float32")
        else:
            step = ops.cast(ops.floor_divide(iterations, self.accumulation_steps), "float32")
            p = step / float(max(self.num_train_steps, 1))
        p = ops.clip(p, 0.0, 1.0)
        w = self.warmup_fraction
        start = w if self.shape == "linear" else 1.0 - self.decay_fraction
        q = ops.clip((p - start) / max(1.0 - start, 1e-9), 0.0, 1.0)
        decayed = (self.learning_rate - self.end_learning_rate) * ops.power(
            1.0 - q, self.power) + self.end_learning_rate
        if w <= 0:
            return decayed
        return ops.where(p < w, self.learning_rate * p / w, decayed)

    def get_config(self):
        return dict(learning_rate=self.learning_rate, end_learning_rate=self.end_learning_rate,
                    shape=self.shape, warmup_fraction=self.warmup_fraction,
                    decay_fraction=self.decay_fraction, power=self.power,
                    num_train_steps=self.num_train_steps,
                    accumulation_steps=self.accumulation_steps)


@keras.saving.register_keras_serializable(package="bert_pipeline")
class AdamW(keras.optimizers.AdamW):
    """AdamW with epsilon added to the bias-corrected root of the second moment.

    The update is lr * m_hat / (sqrt(v_hat) + epsilon), Kingma & Ba's Algorithm 1, as
    PyTorch's AdamW (hence Hugging Face's Trainer) and Optax compute it. Keras' Adam
    adds epsilon before the bias correction (the paper's "efficient version"), which
    makes the effective epsilon epsilon / sqrt(1 - beta_2^t): 22x epsilon at step 2,
    still 2.5x after 180 steps. Over a fine-tuning run of a few hundred steps that
    damps the update of every weight whose gradient is below ~1e-5 (most of an
    encoder's), measured as a per-step loss that drifted from transformers' from the
    second update on (benchmarks/finetune_parity.py). Pretraining runs, tens of
    thousands of steps, hardly see the difference.

    Example:
        >>> opt = AdamW(learning_rate=0.1, epsilon=1e-8, weight_decay=0.0)
        >>> v = keras.Variable([1.0, 1.0])
        >>> _ = opt.apply_gradients([(keras.ops.convert_to_tensor([1e-7, -2.0]), v)])
        >>> [round(float(x), 4) for x in v.numpy()]  # keras.optimizers.AdamW: [0.976, 1.1]
        [0.9091, 1.1]
    """

    def update_step(self, gradient, variable, learning_rate):
        ops = keras.ops
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        step = ops.cast(self.iterations + 1, variable.dtype)
        correction_1 = 1 - ops.power(ops.cast(self.beta_1, variable.dtype), step)
        root_correction_2 = ops.sqrt(1 - ops.power(ops.cast(self.beta_2, variable.dtype), step))
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        # lr * (m / c1) / (sqrt(v) / sqrt(c2) + eps), with one division per element
        self.assign_sub(variable, ops.divide(
            ops.multiply(m, lr * root_correction_2 / correction_1),
            ops.add(ops.sqrt(v), self.epsilon * root_correction_2)))


def build_schedule(config: OptimizerConfig, progress=None):
    """BERT's step schedule, or a progress schedule (config.by_progress): `progress` is
    the engine's budget variable when config.train_budget_minutes is set."""
    config.check()
    if not config.by_progress:
        return WarmupPolynomialDecay(
            config.learning_rate, config.end_learning_rate, config.num_train_steps,
            config.num_warmup_steps, config.decay_power, config.gradient_accumulation_steps)
    warmup = config.warmup_fraction
    if not warmup and not config.train_budget_minutes:  # steps given: the same fraction
        warmup = config.num_warmup_steps / max(config.num_train_steps, 1)
    return ProgressSchedule(
        config.learning_rate, config.end_learning_rate, config.lr_schedule, warmup,
        config.decay_fraction, config.decay_power, config.num_train_steps,
        config.gradient_accumulation_steps,
        progress if config.train_budget_minutes else None)


def build_optimizer(config: OptimizerConfig, replicas: int = 1,
                    progress=None) -> keras.optimizers.Optimizer:
    """AdamW or LAMB with BERT's schedule, weight-decay exclusions and global-norm clip.

    Args:
        replicas: the replicas of the step that calls it. Keras 3 clips each replica's
            gradient before the cross-replica sum (and, with accumulation, the average of
            the micro-steps' gradients, as BERT clips the batch's). The engine's step hands
            every replica 1/replicas of the already summed gradient, so a clip at
            clip_norm / replicas on each is BERT's clip of the sum. (Clipping each
            micro-step's gradient instead made 2 accumulated micro-batches differ from
            their batch by half the gradient's norm, measured.)
        progress: with config.train_budget_minutes, the variable holding the fraction
            of the budget spent (the engine's).
    """
    schedule = build_schedule(config, progress)
    common = dict(learning_rate=schedule, weight_decay=config.weight_decay, beta_1=config.beta_1,
                  beta_2=config.beta_2, epsilon=config.epsilon,
                  global_clipnorm=config.clip_norm / replicas if config.clip_norm else None,
                  gradient_accumulation_steps=(config.gradient_accumulation_steps
                                               if config.gradient_accumulation_steps > 1 else None))
    if config.optimizer == "adamw":
        optimizer = AdamW(**common)
    elif config.optimizer == "lamb":
        optimizer = keras.optimizers.Lamb(**common)
    else:
        raise ValueError(f"--optimizer must be adamw or lamb, got {config.optimizer!r}")
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
