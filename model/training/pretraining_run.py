"""Pretraining (MLM + NSP) on a dataset directory: the pretraining task on the engine.

    pretrain(PretrainConfig(input_file="runs/ds", output_dir="runs/model"))

Reads the dataset through tfrecords' reader, sharded by the strategy's input
context, masks in tf.data when the dataset is not pre-masked, and trains
with model/training/engine.py (resume, checkpoints, logs, NaN stop). Writes
MODEL_DIR/{config.json, vocab.txt, checkpoints/, logs/, train_log.jsonl,
eval_log.jsonl, eval_results.json}.
"""

import dataclasses
import json
import math
import sys
from typing import Dict, Optional, Sequence, Tuple

import tensorflow as tf

from model import storage
from model.networks.model_dir import write_model_dir
from model.networks.presets import ConfigError, ModelConfig, parse_overrides, resolve
from model.tasks.pretraining import PretrainingTask
from model.training.engine import Engine, EngineConfig, TrainingError, engine_config
from model.training.probe import Probe, ProbeError
from model.training.warm_start import WarmStart, architecture, find_source
from tfrecords.generation import DEFAULT_MASKED_LM_PROB, Generation, GenerationError
from tfrecords.reader import Source, open_source
from tfrecords.shards import DatasetError, count_records
from tfrecords.vocab import read_vocab, special_ids


@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainConfig(EngineConfig):
    """Everything a pretraining run depends on (written to config.json)."""

    input_file: str
    output_dir: str
    preset: str = ""  # "": bert_tiny, or with init_checkpoint the checkpoint's architecture
    model_overrides: Sequence[str] = ()
    vocab_file: str = ""
    max_seq_length: int = 0  # 0: the dataset's
    # Dynamic masking only (static datasets carry their masks): masked_lm_prob of each
    # sequence's tokens, at most max_predictions_per_seq (0: ceil(L x masked_lm_prob)).
    max_predictions_per_seq: int = 0
    masked_lm_prob: Optional[float] = None  # None: DEFAULT_MASKED_LM_PROB
    do_whole_word_mask: bool = False
    restart_positions: bool = False  # packed datasets: positions restart in each document
    init_checkpoint: str = ""  # a model dir or checkpoint: weights to start from (warm_start)
    eval_input_file: str = ""
    eval_batch_size: int = 64
    max_eval_steps: int = 0
    # A linear probe on the frozen encoder at every evaluation (model/training/probe.py).
    probe_file: str = ""
    probe_label_column: str = "label"
    shuffle: bool = True  # False: files and records in order (reproducible runs, tests)


def corrupt_shard_message(source: Source, error) -> str:
    """TensorFlow's DataLossError names no file: find the shard(s) whose records do not
    read back (every CRC checked) and name them."""
    bad = []
    for path in source.files:
        try:
            count_records(path)
        except DatasetError as e:
            bad.append(str(e))
    step = error.message.strip().splitlines()[0][:120]
    if not bad:
        return f"reading the training data failed ({step}); no shard of {source.origin} is " \
               "corrupted on disk now (was it being rewritten?)"
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return f"a training shard is corrupted: {bad[0]}{more}; the last checkpoint is kept"


def generation(source: Source) -> Optional[Generation]:
    """The parameters a dataset directory was made with (None for bare TFRecord patterns)."""
    try:
        return Generation.from_info(source.dataset.info) if source.dataset else None
    except GenerationError as e:
        raise TrainingError(f"{source.origin}/info.json: {e}") from None


def _open_eval_source(path: str, train_path: str) -> Tuple[Source, str]:
    """(source, split name) of --eval_input_file: a dataset directory's eval split, or
    its train split when it has none (said, loudly when that is the training data), or a
    file pattern ("files"). An eval split that cannot be read is an error, never a
    reason to evaluate on something else."""
    if not tf.io.gfile.isdir(path):
        return open_source(path), "files"
    from tfrecords.metadata import open_dataset
    if "eval" in open_dataset(path.rstrip("/")).splits:
        return open_source(path, split="eval"), "eval"
    same = path.rstrip("/") == train_path.rstrip("/")
    print(f"warning: --eval_input_file {path} has no eval split (made without "
          f"--eval_fraction): evaluating on its train split"
          f"{', the data this run trains on: not held out' if same else ''}",
          file=sys.stderr, flush=True)
    return open_source(path), "train"


