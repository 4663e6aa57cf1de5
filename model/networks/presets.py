"""BERT model sizes in one place, with per-field overrides.

The Turc et al. "Well-Read Students Learn Better" family (tiny, mini,
small, medium) and the BERT paper's base and large. The vocabulary size is
not part of a preset: it comes from the dataset's vocab.txt.
"""

import dataclasses
import json
from typing import Mapping, Optional

PRESETS = {
    "bert_tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "bert_mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
    "bert_small": dict(num_layers=4, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "bert_medium": dict(num_layers=8, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "bert_base": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
    "bert_large": dict(num_layers=24, hidden_dim=1024, num_heads=16, intermediate_dim=4096),
}


# Upper bounds of the size fields: well above every BERT-family model (bert_large:
# 24 layers of 1,024; the longest-context encoders take 8,192 positions), and low
# enough that a typo fails here instead of allocating until the kernel kills the job.
SIZE_LIMITS = {"vocabulary_size": 1 << 20, "num_layers": 256, "hidden_dim": 16384,
               "num_heads": 256, "intermediate_dim": 65536, "max_sequence_length": 8192}


class ConfigError(ValueError):
    """A model configuration that cannot work; the message names the field."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A resolved BERT encoder configuration (written as config.json).

    Example:
        >>> cfg = resolve("bert_tiny", vocabulary_size=30522, overrides={"dropout": 0.0})
        >>> cfg.hidden_dim, cfg.dropout
        (128, 0.0)
    """

    vocabulary_size: int
    num_layers: int
    hidden_dim: int
    num_heads: int
    intermediate_dim: int
    dropout: float = 0.1
    max_sequence_length: int = 512
    num_segments: int = 2
    # "gelu_approximate" (tanh) is google-research/bert's and keras-hub's;
    # Hugging Face's "gelu" is the exact erf form (see model/networks/encoder.py).
    hidden_act: str = "gelu_approximate"
    layer_norm_epsilon: float = 1e-12
    # Pre-LayerNorm blocks plus a final LayerNorm (model/networks/encoder.py). A config.json
    # without the field is post-LN, as every model made before it.
    norm_first: bool = False
    preset: str = "custom"

    def __post_init__(self):
        if self.hidden_dim % self.num_heads:
            raise ConfigError(f"hidden_dim {self.hidden_dim} is not divisible by "
                              f"num_heads {self.num_heads}")
        for name in ("vocabulary_size", "num_layers", "hidden_dim", "num_heads",
                     "intermediate_dim", "max_sequence_length"):
            if not 1 <= getattr(self, name) <= SIZE_LIMITS[name]:
                raise ConfigError(f"{name} must be in [1, {SIZE_LIMITS[name]:,}], "
                                  f"got {getattr(self, name):,}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.hidden_act not in ("gelu_approximate", "gelu", "relu"):
            raise ConfigError(f"hidden_act must be gelu_approximate, gelu or relu, "
                              f"got {self.hidden_act!r}")
        if not isinstance(self.norm_first, bool):
            raise ConfigError(f"norm_first must be true or false, got {self.norm_first!r}")
        if not 0.0 < self.layer_norm_epsilon < 1.0:
            raise ConfigError(f"layer_norm_epsilon must be in (0, 1), "
                              f"got {self.layer_norm_epsilon}")

    def backbone_kwargs(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("preset")
        return out

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown model config fields {sorted(unknown)}")
        return cls(**data)


def resolve(preset: str, *, vocabulary_size: int,
            overrides: Optional[Mapping] = None) -> ModelConfig:
    """A preset's config with the vocabulary size and any field overridden."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    fields = dict(PRESETS[preset], vocabulary_size=vocabulary_size, preset=preset)
    fields.update(overrides or {})
    return ModelConfig.from_dict(fields)


def parse_overrides(pairs) -> dict:
    """["dropout=0.0", "num_layers=3"] -> {"dropout": 0.0, "num_layers": 3}."""
    types = {f.name: f.type for f in dataclasses.fields(ModelConfig)}
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or name not in types or name in ("vocabulary_size", "preset"):
            raise ConfigError(f"--model_override {pair!r}: expected FIELD=VALUE with FIELD one of "
                              f"{', '.join(n for n in types if n not in ('vocabulary_size', 'preset'))}")
        if types[name] in (str, "str"):
            out[name] = value
            continue
        if types[name] in (bool, "bool"):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ConfigError(f"--model_override {pair!r}: {name} takes true or false, "
                                  f"got {value!r}")
            out[name] = value.lower() in ("true", "1")
            continue
        number = float if types[name] in (float, "float") else int
        try:
            out[name] = number(value)
        except ValueError:
            raise ConfigError(f"--model_override {pair!r}: {name} takes "
                              f"{'a number' if number is float else 'an integer'}, "
                              f"got {value!r}") from None
    return out
