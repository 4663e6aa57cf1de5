"""The peer of finetune_parity.py: transformers' BERT task models trained on given batches.

    .venv-bench/bin/python benchmarks/peer_hf_steps.py CHECKPOINT_DIR IN.npz OUT.npz

IN.npz (written by finetune_parity.py) holds `settings` (JSON: the family, the label
count, the optimizer's settings, the dropout: 0 unless given), the head's initial weights as `head/kernel` and
`head/bias` (Keras layout: [in, out]), and each step's batch as `step{i}/{key}`: exactly
the tensors our input pipeline gave our training step, in order.

The model is transformers' own class for the family (BertForSequenceClassification,
single-label or `problem_type` regression; BertForTokenClassification;
BertForQuestionAnswering; BertForMultipleChoice) loaded from the original checkpoint with
dropout 0, its loss as transformers computes it from `labels` (examples of weight 0,
our padding, are dropped; our ignored label -1 is transformers' -100). The loop is the
one Hugging Face's Trainer runs: torch.optim.AdamW with the Trainer's decay groups (no
decay on biases and LayerNorm weights), get_linear_schedule_with_warmup,
clip_grad_norm_ (whose return value is the norm before clipping, the figure the Trainer
logs).

OUT.npz gets `loss`, `grad_norm`, `learning_rate` per step, and every final weight under
its transformers name; with `eval/{input_ids,input_mask,segment_ids}` in IN.npz, also
`eval_logits`, the trained model's (eval mode) on them. Kept out of the product: torch lives in .venv-bench only.
"""

import json
import sys

import numpy as np
import torch
import transformers

CLASSES = {
    "classification": transformers.BertForSequenceClassification,
    "pair": transformers.BertForSequenceClassification,
    "regression": transformers.BertForSequenceClassification,
    "ner": transformers.BertForTokenClassification,
    "squad": transformers.BertForQuestionAnswering,
    "multiple_choice": transformers.BertForMultipleChoice,
}
HEADS = {"ner": "classifier", "squad": "qa_outputs"}  # else "classifier"


def batch_inputs(family, batch):
    """Our batch -> the model's keyword arguments (labels included), padding rows dropped."""
    keep = torch.from_numpy(batch["weight"] > 0)
    t = {k: torch.from_numpy(np.asarray(v))[keep] for k, v in batch.items() if k != "weight"}
    out = {"input_ids": t["input_ids"].long(), "attention_mask": t["input_mask"].long(),
           "token_type_ids": t["segment_ids"].long()}
    if family == "squad":
        out["start_positions"] = t["start_positions"].long()
        out["end_positions"] = t["end_positions"].long()
    elif family == "regression":
        out["labels"] = t["labels"].float()
    else:
        labels = t["labels"].long()
        out["labels"] = torch.where(labels < 0, torch.full_like(labels, -100), labels)
    return out


def main(checkpoint_dir, in_path, out_path):
    data = np.load(in_path)
    s = json.loads(str(data["settings"]))
    family = s["family"]
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    dropout = s.get("dropout", 0.0)
    kwargs = dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if family == "regression":
        kwargs.update(num_labels=1, problem_type="regression")
    elif family in ("classification", "pair", "ner"):
        kwargs.update(num_labels=s["num_labels"])
    model = CLASSES[family].from_pretrained(checkpoint_dir, **kwargs)
    head = getattr(model, HEADS.get(family, "classifier"))
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(data["head/kernel"].T.copy()))
        head.bias.copy_(torch.from_numpy(data["head/bias"].copy()))
    model.train()  # with dropout 0, train mode computes what eval mode does

    no_decay = {n for n, _ in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n}
    groups = [{"params": [p for n, p in model.named_parameters() if n not in no_decay],
               "weight_decay": s["weight_decay"]},
              {"params": [p for n, p in model.named_parameters() if n in no_decay],
               "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=s["learning_rate"], betas=(s["beta_1"], s["beta_2"]),
                                  eps=s["epsilon"])
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, s["num_warmup_steps"], s["num_train_steps"])
    losses, norms, rates = [], [], []
    for i in range(s["steps"]):
        prefix = f"step{i}/"
        batch = {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}
        loss = model(**batch_inputs(family, batch)).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), s["clip_norm"])
        rates.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss))
        norms.append(float(norm))
    weights = {f"weight/{k}": v.detach().numpy() for k, v in model.state_dict().items()
               if v.dtype == torch.float32}
    extra = {}
    if "eval/input_ids" in data.files:  # the trained model's logits on these inputs
        model.eval()
        logits = []
        with torch.no_grad():
            for i in range(0, len(data["eval/input_ids"]), 64):
                logits.append(model(**{k: torch.from_numpy(data[f"eval/{ours}"][i:i + 64]).long()
                                       for k, ours in (("input_ids", "input_ids"),
                                                       ("attention_mask", "input_mask"),
                                                       ("token_type_ids", "segment_ids"))}
                                    ).logits.numpy())
        extra["eval_logits"] = np.concatenate(logits)
    np.savez(out_path, loss=np.array(losses), grad_norm=np.array(norms),
             learning_rate=np.array(rates), **weights, **extra)


if __name__ == "__main__":
    main(*sys.argv[1:4])
