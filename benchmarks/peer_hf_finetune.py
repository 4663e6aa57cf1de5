"""The peer of bench_finetune.py: Hugging Face transformers' Trainer (PyTorch CPU), in .venv-bench.

    .venv-bench/bin/python benchmarks/peer_hf_finetune.py CHECKPOINT_DIR DATA_DIR OUT_DIR \
        EPOCHS LR MAX_LEN BATCH SEED

Rotten Tomatoes sentence\tlabel TSVs; BertForSequenceClassification from the same
all-MiniLM-L6-v2 weights and tokenizer; eval each epoch, best epoch kept (accuracy);
prints one JSON line: dev and test accuracy, train and total wall seconds.
"""

import csv
import json
import sys
import time

start = time.time()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [r[0] for r in rows], [int(r[1]) for r in rows]


class Data(torch.utils.data.Dataset):
    def __init__(self, tok, path, max_len):
        texts, self.labels = read(path)
        self.enc = tok(texts, truncation=True, max_length=max_len)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return dict({k: v[i] for k, v in self.enc.items()}, labels=self.labels[i])


def main(ckpt, data, out, epochs, lr, max_len, batch, seed):
    epochs, lr, max_len, batch, seed = float(epochs), float(lr), int(max_len), int(batch), int(seed)
    transformers.set_seed(seed)
    tok = transformers.BertTokenizerFast.from_pretrained(ckpt)
    model = transformers.BertForSequenceClassification.from_pretrained(ckpt, num_labels=2)
    train, dev, test = (Data(tok, f"{data}/{s}.tsv", max_len) for s in ("train", "dev", "test"))

    def accuracy(p):
        return {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())}

    total = max(1, int(round(-(-len(train) // batch) * epochs)))  # as model.finetune counts
    args = transformers.TrainingArguments(
        output_dir=out, num_train_epochs=epochs, learning_rate=lr, per_device_train_batch_size=batch,
        per_device_eval_batch_size=64, warmup_steps=int(0.1 * total), weight_decay=0.01, max_grad_norm=1.0,
        adam_epsilon=1e-6, eval_strategy="epoch", save_strategy="epoch", save_total_limit=1,
        load_best_model_at_end=True, metric_for_best_model="accuracy", seed=seed, report_to=[],
        use_cpu=True, logging_steps=50, disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=train, eval_dataset=dev,
                                   data_collator=transformers.DataCollatorWithPadding(tok),
                                   compute_metrics=accuracy)
    t0 = time.time()
    trainer.train()
    train_seconds = time.time() - t0
    dev_acc = trainer.evaluate(dev)["eval_accuracy"]
    test_acc = trainer.evaluate(test)["eval_accuracy"]
    print(json.dumps({"dev_accuracy": dev_acc, "test_accuracy": test_acc,
                      "train_seconds": train_seconds, "wall_seconds": time.time() - start,
                      "torch": torch.__version__, "transformers": transformers.__version__}))


if __name__ == "__main__":
    main(*sys.argv[1:9])
