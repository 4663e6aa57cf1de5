"""What the commands of model/ share: the training engine's flags, and quiet logs.

`model.pretrain` and `model.finetune` define the same engine flags here, so
that a setting means the same thing in both; each command's `main(argv)`
reads FLAGS, builds a frozen config and calls one library function.
"""

import dataclasses
import sys
from typing import Optional

from absl import flags

import tfrecords.cli
from model.training.distribute import STRATEGIES
from model.training.engine import PRECISIONS

FLAGS = flags.FLAGS


def quiet_tensorflow():
    """TensorFlow's Python INFO lines (asset writing, sharding callbacks) off the console."""
    import tensorflow as tf
    from absl import logging
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("ERROR")


def define_engine_flags(*, log_steps: int, seed: int, train_batch_size: Optional[int] = 32,
                        default_note: str = "") -> None:
    """The engine's flags (model/training/engine.py), with the command's defaults where
    they differ."""
    flags.DEFINE_integer("train_batch_size", train_batch_size, "Global batch size (over all "
                         f"replicas and accumulation steps){default_note}.", lower_bound=1)
    flags.DEFINE_integer("gradient_accumulation_steps", 1, "Micro-batches per optimizer step.",
                         lower_bound=1)
    flags.DEFINE_float("clip_norm", 1.0, "Global gradient norm clip (0: none).", lower_bound=0.0)
    flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint every N steps (and at the "
                         "end); a rerun resumes from the newest.", lower_bound=1)
    flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.", lower_bound=1)
    flags.DEFINE_integer("log_steps", log_steps, "Log (console, TensorBoard) every N steps.",
                         lower_bound=1)
    flags.DEFINE_enum("strategy", "auto", list(STRATEGIES), "Distribution strategy.")
    flags.DEFINE_string("tpu", "", "TPU name or address for --strategy tpu.")
    flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into N logical devices "
                         "(mirrored/multi_worker on CPU).", lower_bound=0)
    flags.DEFINE_enum("mixed_precision", "auto", list(PRECISIONS), "Keras dtype policy; "
                      "auto: mixed_bfloat16 where the hardware computes in bf16 (TPU, GPU from "
                      "Ampere, CPU with AVX512_BF16/AMX), else float32; --mixed_precision "
                      "float32 turns bf16 off.")
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step (slower on CPU, "
                      "measured).")
    flags.DEFINE_integer("seed", seed, "Seed of the initial weights, dropout and shuffling.")


def config_from_flags(cls, **computed):
    """A frozen config of dataclass `cls` from the flags of the same names, plus `computed`."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in computed:
            values[field.name] = computed[field.name]
        elif field.name in FLAGS:
            value = FLAGS[field.name].value
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def exit_preempted(command: str, preempted) -> None:
    """The one line of a preempted run, and the exit status a retry policy can match."""
    from model.training.engine import EXIT_PREEMPTED
    print(f"{command}: {preempted}", file=sys.stderr, flush=True)
    sys.exit(EXIT_PREEMPTED)


def no_arguments(argv, command: str):
    """Positional arguments are an error (tfrecords/cli.py: the one error style)."""
    tfrecords.cli.no_arguments(argv, command)
