"""Model directory -> a Hugging Face transformers directory that the Auto classes load.

    python -m model.export --model_dir runs/sst2 --export_dir runs/sst2_hf --format hf

writes config.json, model.safetensors (the `safetensors` library; no torch needed),
vocab.txt, tokenizer_config.json and special_tokens_map.json:

    kind                    transformers class             head weights
    pretrainer (MLM + NSP)  BertForPreTraining             cls.predictions.*, cls.seq_relationship.*
    pretrainer (MLM only)   BertForMaskedLM                cls.predictions.*
    encoder                 BertModel                      -
    classification          BertForSequenceClassification  classifier.* (id2label: our labels)
    regression              BertForSequenceClassification  classifier.* (problem_type regression)
    ner                     BertForTokenClassification     classifier.* (id2label)
    squad                   BertForQuestionAnswering       qa_outputs.*
    multiple_choice         BertForMultipleChoice          classifier.*

Our tanh GELU is transformers' `gelu_new`, the exact erf GELU of an imported model its
`gelu`. The tokenizer files carry the model's casing, so `AutoTokenizer` gives the ids
our in-graph tokenizer gives (both make words over 100 characters [UNK]). A model
transformers' BERT cannot express is refused with one line naming the option: pre-LN
blocks (`norm_first`) and position ids restarted per packed document.

The encoder's tensors are the inverse of model/import_checkpoint.py's `keras_weights`,
so importing the export gives back the same weights bit for bit.
"""

import json
import os
from typing import Dict

import numpy as np

from model import storage
from model.networks.model_dir import ModelDir
from tfrecords.vocab import read_vocab

# transformers' names of our activations (ModelConfig.hidden_act).
HF_ACT = {"gelu_approximate": "gelu_new", "gelu": "gelu", "relu": "relu"}
# kind -> (transformers class, our head layer, its name there); pretrainer by NSP head.
CLASSES = {
    "encoder": ("BertModel", None, None),
    "classification": ("BertForSequenceClassification", "classifier", "classifier"),
    "regression": ("BertForSequenceClassification", "regressor", "classifier"),
    "ner": ("BertForTokenClassification", "tagger", "classifier"),
    "squad": ("BertForQuestionAnswering", "span", "qa_outputs"),
    "multiple_choice": ("BertForMultipleChoice", "choice_scorer", "classifier"),
}
# Token-level heads never read the pooler: transformers builds these without one.
NO_POOLER = {"ner", "squad"}


class HfExportError(Exception):
    """A model that transformers' BERT classes cannot hold; the message names the option."""


def hf_class(md: ModelDir) -> str:
    if md.kind == "pretrainer":
        return "BertForPreTraining" if md.next_sentence else "BertForMaskedLM"
    if md.kind not in CLASSES:
        raise HfExportError(f"{md.path}: kind {md.kind!r} has no transformers class")
    return CLASSES[md.kind][0]


def check_expressible(md: ModelDir) -> None:
    """One line naming the option transformers' BERT cannot express, if the model has one."""
    cfg = md.model_config
    if cfg.norm_first:
        raise HfExportError(
            f"{md.path} has pre-LN blocks (norm_first): transformers' BERT is post-LN, and its "
            "pre-LN RoBERTa classes offset positions by the padding id, so they would not "
            "compute this model; not exported")
    if md.config.get("dataset", {}).get("restart_positions"):
        raise HfExportError(
            f"{md.path} was pretrained with --restart_positions (position ids restart in each "
            "packed document), which transformers' BERT cannot express; not exported")
    if cfg.hidden_act not in HF_ACT:
        raise HfExportError(f"{md.path}: hidden_act {cfg.hidden_act!r} has no transformers name")


def encoder_tensors(w: Dict[str, np.ndarray], cfg, prefix: str = "bert.",
                    pooler: bool = True) -> Dict[str, np.ndarray]:
    """Our encoder's weights (Keras paths without the backbone's name) -> transformers'
    BertModel state dict under `prefix`."""
    H = cfg.hidden_dim
    t = {"embeddings.word_embeddings.weight": w["token_embedding/embeddings"],
         "embeddings.position_embeddings.weight": w["position_embedding/embeddings"],
         "embeddings.token_type_embeddings.weight": w["segment_embedding/embeddings"],
         "embeddings.LayerNorm.weight": w["embeddings_layer_norm/gamma"],
         "embeddings.LayerNorm.bias": w["embeddings_layer_norm/beta"]}
    if pooler:
        t["pooler.dense.weight"] = w["pooled_dense/kernel"].T
        t["pooler.dense.bias"] = w["pooled_dense/bias"]
    for i in range(cfg.num_layers):
        k, hf = f"transformer_layer_{i}/", f"encoder.layer.{i}."
        att = k + "self_attention_layer/"
        for part in ("query", "key", "value"):
            t[hf + f"attention.self.{part}.weight"] = w[att + f"{part}/kernel"].reshape(H, H).T
            t[hf + f"attention.self.{part}.bias"] = w[att + f"{part}/bias"].reshape(H)
        t[hf + "attention.output.dense.weight"] = \
            w[att + "attention_output/kernel"].reshape(H, H).T
        t[hf + "attention.output.dense.bias"] = w[att + "attention_output/bias"]
        for ours, theirs in (("self_attention_layer_norm", "attention.output.LayerNorm"),
                             ("feedforward_layer_norm", "output.LayerNorm")):
            t[hf + theirs + ".weight"] = w[k + ours + "/gamma"]
            t[hf + theirs + ".bias"] = w[k + ours + "/beta"]
        for ours, theirs in (("feedforward_intermediate_dense", "intermediate.dense"),
                             ("feedforward_output_dense", "output.dense")):
            t[hf + theirs + ".weight"] = w[k + ours + "/kernel"].T
            t[hf + theirs + ".bias"] = w[k + ours + "/bias"]
    return {prefix + name: value for name, value in t.items()}


