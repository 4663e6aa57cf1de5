"""Model directories, datasets and task files on a non-local file system.

TensorFlow's GCS client cannot be pointed at a local emulator (the endpoint
https://www.googleapis.com/storage/v1/ is fixed in libtensorflow_framework,
with no emulator variable), so the model side is tested on TensorFlow's
`ram://` file system: the same tf.io.gfile calls a gs:// path takes, and a
local folder named `ram:` (or `gs:`) where config.json, logs or metrics went
is the bug this catches. `ram://` lives in one process, so the runs are
in-process: pretraining, its resume and evaluation, fine-tuning from it. Not
the export: ram:// lists a directory named `assets.extra` as `assets/.extra`
(measured), so moving a SavedModel there fails on the file system's bug.
"""

import json
import os

import tensorflow as tf

from model.training.finetuning_run import FinetuneConfig, finetune
from model.training.optimization import OptimizerConfig
from model.training.pretraining_run import PretrainConfig, pretrain
from tests.model.conftest import TINY
from tests.model.training.test_finetuning import sentiment_files


def copy_tree(local, remote):
    for root, _, files in os.walk(local):
        for name in files:
            path = os.path.join(root, name)
            target = remote + path[len(str(local)):]
            tf.io.gfile.makedirs(os.path.dirname(target))
            tf.io.gfile.copy(path, target, overwrite=True)


def test_pretraining_and_fine_tuning_live_entirely_on_a_remote_file_system(
        tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a local "ram:" folder would appear
    root = "ram://bucket/test-storage"
    copy_tree(tiny_dataset, f"{root}/ds")
    train, dev = sentiment_files(tmp_path / "data")
    copy_tree(tmp_path / "data", f"{root}/data")
    model = f"{root}/model"
    results = pretrain(PretrainConfig(
        input_file=f"{root}/ds", output_dir=model, eval_input_file=f"{root}/ds",
        model_overrides=tuple(TINY), train_batch_size=8, log_steps=2, save_checkpoints_steps=4,
        optimizer=OptimizerConfig(num_train_steps=6, num_warmup_steps=1)))
    assert results["eval_mlm_accuracy"] >= 0
    for name in ("config.json", "vocab.txt", "train_log.jsonl", "eval_results.json",
                 "checkpoints/ckpt-6.index"):
        assert tf.io.gfile.exists(f"{model}/{name}"), name
    assert [json.loads(line)["step"] for line in tf.io.gfile.GFile(
        f"{model}/train_log.jsonl").read().splitlines()] == [2, 4, 6]
    assert tf.io.gfile.glob(f"{model}/logs/train/events.*")
    # a rerun resumes from the remote checkpoint
    pretrain(PretrainConfig(
        input_file=f"{root}/ds", output_dir=model, model_overrides=tuple(TINY),
        train_batch_size=8, log_steps=2,
        optimizer=OptimizerConfig(num_train_steps=8, num_warmup_steps=1)))
    assert tf.train.latest_checkpoint(f"{model}/checkpoints").endswith("ckpt-8")

    tuned = f"{root}/tuned"
    result = finetune(FinetuneConfig(
        task="classification", train_file=f"{root}/data/train.csv",
        eval_file=f"{root}/data/dev.csv", output_dir=tuned, init_checkpoint=model,
        text_column="review", label_column="sentiment", max_seq_length=16,
        train_batch_size=8, num_train_epochs=1, log_steps=6, early_stopping_patience=0))
    assert result["best_epoch"] == 1
    for name in ("config.json", "vocab.txt", "metrics.json", "report.md", "history.json",
                 "predictions_dev.jsonl", "train_log.jsonl"):
        assert tf.io.gfile.exists(f"{tuned}/{name}"), name
    assert tf.train.latest_checkpoint(f"{tuned}/checkpoints")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(":")], os.listdir(tmp_path)
