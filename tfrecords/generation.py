"""The generation contract: the parameters a dataset was made with, written by the pipeline
into info.json's `generation` block and read back by the model, and the constants both
stages must agree on.

    from tfrecords.generation import Generation, MAX_CHARS_PER_WORD
    gen = Generation.from_info(dataset.info)   # None for bare TFRecord patterns
    gen.do_lower_case, gen.masked_lm_prob, gen.max_seq_length

The typed fields are the ones another stage reads; every other parameter the
pipeline records (dupe_factor, bucketing, the layout note, ...) travels in
`details` and is written back unchanged, so info.json keeps one flat block.
"""

import dataclasses
from typing import Any, Mapping, Optional

# WordPiece turns a word longer than this into [UNK]. Training (pipeline/tokenization.py),
# the vocabulary learner and warm start (tfrecords/vocab.py) and serving
# (model/networks/preprocessing.py, whose TF Text tokenizer counts bytes) must agree, or a
# model sees other ids in serving than in training. Hugging Face's BertTokenizer uses 100.
MAX_CHARS_PER_WORD = 100

# The defaults of google-research/bert's create_pretraining_data.py and run_pretraining.py.
DEFAULT_MAX_SEQ_LENGTH = 128
DEFAULT_MAX_PREDICTIONS_PER_SEQ = 20
DEFAULT_MASKED_LM_PROB = 0.15


class GenerationError(ValueError):
    """info.json's generation block has a field of the wrong type."""


@dataclasses.dataclass(frozen=True)
class Generation:
    """info.json's `generation` block.

    Example:
        >>> g = Generation.from_dict({"max_seq_length": 64, "dupe_factor": 5})
        >>> g.max_seq_length, g.masked_lm_prob, g.details, g.to_dict()["dupe_factor"]
        (64, 0.15, {'dupe_factor': 5}, 5)
    """

    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH
    max_predictions_per_seq: int = DEFAULT_MAX_PREDICTIONS_PER_SEQ
    masked_lm_prob: float = DEFAULT_MASKED_LM_PROB
    do_lower_case: bool = True
    masking: str = "static"  # or "dynamic": masked at training time
    next_sentence_prediction: bool = True
    packing: bool = False
    do_whole_word_mask: bool = False
    max_ngram_size: int = 0
    random_seed: int = 12345
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def typed_fields(cls):
        return [f for f in dataclasses.fields(cls) if f.name != "details"]

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> "Generation":
        """A generation block as written (missing typed fields take the defaults)."""
        values, details = {}, {}
        types = {f.name: f.type for f in cls.typed_fields()}
        for key, value in block.items():
            if key not in types:
                details[key] = value
                continue
            kind = types[key]
            accepted = (int, float) if kind is float else kind
            if not isinstance(value, accepted) or (kind is not bool and isinstance(value, bool)):
                article = "an" if kind is int else "a"
                raise GenerationError(f"generation.{key} must be {article} {kind.__name__}, "
                                      f"got {value!r}")
            values[key] = kind(value)
        return cls(**values, details=details)

    @classmethod
    def from_info(cls, info: Optional[Mapping[str, Any]]) -> Optional["Generation"]:
        """The block of a dataset's info.json; None when there is none (bare shards)."""
        block = (info or {}).get("generation")
        return None if block is None else cls.from_dict(block)

    def to_dict(self) -> dict:
        """The flat block info.json holds: the typed fields, then the details."""
        out = {f.name: getattr(self, f.name) for f in self.typed_fields()}
        out.update(self.details)
        return out