class Pretrainer:
    """Opens the dataset, builds the task on the engine, and runs it.

    Example:
        >>> Pretrainer(PretrainConfig(input_file="runs/ds", output_dir="runs/m")).run()  # doctest: +SKIP
    """

    def __init__(self, config: PretrainConfig):
        c = self.config = config
        self.engine = Engine(engine_config(c), c.output_dir)
        try:
            self.source: Source = open_source(c.input_file)
            vocab_file = c.vocab_file or (self.source.dataset.vocab_file
                                          if self.source.dataset else "")
            if not vocab_file:
                raise TrainingError(f"{c.input_file} has no vocab.txt: pass --vocab_file")
            self.vocab, self.vocab_file = read_vocab(vocab_file), vocab_file
            # info.json's generation block, read once (None for bare TFRecord patterns)
            self.generation = generation(self.source)
            self.do_lower_case = self.generation.do_lower_case if self.generation else True
            special_ids(self.vocab, f"vocabulary {vocab_file}")  # masking needs them
            self._check_vocab_matches_dataset()
            self.init_source = None
            self.model_config = self._architecture(parse_overrides(c.model_overrides))
        except (DatasetError, ConfigError) as e:
            raise TrainingError(str(e)) from None
        spec = self.source.spec
        if c.max_seq_length and c.max_seq_length != spec.max_seq_length:
            raise TrainingError(
                f"--max_seq_length {c.max_seq_length} does not fit the dataset {c.input_file}, "
                f"made with max_seq_length {spec.max_seq_length}")
        self.seq_length = spec.max_seq_length
        if self.seq_length > self.model_config.max_sequence_length:
            raise TrainingError(
                f"the dataset's sequences have {self.seq_length} tokens, more than the model's "
                f"max_sequence_length {self.model_config.max_sequence_length}")
        made = self.generation
        if spec.masked and (c.do_whole_word_mask or c.masked_lm_prob is not None
                            or c.max_predictions_per_seq):
            raise TrainingError(
                f"{c.input_file} holds static masks (made at masked_lm_prob "
                f"{made.masked_lm_prob if made else 'unknown'}): --masked_lm_prob, "
                "--max_predictions_per_seq and --do_whole_word_mask apply "
                "to dynamic-masking datasets (create_pretraining_data --masking dynamic)")
        rate = DEFAULT_MASKED_LM_PROB if c.masked_lm_prob is None else c.masked_lm_prob
        if not 0.0 < rate < 1.0:
            raise TrainingError(f"--masked_lm_prob must be in (0, 1), got {rate}")
        max_predictions = spec.max_predictions_per_seq if spec.masked else (
            c.max_predictions_per_seq or math.ceil(self.seq_length * rate))
        if spec.masked:  # what the dataset's masks were made with
            rate = made.masked_lm_prob if made else None
        # config.json records what the run used, not what was left to a default.
        self.config = c = dataclasses.replace(
            c, max_seq_length=self.seq_length, max_predictions_per_seq=max_predictions,
            masked_lm_prob=rate, mixed_precision=self.engine.config.mixed_precision)
        if c.restart_positions and not spec.packed:
            raise TrainingError(f"--restart_positions applies to packed datasets "
                                f"(create_pretraining_data --packing); {c.input_file} is not one")
        self._check_previous_run()
        self.task = PretrainingTask(
            self.model_config, next_sentence=spec.next_sentence, vocab=self.vocab,
            max_predictions=max_predictions, masked_lm_prob=rate or DEFAULT_MASKED_LM_PROB,
            restart_positions=c.restart_positions, whole_word_mask=c.do_whole_word_mask)
        self.model = self.engine.build(self.task)
        self.probe = None
        if c.probe_file:
            try:
                self.probe = Probe(c.probe_file, self.vocab_file, self.do_lower_case,
                                   c.probe_label_column,
                                   max_seq_length=min(64, self.seq_length))
            except (ProbeError, ValueError, OSError) as e:
                raise TrainingError(str(e)) from None
        # (step, results) of the latest evaluation: the end of a run whose last step was a
        # checkpoint returns that one instead of evaluating twice.
        self._last_eval = (-1, {})

    def _architecture(self, overrides: dict):
        """The model config: --preset and --model_override, or with --init_checkpoint the
        checkpoint's config.json (which the flags may not contradict)."""
        c = self.config
        if not c.init_checkpoint:
            return resolve(c.preset or "bert_tiny", vocabulary_size=len(self.vocab),
                           overrides=overrides)
        # Resuming the run in output_dir takes priority (as in google-research/bert): the
        # architecture is then the run's own, which came from the checkpoint.
        resuming = tf.train.latest_checkpoint(self.engine.checkpoint_dir)
        source = find_source(c.output_dir if resuming else c.init_checkpoint)
        self.init_source = None if resuming else source
        made = self.generation
        if source.model_dir and made and made.do_lower_case != source.model_dir.do_lower_case:
            raise TrainingError(
                f"{c.input_file} was tokenized with do_lower_case {made.do_lower_case}, "
                f"--init_checkpoint's model with {source.model_dir.do_lower_case}: "
                "remake the dataset with the checkpoint's casing")
        # A bare checkpoint without a config.json near it: the flags give the config.
        return architecture(source, c.preset, overrides, len(self.vocab)) or resolve(
            c.preset or "bert_tiny", vocabulary_size=len(self.vocab), overrides=overrides)

    def _check_previous_run(self):
        path = storage.join(self.config.output_dir, "config.json")
        if not storage.exists(path):
            return
        previous = json.loads(storage.read_text(path)).get("model")
        try:  # a config.json of an earlier version lacks the newer fields: their defaults
            same = previous is not None and ModelConfig.from_dict(previous) == self.model_config
        except (ConfigError, TypeError):
            same = False
        if not same:
            raise TrainingError(
                f"{self.config.output_dir} holds a run of another model ({path}); use a new "
                "--output_dir, or --init_checkpoint to start from its weights")

    def _write_config(self):
        spec = self.source.spec
        write_model_dir(
            self.config.output_dir, kind=self.task.kind, model_config=self.model_config,
            vocab=self.vocab,
            do_lower_case=self.do_lower_case,
            max_seq_length=self.seq_length,
            extra={"training": json.loads(json.dumps(dataclasses.asdict(self.config))),
                   "dataset": {"max_seq_length": self.seq_length,
                               "max_predictions_per_seq": self.task.max_predictions,
                               "masked": spec.masked, "next_sentence": spec.next_sentence,
                               "packed": spec.packed,
                               "restart_positions": self.config.restart_positions}})

    def _initialize(self):
        """--init_checkpoint: weights only (a new schedule and optimizer), every encoder
        variable from the checkpoint, heads it lacks created fresh (model/training/warm_start.py)."""
        report = WarmStart(self.init_source, self.model, self.model.get_layer("backbone"),
                           self.vocab, self.vocab_file).run()
        print(report, file=sys.stderr, flush=True)

    def _check_vocab_matches_dataset(self) -> None:
        """--vocab_file must be the vocabulary the dataset was tokenized with (its vocab.txt):
        another one reads every id as another token (or past its end)."""
        theirs_file = self.source.dataset.vocab_file if self.source.dataset else None
        if not self.config.vocab_file or not theirs_file:
            return
        theirs = read_vocab(theirs_file)
        if theirs == self.vocab:
            return
        first = next((i for i, (a, b) in enumerate(zip(self.vocab, theirs)) if a != b),
                     min(len(self.vocab), len(theirs)))
        at = (f"id {first} is {self.vocab[first]!r} there, {theirs[first]!r} in the dataset's"
              if first < min(len(self.vocab), len(theirs)) else f"they agree up to id {first - 1}")
        raise TrainingError(
            f"--vocab_file {self.config.vocab_file} is not the vocabulary {self.config.input_file} "
            f"was tokenized with ({len(self.vocab):,} entries against {theirs_file}'s "
            f"{len(theirs):,}; {at}): drop --vocab_file to use the dataset's")

    def _dataset(self, source: Source, batch_size: int, is_training: bool):
        c = self.config
        return self.engine.distribute(self.task.dataset_fn(
            source, batch_size, is_training, c.shuffle and is_training, c.seed))

    def run(self) -> Dict[str, float]:
        c, engine = self.config, self.engine
        step = engine.restore()
        if step and c.init_checkpoint:
            print(f"--init_checkpoint {c.init_checkpoint} is not read: the run in "
                  f"{c.output_dir} resumes (delete it, or use another --output_dir, to start "
                  "over from the checkpoint)", file=sys.stderr, flush=True)
        elif c.init_checkpoint:
            self._initialize()
        if engine.is_chief:
            self._write_config()
        total = c.optimizer.num_train_steps
        last: Dict[str, float] = {}
        budget = c.optimizer.train_budget_minutes * 60
        if step >= total or (budget and engine.elapsed >= budget):
            print(f"Already at step {step} of {total}" + (
                f", {engine.elapsed / 60:.2f} of its {budget / 60:g}-minute budget spent"
                if budget else "") + ": nothing to train", file=sys.stderr)
        else:
            if not self.source.spec.masked:
                print(f"Dynamic masking: {c.masked_lm_prob:.0%} of each sequence's tokens, at "
                      f"most {self.task.max_predictions}"
                      f"{', whole words' if c.do_whole_word_mask else ''}; new masks every epoch",
                      file=sys.stderr, flush=True)
            iterator = iter(self._dataset(self.source, engine.micro_batch, True))
            try:
                last = engine.train(self.task, iterator, total, start_step=step,
                                    description=f"{self.model_config.preset} ",
                                    after_step=self._evaluate_at_checkpoints)
            except tf.errors.DataLossError as e:
                raise TrainingError(corrupt_shard_message(self.source, e)) from None
        if c.eval_input_file or self.probe:  # the last checkpoint's evaluation, or one now
            at, results = self._last_eval
            last.update(results if at == engine.step() else self.evaluate())
        return last

    def _evaluate_at_checkpoints(self, step: int) -> bool:
        """With --eval_input_file or --probe_file: an evaluation at every checkpoint
        (its time does not count against a wall-clock budget)."""
        if (self.config.eval_input_file or self.probe) and \
                step % self.config.save_checkpoints_steps == 0:
            self.evaluate()
        return False

    def evaluate(self) -> Dict[str, float]:
        """One pass over --eval_input_file (MLM loss, accuracy, perplexity, NSP accuracy)
        and the probe's score: to TensorBoard (logs/eval, beside logs/train), eval_log.jsonl
        (one record per evaluation, with its step; train_log.jsonl keeps one kind of
        record, the training windows, for the scripts that read it) and
        eval_results.json (the latest)."""
        results, about = self._evaluate_heldout() if self.config.eval_input_file else ({}, {})
        if self.probe and self.engine.is_chief:
            results.update(self.probe.score(self.model.get_layer("backbone")))
        step = self.engine.step()
        self._last_eval = (step, results)
        if self.engine.is_chief:
            out = self.config.output_dir
            self.engine.write_summaries("eval", step, results)
            storage.append_line(storage.join(out, "eval_log.jsonl"),
                                json.dumps(dict(step=step, **results)))
            storage.write_text(storage.join(out, "eval_results.json"),
                               json.dumps(dict(results, step=step, **about), indent=2))
        print(f"eval at step {step}: " + " ".join(f"{k} {v:.4g}" for k, v in results.items()),
              file=sys.stderr, flush=True)
        return results

    def _evaluate_heldout(self) -> Tuple[Dict[str, float], dict]:
        c = self.config
        try:
            source, split = _open_eval_source(c.eval_input_file, c.input_file)
        except DatasetError as e:
            raise TrainingError(str(e)) from None
        if source.spec.max_seq_length != self.seq_length:
            raise TrainingError(f"--eval_input_file has max_seq_length {source.spec.max_seq_length},"
                                f" the model trains at {self.seq_length}")
        sums = self.engine.evaluate_sums(self.task, self._dataset(source, c.eval_batch_size, False),
                                         c.max_eval_steps)
        if not sums:
            raise TrainingError(f"--eval_input_file {c.eval_input_file} holds no records")
        held_out = split == "eval" or c.eval_input_file.rstrip("/") != c.input_file.rstrip("/")
        return self.task.eval_results(sums), {"eval_split": split, "held_out": held_out}


def pretrain(config: PretrainConfig) -> Dict[str, float]:
    """Runs (or resumes) a pretraining run; returns the last logged (and eval) metrics."""
    return Pretrainer(config).run()
