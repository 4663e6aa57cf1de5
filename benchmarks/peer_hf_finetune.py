"""The peer of bench_finetune.py: Hugging Face transformers (PyTorch CPU), in .venv-bench.

    .venv-bench/bin/python benchmarks/peer_hf_finetune.py --task rt|ner CHECKPOINT_DIR \
        DATA_DIR OUT_DIR EPOCHS LR MAX_LEN BATCH SEED

--task rt: Rotten Tomatoes sentence\tlabel TSVs; BertForSequenceClassification with
transformers' Trainer; eval each epoch, best epoch kept (accuracy); prints one JSON line:
dev and test accuracy, train and total wall seconds.

--task ner: CoNLL files (token, tag; blank lines between sentences);
BertForTokenClassification, each word labelled on its first subword
(`is_split_into_words`), the loop Trainer runs (AdamW without decay on biases and
LayerNorm weights, eps 1e-6 as ours, linear warmup 10% and decay, clip 1.0), shuffled by
a seeded generator. After each epoch the word tags predicted on dev and test go to
OUT_DIR/predictions.json; bench_finetune.py scores them with the same entity F1 as ours.

Both: from the same all-MiniLM-L6-v2 weights and tokenizer as ours, the same settings.
"""

import argparse
import csv
import json
import math
import os
import time

start = time.time()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402


def read_tsv(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [r[0] for r in rows], [int(r[1]) for r in rows]


class Data(torch.utils.data.Dataset):
    def __init__(self, tok, path, max_len):
        texts, self.labels = read_tsv(path)
        self.enc = tok(texts, truncation=True, max_length=max_len)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return dict({k: v[i] for k, v in self.enc.items()}, labels=self.labels[i])


def rotten_tomatoes(ckpt, data, out, epochs, lr, max_len, batch, seed):
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
    return {"dev_accuracy": trainer.evaluate(dev)["eval_accuracy"],
            "test_accuracy": trainer.evaluate(test)["eval_accuracy"],
            "train_seconds": train_seconds}


def read_conll(path):
    sentences, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                if words:
                    sentences.append((words, tags))
                words, tags = [], []
                continue
            words.append(parts[0])
            tags.append(parts[-1])
    if words:
        sentences.append((words, tags))
    return sentences


def encode_words(tok, sentences, max_len, index=None):
    """Tokenized sentences, and per sentence each word's first-subword position (-1: none)."""
    enc = tok([w for w, _ in sentences], is_split_into_words=True, truncation=True,
              max_length=max_len)
    firsts, labels = [], []
    for i, (words, tags) in enumerate(sentences):
        first = [-1] * len(words)
        for pos, w in enumerate(enc.word_ids(i)):
            if w is not None and first[w] < 0:
                first[w] = pos
        firsts.append(first)
        if index is not None:
            row = [-100] * len(enc["input_ids"][i])
            for w, p in enumerate(first):
                if p >= 0:
                    row[p] = index[tags[w]]
            labels.append(row)
    return enc, firsts, labels


def pad(rows, value):
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


def ner(ckpt, data, out, epochs, lr, max_len, batch, seed):
    transformers.set_seed(seed)
    tok = transformers.BertTokenizerFast.from_pretrained(ckpt)
    train = read_conll(f"{data}/train.txt")
    labels = sorted({t for _, tags in train for t in tags})
    index = {t: i for i, t in enumerate(labels)}
    model = transformers.BertForTokenClassification.from_pretrained(ckpt, num_labels=len(labels))
    enc, _, train_labels = encode_words(tok, train, max_len, index)
    evals = {s: read_conll(f"{data}/{s}.txt") for s in ("dev", "test")}
    steps_per_epoch = math.ceil(len(train) / batch)
    total = max(1, int(round(steps_per_epoch * epochs)))
    no_decay = {n for n, _ in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n}
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in model.named_parameters() if n not in no_decay],
          "weight_decay": 0.01},
         {"params": [p for n, p in model.named_parameters() if n in no_decay],
          "weight_decay": 0.0}], lr=lr, eps=1e-6)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    generator = torch.Generator().manual_seed(seed)
    predictions, step, t0 = [], 0, time.time()
    for epoch in range(math.ceil(total / steps_per_epoch)):
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        for b in range(0, len(order), batch):
            if step == total:
                break
            rows = order[b:b + batch]
            loss = model(input_ids=pad([enc["input_ids"][i] for i in rows], 0),
                         attention_mask=pad([enc["attention_mask"][i] for i in rows], 0),
                         token_type_ids=pad([enc["token_type_ids"][i] for i in rows], 0),
                         labels=pad([train_labels[i] for i in rows], -100)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
        model.eval()
        epoch_predictions = {}
        for split, sentences in evals.items():
            e, firsts, _ = encode_words(tok, sentences, max_len)
            tags = []
            with torch.no_grad():
                for b in range(0, len(sentences), 64):
                    ids = [e["input_ids"][i] for i in range(b, min(b + 64, len(sentences)))]
                    logits = model(input_ids=pad(ids, 0),
                                   attention_mask=pad([[1] * len(r) for r in ids], 0)).logits
                    best = logits.argmax(-1).tolist()
                    for j, first in enumerate(firsts[b:b + 64]):
                        tags.append([labels[best[j][p]] if p >= 0 else "O" for p in first])
            epoch_predictions[split] = tags
        predictions.append(epoch_predictions)
    train_seconds = time.time() - t0
    os.makedirs(out, exist_ok=True)
    with open(f"{out}/predictions.json", "w") as f:
        json.dump(predictions, f)
    return {"predictions": f"{out}/predictions.json", "train_seconds": train_seconds}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=("rt", "ner"), default="rt")
    for name in ("ckpt", "data", "out"):
        parser.add_argument(name)
    for name, kind in (("epochs", float), ("lr", float), ("max_len", int), ("batch", int),
                       ("seed", int)):
        parser.add_argument(name, type=kind)
    a = parser.parse_args()
    run = rotten_tomatoes if a.task == "rt" else ner
    result = run(a.ckpt, a.data, a.out, a.epochs, a.lr, a.max_len, a.batch, a.seed)
    result.update(wall_seconds=time.time() - start, torch=torch.__version__,
                  transformers=transformers.__version__)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
