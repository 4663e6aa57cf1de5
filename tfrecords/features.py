"""The feature spec of a pretraining dataset: google-research/bert's names and shapes.

The names and layouts are those of google-research/bert's
`create_pretraining_data.py` (and of TF Model Garden's port), so that their
trainers read our shards unchanged and we read theirs:

    input_ids[L], input_mask[L], segment_ids[L]            int64
    masked_lm_positions[P], masked_lm_ids[P]                int64
    masked_lm_weights[P]                                    float
    next_sentence_labels[1]                                 int64

with L = max_seq_length and P = max_predictions_per_seq, zero-padded.
Dynamic-masking datasets leave out the three masked_lm_* features (masking
happens in tf.data at training time); datasets made without next-sentence
prediction leave out next_sentence_labels. Packed datasets (several
documents per sequence, RoBERTa's FULL-SENTENCES) add

    document_ids[L]                                         int64

1, 2, ... for the document pieces of the sequence in order, 0 on padding;
readers that ask for features by name (google-research's, Model Garden's)
simply do not ask for it.
"""

import dataclasses
from typing import Dict, Mapping, Optional

# TensorFlow is imported only where a tf object is built (parse_features):
# Beam workers use this module and must not pay ~400 MB for TensorFlow.

INT64 = "int64"
FLOAT = "float"

# Model Garden's `--use_v2_feature_names` spells two features differently;
# readers accept both and always hand out the google-research names.
V2_FEATURE_NAMES = {"input_word_ids": "input_ids", "input_type_ids": "segment_ids"}


# The longest sequence any tool here makes or reads: the longest-context BERT-family
# encoders take 8,192 positions. A bound, so that a typo (--max_seq_length 100000000)
# is one line instead of a worker growing until the kernel kills it.
MAX_SEQ_LENGTH = 8192


