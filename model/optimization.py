"""BERT's optimizers: AdamW (no decay on LayerNorm and biases) or LAMB, warmup + decay.

The learning rate rises linearly from 0 over num_warmup_steps, then decays
polynomially (power 1: linearly, as BERT) to end_learning_rate at
num_train_steps. With gradient accumulation the optimizer counts
micro-steps; the schedule divides them back into optimizer steps.
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


def build_optimizer(config: OptimizerConfig, replicas: int = 1) -> keras.optimizers.Optimizer:
    """AdamW or LAMB with BERT's schedule, weight-decay exclusions and global-norm clip.

    Args:
        replicas: the replicas of the step that calls it. Keras 3 clips each replica's
            gradient before the cross-replica sum (and, with accumulation, the average of
            the micro-steps' gradients, as BERT clips the batch's). The engine's step hands
            every replica 1/replicas of the already summed gradient, so a clip at
            clip_norm / replicas on each is BERT's clip of the sum. (Clipping each
            micro-step's gradient instead made 2 accumulated micro-batches differ from
            their batch by half the gradient's norm, measured.)
    """
    schedule = WarmupPolynomialDecay(
        config.learning_rate, config.end_learning_rate, config.num_train_steps,
        config.num_warmup_steps, config.decay_power, config.gradient_accumulation_steps)
    common = dict(learning_rate=schedule, weight_decay=config.weight_decay, beta_1=config.beta_1,
                  beta_2=config.beta_2, epsilon=config.epsilon,
                  global_clipnorm=config.clip_norm / replicas if config.clip_norm else None,
                  gradient_accumulation_steps=(config.gradient_accumulation_steps
                                               if config.gradient_accumulation_steps > 1 else None))
    if config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(**common)
    elif config.optimizer == "lamb":
        optimizer = keras.optimizers.Lamb(**common)
    else:
        raise ValueError(f"--optimizer must be adamw or lamb, got {config.optimizer!r}")
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
