"""BERT pretraining (MLM + NSP) on a dataset directory, under a tf.distribute strategy.

Usage:
    python -m model.pretrain --input_file DATASET_DIR --output_dir MODEL_DIR --preset bert_tiny \\
        [--train_batch_size 32] [--num_train_steps N] [--flagfile configs/bert_tiny.flags]
    python -m model.pretrain --flagfile=configs/recipes/budget_tiny.pretrain.flags \\
        --input_file DATASET_DIR --output_dir MODEL_DIR --train_budget_minutes 5 \\
        [--eval_input_file DATASET_DIR --probe_file TRAIN.tsv,DEV.tsv]

google-research/bert's run_pretraining flag names where the meaning is the
same. Rerunning the same command after a crash resumes from the latest
checkpoint in MODEL_DIR/checkpoints. --init_checkpoint starts a new run
from another model's weights: continued pretraining of an imported or
pretrained model on domain text, or phase 2 at a longer max_seq_length
(the architecture comes from its config.json; model/training/warm_start.py).
"""

from absl import app, flags

from model import cli
from model.networks.presets import PRESETS
from model.training.engine import Preempted, TrainingError
from model.training.optimization import SCHEDULES, OptimizerConfig
from model.training.pretraining_run import PretrainConfig, pretrain
from tfrecords.features import MAX_SEQ_LENGTH
from tfrecords.generation import DEFAULT_MASKED_LM_PROB
import tfrecords.cli

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags (the engine's are model/cli.py's, shared with model.finetune)."""
    flags.DEFINE_string("input_file", None, "Dataset directory, or TFRecord file patterns.")
    flags.DEFINE_string("output_dir", None, "Model directory: checkpoints, logs, config.json.")
    flags.DEFINE_enum("preset", None, list(PRESETS), "Model size (default bert_tiny; with "
                      "--init_checkpoint the checkpoint's, which a --preset may not contradict).")
    flags.DEFINE_multi_string("model_override", [], "FIELD=VALUE over the preset, e.g. "
                              "dropout=0.0.")
    flags.DEFINE_string("vocab_file", "", "vocab.txt (default: the dataset's).")
    flags.DEFINE_string("init_checkpoint", "", "Start from these weights: a model directory "
                        "(pretrained, imported, fine-tuned: its config.json gives the "
                        "architecture) or a checkpoint. Every encoder variable must be found. "
                        "A checkpoint in --output_dir takes priority (the run resumes).")
    flags.DEFINE_integer("max_seq_length", 0, "Must equal the dataset's (0: take the dataset's).",
                         lower_bound=0, upper_bound=MAX_SEQ_LENGTH)
    flags.DEFINE_integer("max_predictions_per_seq", 0,
                         "Masked positions per sequence at most (dynamic-masking datasets; 0: "
                         "ceil(max_seq_length x masked_lm_prob), e.g. 20 at 128 x 0.15).",
                         lower_bound=0, upper_bound=MAX_SEQ_LENGTH)
    flags.DEFINE_float("masked_lm_prob", None, "Masking rate (dynamic-masking datasets; "
                       f"unset: {DEFAULT_MASKED_LM_PROB}, the modern recipe's is 0.3).",
                       lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_bool("do_whole_word_mask", False, "Mask whole words (dynamic-masking datasets).")
    flags.DEFINE_bool("restart_positions", False, "Packed datasets (--packing): position ids "
                      "restart at 0 in each document (attention is kept within documents "
                      "either way).")
    flags.DEFINE_integer("num_train_steps", 100_000, "Optimizer steps.", lower_bound=1)
    flags.DEFINE_integer("num_warmup_steps", 10_000, "Linear warmup steps.", lower_bound=0)
    flags.DEFINE_float("train_budget_minutes", 0.0, "Train for this much wall-clock time: the "
                       "learning rate follows the time spent and reaches --end_learning_rate "
                       "when the budget ends (academic-budget-bert, Cramming); the steps are "
                       "what fits, --num_train_steps caps them. Resumes count the time spent "
                       "before. Warmup is then --warmup_fraction.", lower_bound=0.0)
    flags.DEFINE_enum("lr_schedule", "linear", list(SCHEDULES), "linear: warmup, then "
                      "polynomial decay (--decay_power; BERT). wsd: warmup, the peak held, then "
                      "the decay over the last --decay_fraction of the run.")
    flags.DEFINE_float("warmup_fraction", 0.0, "Warmup over this fraction of the run (of "
                       "--num_train_steps, or of the budget) instead of --num_warmup_steps; "
                       "0.5 with linear is the one-cycle triangle.", lower_bound=0.0,
                       upper_bound=0.99)
    flags.DEFINE_float("decay_fraction", 0.2, "wsd: the final fraction of the run spent "
                       "decaying.", lower_bound=0.01, upper_bound=1.0)
    flags.DEFINE_float("learning_rate", 1e-4, "Peak learning rate.", lower_bound=0.0)
    flags.DEFINE_float("end_learning_rate", 0.0, "Learning rate at num_train_steps.")
    flags.DEFINE_float("decay_power", 1.0, "Polynomial decay power (1: linear).")
    flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "Optimizer.")
    flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (not on LayerNorm, biases).")
    flags.DEFINE_string("eval_input_file", "", "Evaluate on this dataset (its eval split) at "
                        "every checkpoint and at the end.")
    flags.DEFINE_integer("eval_batch_size", 64, "Eval batch size.", lower_bound=1)
    flags.DEFINE_integer("max_eval_steps", 0, "Eval batches at most (0: all).", lower_bound=0)
    flags.DEFINE_string("probe_file", "", "TRAIN[,DEV] labelled texts (TSV/CSV with a header and "
                        "a sentence or text column, or JSONL): a linear probe on the frozen "
                        "encoder is scored at every checkpoint and at the end, beside the "
                        "held-out MLM figures (model/training/probe.py). One file: every fifth "
                        "example is the dev part.")
    flags.DEFINE_string("probe_label_column", "label", "The probe file's label column.")
    flags.DEFINE_bool("shuffle", True, "Shuffle files and records (--noshuffle: in order).")
    cli.define_engine_flags(log_steps=100, seed=12345)


def config_from_flags() -> PretrainConfig:
    optimizer = OptimizerConfig(
        optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
        end_learning_rate=FLAGS.end_learning_rate, num_train_steps=FLAGS.num_train_steps,
        num_warmup_steps=FLAGS.num_warmup_steps, decay_power=FLAGS.decay_power,
        weight_decay=FLAGS.weight_decay, clip_norm=FLAGS.clip_norm,
        gradient_accumulation_steps=FLAGS.gradient_accumulation_steps,
        lr_schedule=FLAGS.lr_schedule, warmup_fraction=FLAGS.warmup_fraction,
        decay_fraction=FLAGS.decay_fraction, train_budget_minutes=FLAGS.train_budget_minutes)
    if FLAGS.train_budget_minutes and FLAGS["num_warmup_steps"].present:
        raise SystemExit("pretrain: --num_warmup_steps counts steps, and a "
                         "--train_budget_minutes run does not know its steps in advance: "
                         "use --warmup_fraction")
    if FLAGS.decay_fraction != 0.2 and FLAGS.lr_schedule != "wsd":
        raise SystemExit("pretrain: --decay_fraction applies to --lr_schedule wsd")
    try:
        optimizer.check()
    except ValueError as e:
        raise SystemExit(f"pretrain: {e}") from None
    return cli.config_from_flags(PretrainConfig, optimizer=optimizer, preset=FLAGS.preset or "",
                                 model_overrides=tuple(FLAGS.model_override))


def main(argv):
    cli.no_arguments(argv, "pretrain")
    cli.quiet_tensorflow()
    try:
        pretrain(config_from_flags())
    except Preempted as e:
        cli.exit_preempted("pretrain", e)
    except TrainingError as e:
        raise SystemExit(f"pretrain: {e}") from None


def entry_point():
    """Console-script entry point (`bert-pretrain`)."""
    define_flags()
    flags.mark_flags_as_required(["input_file", "output_dir"])
    app.run(main, flags_parser=tfrecords.cli.flags_parser("pretrain"))


if __name__ == "__main__":
    entry_point()