class FeatureSpecError(ValueError):
    """Raised when records or metadata do not match the expected features."""


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Which features a dataset holds and their fixed lengths.

    Args:
        max_seq_length: L, the padded length of input_ids, input_mask and
            segment_ids.
        max_predictions_per_seq: P, the padded length of the masked_lm_*
            features. Ignored (and stored as 0) when `masked` is False.
        masked: True for statically masked datasets (the masked_lm_* features
            are present), False for dynamic masking.
        next_sentence: True when next_sentence_labels is present.
        packed: True when document_ids is present (sequences of several documents).

    Example:
        >>> spec = FeatureSpec(max_seq_length=128, max_predictions_per_seq=20)
        >>> sorted(spec.shapes())[:2]
        ['input_ids', 'input_mask']
    """

    max_seq_length: int
    max_predictions_per_seq: int = 0
    masked: bool = True
    next_sentence: bool = True
    packed: bool = False

    def __post_init__(self):
        if self.max_seq_length < 2:
            raise FeatureSpecError(
                f"max_seq_length must be at least 2, got {self.max_seq_length}"
            )
        if self.masked and self.max_predictions_per_seq < 1:
            raise FeatureSpecError(
                "a statically masked dataset needs max_predictions_per_seq >= 1, "
                f"got {self.max_predictions_per_seq}"
            )
        if not self.masked and self.max_predictions_per_seq:
            object.__setattr__(self, "max_predictions_per_seq", 0)

    def shapes(self) -> Dict[str, tuple]:
        """Feature name -> (dtype name, length), in the reference's order."""
        L, P = self.max_seq_length, self.max_predictions_per_seq
        out = {
            "input_ids": (INT64, L),
            "input_mask": (INT64, L),
            "segment_ids": (INT64, L),
        }
        if self.masked:
            out["masked_lm_positions"] = (INT64, P)
            out["masked_lm_ids"] = (INT64, P)
            out["masked_lm_weights"] = (FLOAT, P)
        if self.next_sentence:
            out["next_sentence_labels"] = (INT64, 1)
        if self.packed:
            out["document_ids"] = (INT64, L)
        return out

    def parse_features(self) -> dict:
        """The `tf.io.parse_example` spec for these features."""
        import tensorflow as tf

        dtypes = {INT64: tf.int64, FLOAT: tf.float32}
        return {
            name: tf.io.FixedLenFeature([length], dtypes[dtype])
            for name, (dtype, length) in self.shapes().items()
        }

    def to_json(self) -> dict:
        """The `features` block of info.json: explicit names, dtypes and shapes."""
        return {
            "max_seq_length": self.max_seq_length,
            "max_predictions_per_seq": self.max_predictions_per_seq,
            "masked": self.masked,
            "next_sentence": self.next_sentence,
            "packed": self.packed,
            "spec": {
                name: {"dtype": dtype, "shape": [length]}
                for name, (dtype, length) in self.shapes().items()
            },
        }

    @classmethod
    def from_json(cls, block: Mapping, source: str = "info.json") -> "FeatureSpec":
        """Rebuilds a spec from `to_json()` output and checks it is consistent."""
        try:
            spec = cls(
                max_seq_length=int(block["max_seq_length"]),
                max_predictions_per_seq=int(block.get("max_predictions_per_seq", 0)),
                masked=bool(block.get("masked", True)),
                next_sentence=bool(block.get("next_sentence", True)),
                packed=bool(block.get("packed", False)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise FeatureSpecError(f"{source}: malformed features block ({e})") from e
        listed = block.get("spec")
        if listed is not None:
            expected = spec.to_json()["spec"]
            if dict(listed) != expected:
                raise FeatureSpecError(
                    f"{source}: the listed feature spec {dict(listed)} does not "
                    f"match its own lengths and flags (expected {expected})"
                )
        return spec

    @classmethod
    def from_example(cls, example, source: str) -> "FeatureSpec":
        """Infers the spec of a record written by us or by another tool.

        Accepts Model Garden's v2 names (input_word_ids, input_type_ids).
        """
        found = describe_example(example)
        if "input_ids" not in found:
            raise FeatureSpecError(
                f"{source}: records have no input_ids feature (found "
                f"{sorted(found)}); is this a BERT pretraining TFRecord?"
            )
        masked = "masked_lm_positions" in found
        spec = cls(
            max_seq_length=found["input_ids"][1],
            max_predictions_per_seq=found["masked_lm_positions"][1] if masked else 0,
            masked=masked,
            next_sentence="next_sentence_labels" in found,
            packed="document_ids" in found,
        )
        spec.check_found(found, source)
        return spec

    def check_example(self, example, source: str) -> None:
        """Raises FeatureSpecError naming `source` unless the record fits the spec."""
        self.check_found(describe_example(example), source)

    def check_found(self, found: Mapping[str, tuple], source: str) -> None:
        expected = self.shapes()
        problems = []
        for name, (dtype, length) in expected.items():
            if name not in found:
                problems.append(f"missing {name}")
            elif found[name] != (dtype, length):
                got_dtype, got_length = found[name]
                problems.append(
                    f"{name} is {got_dtype}[{got_length}], expected {dtype}[{length}]"
                )
        extra = sorted(set(found) - set(expected))
        if extra:
            problems.append(f"unexpected {', '.join(extra)}")
        if problems:
            raise FeatureSpecError(
                f"{source}: features do not match the dataset spec: "
                + "; ".join(problems)
            )


def describe_example(example) -> Dict[str, tuple]:
    """Feature name (google-research spelling) -> (dtype name, length) of a record."""
    found = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = getattr(feature, kind).value if kind else []
        found[V2_FEATURE_NAMES.get(name, name)] = (
            FLOAT if kind == "float_list" else INT64,
            len(values),
        )
    return found


def spec_from_lengths(
    max_seq_length: int,
    max_predictions_per_seq: Optional[int],
    *,
    masking: str = "static",
    next_sentence: bool = True,
    packed: bool = False,
) -> FeatureSpec:
    """The spec for generation parameters (`masking` is 'static' or 'dynamic')."""
    if not 8 <= max_seq_length <= MAX_SEQ_LENGTH:
        raise FeatureSpecError(f"max_seq_length must be in [8, {MAX_SEQ_LENGTH:,}], "
                               f"got {max_seq_length:,}")
    if not 0 <= (max_predictions_per_seq or 0) <= max_seq_length:
        raise FeatureSpecError(f"max_predictions_per_seq must be in [0, max_seq_length "
                               f"{max_seq_length:,}], got {max_predictions_per_seq:,}")
    if masking not in ("static", "dynamic"):
        raise FeatureSpecError(f"masking must be 'static' or 'dynamic', got {masking!r}")
    return FeatureSpec(
        max_seq_length=max_seq_length,
        max_predictions_per_seq=max_predictions_per_seq or 0,
        masked=masking == "static",
        next_sentence=next_sentence,
        packed=packed,
    )