def state_dict(md: ModelDir, model) -> Dict[str, np.ndarray]:
    """The model's weights under transformers' names for its class."""
    w = {v.path.split("/", 1)[1] if v.path.startswith("backbone/") else v.path:
         np.asarray(v.numpy(), np.float32) for v in model.weights}
    cfg = md.model_config
    if md.kind == "encoder":
        return encoder_tensors(w, cfg, prefix="")
    t = encoder_tensors(w, cfg, pooler=md.kind not in NO_POOLER)
    if md.kind == "pretrainer":
        t.update({
            "cls.predictions.transform.dense.weight": w["mlm_head/intermediate_dense/kernel"].T,
            "cls.predictions.transform.dense.bias": w["mlm_head/intermediate_dense/bias"],
            "cls.predictions.transform.LayerNorm.weight":
                w["mlm_head/intermediate_layer_norm/gamma"],
            "cls.predictions.transform.LayerNorm.bias": w["mlm_head/intermediate_layer_norm/beta"],
            "cls.predictions.bias": w["mlm_head/output_bias"],
        })
        if md.next_sentence:
            t["cls.seq_relationship.weight"] = w["nsp_head/classifier/kernel"].T
            t["cls.seq_relationship.bias"] = w["nsp_head/classifier/bias"]
        return t
    _, ours, theirs = CLASSES[md.kind]
    t[f"{theirs}.weight"] = w[f"{ours}/kernel"].T
    t[f"{theirs}.bias"] = w[f"{ours}/bias"]
    return t


def hf_config(md: ModelDir, architecture: str, vocab) -> dict:
    cfg = md.model_config
    out = {"architectures": [architecture], "model_type": "bert",
           "vocab_size": cfg.vocabulary_size, "hidden_size": cfg.hidden_dim,
           "num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
           "intermediate_size": cfg.intermediate_dim, "hidden_act": HF_ACT[cfg.hidden_act],
           "hidden_dropout_prob": cfg.dropout, "attention_probs_dropout_prob": cfg.dropout,
           "max_position_embeddings": cfg.max_sequence_length,
           "type_vocab_size": cfg.num_segments, "layer_norm_eps": cfg.layer_norm_epsilon,
           "initializer_range": 0.02, "pad_token_id": vocab.index("[PAD]"),
           "position_embedding_type": "absolute", "torch_dtype": "float32"}
    labels = (md.config.get("task") or {}).get("labels")
    if md.kind in ("classification", "ner") and labels:
        out["id2label"] = {str(i): label for i, label in enumerate(labels)}
        out["label2id"] = {label: i for i, label in enumerate(labels)}
    if md.kind == "regression":
        out.update(num_labels=1, problem_type="regression")
    elif md.kind == "classification":
        out["problem_type"] = "single_label_classification"
    return out


def tokenizer_files(md: ModelDir, seq_length: int, vocab) -> Dict[str, str]:
    """vocab.txt and the tokenizer config with the model's casing: AutoTokenizer builds
    BertTokenizerFast from them."""
    special = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
               "cls_token": "[CLS]", "mask_token": "[MASK]"}
    config = dict(special, tokenizer_class="BertTokenizer", do_lower_case=md.do_lower_case,
                  strip_accents=None, tokenize_chinese_chars=True,
                  model_max_length=seq_length or md.model_config.max_sequence_length)
    return {"vocab.txt": "\n".join(vocab) + "\n",
            "tokenizer_config.json": json.dumps(config, indent=2, sort_keys=True),
            "special_tokens_map.json": json.dumps(special, indent=2, sort_keys=True)}


def export_hf(md: ModelDir, model, export_dir: str) -> dict:
    """Writes the transformers directory; returns what was written (for export.json-like
    reporting)."""
    from safetensors.numpy import save

    check_expressible(md)
    architecture = hf_class(md)
    tensors = state_dict(md, model)
    vocab = read_vocab(md.vocab_file)
    storage.makedirs(export_dir)
    storage.write_bytes(storage.join(export_dir, "model.safetensors"),
                        save({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                             metadata={"format": "pt"}))
    storage.write_text(storage.join(export_dir, "config.json"),
                       json.dumps(hf_config(md, architecture, vocab), indent=2, sort_keys=True))
    for name, text in tokenizer_files(md, md.max_seq_length, vocab).items():
        storage.write_text(storage.join(export_dir, name), text)
    return {"format": "hf", "class": architecture, "tensors": len(tensors),
            "path": export_dir if storage.is_remote(export_dir) else os.path.abspath(export_dir)}
