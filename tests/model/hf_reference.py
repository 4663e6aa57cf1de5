"""Reference outputs from Hugging Face transformers (PyTorch CPU), run in .venv-bench.

    python tests/model/hf_reference.py encode CHECKPOINT_DIR IN.npz OUT.npz
        IN holds input_ids, input_mask, segment_ids; OUT gets sequence_output, pooled_output
        (BertModel), and mlm_logits, nsp_logits when the checkpoint has the heads
        (BertForPreTraining).
    python tests/model/hf_reference.py make_encoder CHECKPOINT_DIR
        the same without heads (BertModel), as published encoders such as MiniLM are
    python tests/model/hf_reference.py make_pretraining CHECKPOINT_DIR
        writes a small randomly initialized BertForPreTraining (heads included) in
        Hugging Face layout, for tests of importing heads (no published checkpoint here has them).

Kept out of the product: torch and transformers live in .venv-bench only.
"""

import sys

import numpy as np
import torch
import transformers


def encode(checkpoint_dir, in_path, out_path):
    data = np.load(in_path)
    kwargs = dict(input_ids=torch.tensor(data["input_ids"], dtype=torch.long),
                  attention_mask=torch.tensor(data["input_mask"], dtype=torch.long),
                  token_type_ids=torch.tensor(data["segment_ids"], dtype=torch.long))
    out = {}
    with torch.no_grad():
        model = transformers.BertModel.from_pretrained(checkpoint_dir).eval()
        result = model(**kwargs)
        out["sequence_output"] = result.last_hidden_state.numpy()
        out["pooled_output"] = result.pooler_output.numpy()
        pre, info = transformers.BertForPreTraining.from_pretrained(
            checkpoint_dir, output_loading_info=True)
        if not any(k.startswith("cls.") for k in info["missing_keys"]):  # the heads are real
            heads = pre.eval()(**kwargs)
            out["mlm_logits"] = heads.prediction_logits.numpy()
            out["nsp_logits"] = heads.seq_relationship_logits.numpy()
    np.savez(out_path, **out)


def make_pretraining(checkpoint_dir, hidden_act="gelu", heads=True):
    torch.manual_seed(0)
    vocab = [line.rstrip("\n") for line in open("tests/fixtures/vocab.txt", encoding="utf-8")]
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64,
                                     max_position_embeddings=64, hidden_act=hidden_act,
                                     layer_norm_eps=1e-7)
    model = (transformers.BertForPreTraining if heads else transformers.BertModel)(config).eval()
    with torch.no_grad():  # non-trivial biases and norms, so a mix-up shows
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(checkpoint_dir)
    with open(f"{checkpoint_dir}/vocab.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "encode":
        encode(*sys.argv[2:5])
    elif sys.argv[1] == "make_encoder":
        make_pretraining(sys.argv[2], heads=False)
    elif sys.argv[1] == "make_pretraining":
        make_pretraining(*sys.argv[2:])
