r"""Fine-tune an encoder on a labelled task; the result is a model directory.

    python -m model.finetune --task sst2 --init_checkpoint runs/minilm \
        --train_file glue/SST-2/train.tsv --eval_file glue/SST-2/dev.tsv --output_dir runs/sst2

--task: a GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli) in its
published TSV format; `classification` / `regression` for any CSV/TSV/JSONL
(--text_column, --text_b_column, --label_column); `ner` for CoNLL-style BIO
files; `squad` for SQuAD v1.1/v2.0 JSON; `multiple_choice` for JSONL of a
question and candidate endings (model/tasks/). --init_checkpoint: any model
directory of this project (pretrained, imported, fine-tuned: its encoder is
taken) or `none` (random initialization of --preset, with --vocab_file).
--eval_file may name several files separated by commas (MNLI:
matched,mismatched); the first decides the best epoch.

The training engine is pretraining's (model/training/engine.py), with the same flags:
--strategy, --num_cpu_devices, --tpu, --mixed_precision, --jit_compile,
--gradient_accumulation_steps, --save_checkpoints_steps, --keep_checkpoint_max.
Rerunning the same command after a crash resumes it. Writes
OUTPUT_DIR/{config.json, vocab.txt, checkpoints/ (the best epoch), train_state/,
history.json, metrics.json, report.md, predictions*.jsonl};
`python -m model.export --model_dir OUTPUT_DIR` serves it.
"""

from absl import app, flags

from model import cli
from model.networks.presets import PRESETS
from model.tasks import setting_flags, task_names
from model.training.engine import Preempted, TrainingError
from model.training.finetuning_run import FinetuneConfig, FinetuneError, finetune
import tfrecords.cli

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags (defined only when it runs as a command, so that tests and
    other modules can import this one beside other commands)."""
    flags.DEFINE_enum("task", None, list(task_names()), "The task and its file format.")
    flags.DEFINE_string("init_checkpoint", None, "A model directory, or `none` (random init).")
    flags.DEFINE_string("train_file", None, "Training data.")
    flags.DEFINE_string("eval_file", None, "Dev data (comma-separated for several; the first picks "
                        "the best epoch).")
    flags.DEFINE_string("test_file", "", "Test data: scored if labelled, else predictions only.")
    flags.DEFINE_string("output_dir", None, "The fine-tuned model directory.")
    flags.DEFINE_enum("preset", "bert_tiny", list(PRESETS), "Model size with --init_checkpoint "
                      "none.")
    flags.DEFINE_string("vocab_file", "", "Vocabulary with --init_checkpoint none.")
    flags.DEFINE_bool("do_lower_case", True, "Casing with --init_checkpoint none.")
    flags.DEFINE_integer("max_seq_length", 0, "Tokens per example (0: the length the initial "
                         "model was trained at, else 128).", lower_bound=0)
    flags.DEFINE_integer("eval_batch_size", 64, "Evaluation batch.", lower_bound=1)
    flags.DEFINE_float("num_train_epochs", None, "Epochs (may be fractional); default: the "
                       "task's.", lower_bound=0.01)
    flags.DEFINE_float("learning_rate", None, "Peak learning rate; default: the task's.",
                       lower_bound=0.0)
    flags.DEFINE_float("warmup_proportion", 0.1, "Share of steps warming up.", lower_bound=0.0,
                       upper_bound=1.0)
    flags.DEFINE_float("weight_decay", 0.01, "AdamW weight decay.", lower_bound=0.0)
    flags.DEFINE_float("adam_epsilon", 1e-6, "AdamW epsilon (added to the bias-corrected "
                       "second moment's root, as in PyTorch).", lower_bound=0.0)
    flags.DEFINE_integer("early_stopping_patience", 2, "Epochs without improvement before stopping "
                         "(0: never).", lower_bound=0)
    flags.DEFINE_float("dropout", -1.0, "Override the encoder's dropout (<0: keep).")
    for name, field in setting_flags().items():  # the task families' own settings
        define = {int: flags.DEFINE_integer, float: flags.DEFINE_float,
                  str: flags.DEFINE_string}[field.type]
        define(name, field.default, field.metadata["help"],
               **({"lower_bound": 1} if field.type is int else {}))
    cli.define_engine_flags(log_steps=50, seed=42, train_batch_size=None,
                            default_note="; default: the task's")


def main(argv):
    cli.no_arguments(argv, "finetune")
    cli.quiet_tensorflow()
    try:
        finetune(cli.config_from_flags(FinetuneConfig))
    except Preempted as e:
        cli.exit_preempted("finetune", e)
    except (FinetuneError, TrainingError) as e:
        raise SystemExit(f"finetune: {e}") from None


def entry_point():
    define_flags()
    flags.mark_flags_as_required(["task", "init_checkpoint", "train_file", "eval_file",
                                  "output_dir"])
    app.run(main, flags_parser=tfrecords.cli.flags_parser("finetune"))


if __name__ == "__main__":
    entry_point()
