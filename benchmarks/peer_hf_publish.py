"""A transformers user loading our --format hf export (run in .venv-bench, never the
product's venv): the Auto classes, the tokenizer from the directory, real text in.

    python benchmarks/peer_hf_publish.py EXPORT_DIR IN.json OUT.npz
        IN: {"texts": [...], "text_b": [...] or null, "choices": N or 0, "length": L}
        OUT: input_ids (the tokenizer's, padded to L) and every output of the model
"""

import json
import sys

import numpy as np
import torch
import transformers

AUTO = {"BertForPreTraining": transformers.AutoModelForPreTraining,
        "BertForMaskedLM": transformers.AutoModelForMaskedLM,
        "BertModel": transformers.AutoModel,
        "BertForSequenceClassification": transformers.AutoModelForSequenceClassification,
        "BertForTokenClassification": transformers.AutoModelForTokenClassification,
        "BertForQuestionAnswering": transformers.AutoModelForQuestionAnswering,
        "BertForMultipleChoice": transformers.AutoModelForMultipleChoice}


def main(export_dir, in_path, out_path):
    request = json.load(open(in_path))
    config = transformers.AutoConfig.from_pretrained(export_dir)
    [architecture] = config.architectures
    model, info = AUTO[architecture].from_pretrained(export_dir, output_loading_info=True)
    assert type(model).__name__ == architecture, type(model).__name__
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    tokenizer = transformers.AutoTokenizer.from_pretrained(export_dir)
    enc = tokenizer(request["texts"], request["text_b"], padding="max_length",
                    truncation=True, max_length=request["length"], return_tensors="pt")
    kwargs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    if request["choices"]:
        kwargs = {k: v.reshape(-1, request["choices"], v.shape[-1]) for k, v in kwargs.items()}
    with torch.no_grad():
        out = model.eval()(**kwargs)
    arrays = {"input_ids": enc["input_ids"].numpy(), "id2label": np.array(
        [config.id2label[i] for i in range(config.num_labels)])}
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            arrays[key] = value.numpy()
    np.savez(out_path, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
