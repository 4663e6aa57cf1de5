"""Model directory -> a keras-hub preset, written by keras-hub itself.

    python -m model.export --model_dir runs/sst2 --export_dir runs/sst2_kh --format keras_hub

    kind             keras-hub class        load it with
    pretrainer       BertMaskedLM           keras_hub.models.BertMaskedLM.from_preset(E)
    encoder          BertBackbone           keras_hub.models.BertBackbone.from_preset(E)
    classification   BertTextClassifier     keras_hub.models.BertTextClassifier.from_preset(E)

Our weights go into keras-hub's own BertBackbone (the same layer names: our encoder is
built like it) and task classes, with a BertTokenizer of our vocabulary and casing, and
`save_to_preset` writes the directory. keras-hub's BertBackbone fixes what ours
configures: tanh GELU, layer-norm epsilon 1e-12, post-LN. A model that differs there
(an imported Hugging Face model with exact erf GELU, a pre-LN budget model) is refused
with one line; so are the kinds keras-hub has no BERT class for (regression, ner,
squad, multiple_choice: --format hf holds them).

Two differences are keras-hub's and are measured at every export (returned, printed):
BertMaskedLM's transform uses exact GELU and epsilon 1e-5 where the pretrainer used
tanh GELU and 1e-12 (so MLM logits differ slightly; the backbone's outputs do not),
and keras-hub's WordPiece splits on ASCII whitespace only (a word joined by a
non-breaking space becomes [UNK]; the preset's tokenizer is told to strip accents when
it lower-cases, as BERT does). The export reloads the preset with keras-hub's
`from_preset`, runs it on real sentences and reports the largest difference from our
model, and how many sentences tokenize differently.
"""

import os

import numpy as np
import tensorflow as tf

from model import storage
from model.networks.model_dir import ModelDir, resolve_seq_length

KH_CLASSES = {"pretrainer": "BertMaskedLM", "encoder": "BertBackbone",
              "classification": "BertTextClassifier"}
# Real sentences the export checks itself on (news, an encyclopedia, reviews; one with
# a non-breaking space, one with accents).
SENTENCES = [
    "The capital of France is Paris, and its river is the Seine.",
    "A gripping, beautifully acted film that never lets up.",
    "Shares of the company fell 4.5% after the earnings report on Tuesday.",
    "Pedro\u00a0II ruled the Empire of Brazil for 58 years.",
    "Caf\u00e9 owners in Montr\u00e9al protested the new regulations.",
    "The mitochondria is the powerhouse of the cell.",
]


class KerasHubExportError(Exception):
    """A model keras-hub's BERT classes cannot hold; the message names the difference."""


def check_expressible(md: ModelDir) -> None:
    cfg = md.model_config
    if md.kind not in KH_CLASSES:
        raise KerasHubExportError(
            f"{md.path} is a {md.kind!r} model: keras-hub has no BERT class for it "
            f"(it has {', '.join(sorted(KH_CLASSES.values()))}); use --format hf")
    if cfg.hidden_act != "gelu_approximate":
        raise KerasHubExportError(
            f"{md.path} uses hidden_act {cfg.hidden_act!r}; keras-hub's BertBackbone computes "
            "tanh GELU only (gelu_approximate), so it would not compute this model; use "
            "--format hf")
    if cfg.layer_norm_epsilon != 1e-12:
        raise KerasHubExportError(
            f"{md.path} has layer_norm_epsilon {cfg.layer_norm_epsilon}; keras-hub's "
            "BertBackbone fixes it at 1e-12; use --format hf")
    if cfg.norm_first:
        raise KerasHubExportError(f"{md.path} has pre-LN blocks (norm_first); keras-hub's "
                                  "BertBackbone is post-LN; not exported")
    if md.config.get("dataset", {}).get("restart_positions"):
        raise KerasHubExportError(f"{md.path} was pretrained with --restart_positions, which "
                                  "keras-hub's BertBackbone cannot express; not exported")


def _copy(source: dict, layer) -> None:
    """Assigns every variable of `layer` from `source` (our paths, which are keras-hub's:
    our encoder names its layers as BertBackbone does), all of them or none."""
    targets = {v.path: v for v in layer.weights}
    missing = sorted(set(targets) - set(source))
    if missing:
        raise KerasHubExportError(f"keras-hub's {layer.name} has weights the model lacks: "
                                  f"{missing[:4]}")
    for path, var in targets.items():
        value = source[path]
        if tuple(var.shape) != tuple(value.shape):
            raise KerasHubExportError(f"{path}: shape {tuple(value.shape)} against keras-hub's "
                                      f"{tuple(var.shape)}")
        var.assign(value)


def export_keras_hub(md: ModelDir, model, export_dir: str) -> dict:
    """Writes the preset; returns what was written and what keras-hub's reload measured."""
    import keras_hub

    check_expressible(md)
    cfg = md.model_config
    ours = {v.path.split("/", 1)[1] if v.path.startswith("backbone/") else v.path: v.numpy()
            for v in model.weights}
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=cfg.vocabulary_size, num_layers=cfg.num_layers,
        num_heads=cfg.num_heads, hidden_dim=cfg.hidden_dim,
        intermediate_dim=cfg.intermediate_dim, dropout=cfg.dropout,
        max_sequence_length=cfg.max_sequence_length, num_segments=cfg.num_segments)
    _copy(ours, backbone)
    # Uncased BERT strips accents as it lower-cases (ours and transformers' do); keras-hub's
    # BertTokenizer keeps them unless told.
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=md.vocab_file,
                                               lowercase=md.do_lower_case,
                                               strip_accents=md.do_lower_case)
    seq_length = resolve_seq_length(0, md.max_seq_length, cfg.max_sequence_length)
    if md.kind == "encoder":
        task = backbone
    elif md.kind == "pretrainer":
        pre = keras_hub.models.BertMaskedLMPreprocessor(tokenizer, sequence_length=seq_length)
        task = keras_hub.models.BertMaskedLM(backbone, preprocessor=pre)
        _copy(ours, task.get_layer("mlm_head"))  # its tied embedding is the backbone's
    else:
        labels = md.config["task"]["labels"]
        pre = keras_hub.models.BertTextClassifierPreprocessor(tokenizer,
                                                              sequence_length=seq_length)
        task = keras_hub.models.BertTextClassifier(backbone, num_classes=len(labels),
                                                   preprocessor=pre, dropout=cfg.dropout)
        logits = task.get_layer("logits")
        logits.kernel.assign(ours["classifier/kernel"])
        logits.bias.assign(ours["classifier/bias"])
    storage.makedirs(export_dir)
    task.save_to_preset(export_dir)
    if md.kind == "encoder":
        tokenizer.save_to_preset(export_dir)
    measured = _measure(md, model, export_dir, seq_length)
    return {"format": "keras_hub", "class": KH_CLASSES[md.kind], **measured,
            "path": export_dir if storage.is_remote(export_dir) else os.path.abspath(export_dir)}


def _measure(md: ModelDir, model, export_dir: str, seq_length: int) -> dict:
    """keras-hub's from_preset of what was written, against our model on SENTENCES: the
    largest output difference on the same ids, and the sentences tokenized differently."""
    import keras_hub

    from model.networks.preprocessing import BertTextPreprocessor

    length = min(seq_length, 64)
    ours_pre = BertTextPreprocessor(md.vocab_file, md.do_lower_case, length)
    packed = {k: np.asarray(v) for k, v in ours_pre.pack(
        ours_pre.tokenize(tf.constant(SENTENCES)), None, length).items()}
    theirs_tok = keras_hub.models.BertTokenizer.from_preset(export_dir)
    differ = sum(
        list(np.asarray(theirs_tok(s))[:length - 2]) !=
        [int(i) for i in packed["input_ids"][n][1:int(packed["input_mask"][n].sum()) - 1]]
        for n, s in enumerate(SENTENCES))
    inputs = {"token_ids": packed["input_ids"], "segment_ids": packed["segment_ids"],
              "padding_mask": packed["input_mask"]}
    ids = {"input_ids": packed["input_ids"], "input_mask": packed["input_mask"],
           "segment_ids": packed["segment_ids"]}
    cls = getattr(keras_hub.models, KH_CLASSES[md.kind])
    loaded = cls.from_preset(export_dir, **({"preprocessor": None} if md.kind != "encoder"
                                            else {}))
    if md.kind == "encoder":
        theirs = loaded(inputs)["sequence_output"]
        mine = model({"token_ids": ids["input_ids"], "segment_ids": ids["segment_ids"],
                      "padding_mask": ids["input_mask"]})["sequence_output"]
        what = "sequence_output"
    elif md.kind == "pretrainer":
        positions = np.tile(np.arange(1, 6, dtype=np.int32), (len(SENTENCES), 1))
        theirs = loaded(dict(inputs, mask_positions=positions))
        mine = model(dict(ids, masked_lm_positions=positions))["mlm_logits"]
        what = "mlm_logits"
    else:
        theirs = loaded(inputs)
        mine = model(ids)["logits"]
        what = "logits"
    diff = float(np.max(np.abs(np.asarray(theirs, np.float64) - np.asarray(mine, np.float64))))
    return {"checked_with": f"keras_hub.models.{KH_CLASSES[md.kind]}.from_preset",
            "max_abs_diff": {what: diff}, "sentences": len(SENTENCES),
            "sentences_tokenized_differently": int(differ)}
