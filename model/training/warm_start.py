"""--init_checkpoint: start a run from another model's weights, strictly.

Continued pretraining (domain- or task-adaptive, BioBERT-style) and phase 2
at a longer length start here. The source is a model directory of this
project (pretrained, imported, fine-tuned) or a bare checkpoint; its
config.json gives the architecture, so a contradicting --preset or
--model_override is refused. Every encoder variable must come from the
checkpoint with its shape, or the run stops naming the variable (a partial
restore that goes on training is the silent failure this module exists to
prevent). Heads come from a pretrainer's checkpoint when it has them;
those it lacks start fresh, and one log line names them.

A domain vocabulary (pipeline.build_vocab --base_vocab_file) keeps every id
of the source's vocabulary and puts new words in [unused*] slots; each new
word's embedding row (and MLM output bias) starts as the mean of the rows of
the pieces the source's vocabulary split it into.

Variables are matched as tf.train.Checkpoint matches them: by the path of
attribute names from the root to the variable (encoder/_operations/9/...),
followed in the checkpoint's own object graph (a trained run stores a
variable's value under the first path that reached it, often the
optimizer's). The paths come from the live objects (tf.train.TrackableView),
so a missing or mis-shaped value is found before anything is assigned, and
named by its Keras path.
"""

import collections
import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from model import storage
from model.networks.model_dir import ModelDir, ModelDirError, open_model_dir
from model.networks.presets import PRESETS, ModelConfig
from model.training.engine import TrainingError
from tfrecords.shards import DatasetError
from tfrecords.vocab import is_unused, read_vocab, wordpiece

# Fields an --init_checkpoint run may change: they shape no variable.
FREE_FIELDS = ("dropout",)


@dataclasses.dataclass
class InitSource:
    """Where the initial weights come from.

    Attributes:
        argument: --init_checkpoint as given.
        checkpoint: the checkpoint prefix read.
        model_dir: its model directory (None: a bare checkpoint with no config.json near it).
    """

    argument: str
    checkpoint: str
    model_dir: Optional[ModelDir]

    @property
    def kind(self) -> str:
        return self.model_dir.kind if self.model_dir else "unknown"

    @property
    def config_path(self) -> str:
        return storage.join(self.model_dir.path, "config.json") if self.model_dir else ""


def _model_dir_near(path: str) -> Optional[ModelDir]:
    """The model directory `path` is, or holds a checkpoint of (MODEL_DIR/checkpoints/ckpt-N)."""
    for candidate in (path, os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
        if candidate and storage.isfile(storage.join(candidate, "config.json")):
            try:
                return open_model_dir(candidate)
            except ModelDirError as e:
                raise TrainingError(f"--init_checkpoint {path}: {e}") from None
    return None


def find_source(argument: str) -> InitSource:
    """Resolves --init_checkpoint: a model directory, a checkpoint directory or a prefix."""
    path = argument.rstrip("/")
    if storage.isdir(path):
        model_dir = _model_dir_near(path) if storage.isfile(
            storage.join(path, "config.json")) else None
        checkpoint = (model_dir and tf.train.latest_checkpoint(model_dir.checkpoint_dir)) or \
            tf.train.latest_checkpoint(path)
        if not checkpoint:
            raise TrainingError(f"--init_checkpoint {argument}: no checkpoint found in it")
        return InitSource(argument, checkpoint, model_dir or _model_dir_near(
            os.path.dirname(checkpoint)))
    if not tf.io.gfile.exists(path + ".index"):
        raise TrainingError(f"--init_checkpoint {argument}: neither a model directory nor a "
                            "checkpoint (no such directory, no .index file)")
    return InitSource(argument, path, _model_dir_near(os.path.dirname(path)))


def architecture(source: InitSource, preset: str, overrides: dict,
                 vocabulary_size: int) -> Optional[ModelConfig]:
    """The source's ModelConfig with the free fields overridden; None when it has no config.

    A --preset or --model_override that contradicts the source is an error naming both
    values (the weights could not be loaded into another shape).
    """
    if source.model_dir is None:
        return None
    config = source.model_dir.model_config
    where = source.config_path
    if preset:
        clashes = [f"{k} {v} vs {getattr(config, k)}" for k, v in PRESETS[preset].items()
                   if getattr(config, k) != v]
        if clashes:
            raise TrainingError(
                f"--preset {preset} contradicts --init_checkpoint's {where} "
                f"({', '.join(clashes)}); leave --preset out: the architecture comes from the "
                "checkpoint")
    for name, value in overrides.items():
        if name not in FREE_FIELDS and getattr(config, name) != value:
            raise TrainingError(
                f"--model_override {name}={value} contradicts --init_checkpoint's {where} "
                f"({name} {getattr(config, name)}); only {', '.join(FREE_FIELDS)} may change")
    if vocabulary_size != config.vocabulary_size:
        raise TrainingError(
            f"the vocabulary has {vocabulary_size} tokens, --init_checkpoint's {where} has "
            f"vocabulary_size {config.vocabulary_size}: pretrain with the checkpoint's vocab.txt "
            "or a domain vocabulary made from it (pipeline.build_vocab --base_vocab_file)")
    free = {k: v for k, v in overrides.items() if k in FREE_FIELDS}
    return dataclasses.replace(config, **free)


def new_words(base: Sequence[str], vocab: Sequence[str], where: str) -> Dict[int, List[int]]:
    """{id: base-vocabulary piece ids} of the words a domain vocabulary put in [unused*] slots.

    Every other id must hold the base vocabulary's token: a vocabulary with shifted ids
    would train every embedding row on the wrong word.

    Example:
        >>> base = ["[PAD]", "[unused0]", "[UNK]", "run", "##ning"]
        >>> new_words(base, ["[PAD]", "running", "[UNK]", "run", "##ning"], "v")
        {1: [3, 4]}
    """
    if len(base) != len(vocab):
        raise TrainingError(f"{where}: {len(vocab)} tokens, the checkpoint's vocabulary "
                            f"has {len(base)}")
    index = {t: i for i, t in enumerate(base)}
    out = {}
    for i, (old, new) in enumerate(zip(base, vocab)):
        if old == new:
            continue
        if not is_unused(old):
            raise TrainingError(
                f"{where}: id {i} is {new!r}, the checkpoint's vocabulary has {old!r} there; "
                "only [unused*] slots may change (pipeline.build_vocab --base_vocab_file)")
        out[i] = wordpiece(new, index)
    return out


Path = Tuple[str, ...]


def variable_paths(**objects) -> Dict[Path, object]:
    """{path of attribute names: variable} under tf.train.Checkpoint(**objects)'s root,
    each variable once (breadth first: its shortest path)."""
    root = tf.train.Checkpoint(**objects)
    view = tf.train.TrackableView(root)
    seen, queue, paths = {id(root)}, collections.deque([(root, ())]), {}
    while queue:
        obj, path = queue.popleft()
        for name, child in view.children(obj).items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            if hasattr(child, "assign") and hasattr(child, "shape"):
                paths[path + (name,)] = child
            else:
                queue.append((child, path + (name,)))
    return paths


class CheckpointGraph:
    """A checkpoint's values found by object path, through its object graph."""

    def __init__(self, prefix: str):
        try:
            self.reader = tf.train.load_checkpoint(prefix)
            self.shapes = self.reader.get_variable_to_shape_map()
            graph = trackable_object_graph_pb2.TrackableObjectGraph()
            graph.ParseFromString(self.reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
        except (tf.errors.OpError, ValueError) as e:
            raise TrainingError(f"--init_checkpoint {prefix}: not a readable TF2 checkpoint "
                                f"({str(e).splitlines()[0][:160]})") from None
        self.nodes = graph.nodes

    def key(self, path: Path) -> Optional[str]:
        """The tensor key of the variable at `path`, None when the checkpoint has none."""
        node = self.nodes[0]
        for name in path:
            child = next((c.node_id for c in node.children if c.local_name == name), None)
            if child is None:
                return None
            node = self.nodes[child]
        return next((a.checkpoint_key for a in node.attributes if a.name == "VARIABLE_VALUE"),
                    None)


def _name(var) -> str:
    return getattr(var, "path", None) or var.name


def _head_of(var) -> str:
    return _name(var).split("/", 1)[0]


class WarmStart:
    """Loads a source's weights into a freshly built pretrainer.

    Args:
        source: from find_source().
        model: the pretrainer (backbone + heads).
        encoder: its backbone.
        vocab: the run's vocabulary (a domain vocabulary may fill [unused*] slots).
        vocab_source: where the vocabulary came from, for messages.
    """

    def __init__(self, source: InitSource, model, encoder, vocab: Sequence[str],
                 vocab_source: str):
        self.source, self.model, self.encoder = source, model, encoder
        self.vocab, self.vocab_source = list(vocab), vocab_source

    @staticmethod
    def _match(paths: Dict[Path, object], graph: CheckpointGraph) -> Tuple[dict, list, list]:
        """({tensor key: variable} found with the variable's shape, missing, mis-shaped)."""
        found, missing, misshaped = {}, [], []
        for path, var in paths.items():
            key = graph.key(path)
            if key is None:
                missing.append(var)
            elif tuple(graph.shapes[key]) != tuple(var.shape):
                misshaped.append(f"{_name(var)} {tuple(var.shape)} "
                                 f"(checkpoint {tuple(graph.shapes[key])})")
            else:
                found[key] = var
        return found, missing, misshaped

    def run(self) -> str:
        """Assigns the weights; returns the one-line report of what was loaded."""
        ckpt = self.source.checkpoint
        if not tf.io.gfile.exists(ckpt + ".index"):
            raise TrainingError(f"--init_checkpoint {ckpt}: no such checkpoint")
        try:
            graph = CheckpointGraph(ckpt)
        except TrainingError:
            reader = tf.train.load_checkpoint(ckpt)
            if any(k.startswith("bert/") for k in reader.get_variable_to_shape_map()):
                raise TrainingError(
                    f"--init_checkpoint {ckpt} is a google-research TF1 checkpoint: import it "
                    "first (python -m model.import_checkpoint --format tf1)") from None
            raise
        encoder_paths = variable_paths(encoder=self.encoder)
        found, missing, misshaped = self._match(encoder_paths, graph)
        if missing or misshaped:
            names = misshaped + [_name(v) for v in missing]
            raise TrainingError(
                f"--init_checkpoint {ckpt} lacks {len(names)} of the encoder's "
                f"{len(encoder_paths)} variables or holds them in another shape: "
                f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''}")
        encoder_vars = {id(v) for v in encoder_paths.values()}

        # Heads, from a pretrainer of this project only: other kinds' `model` is
        # another network (a classifier), whose layers must not become heads.
        heads: Dict[str, Dict[Path, object]] = collections.defaultdict(dict)
        for path, var in variable_paths(model=self.model).items():
            if id(var) not in encoder_vars:
                heads[_head_of(var)][path] = var
        loaded, fresh = [], []
        for head, members in sorted(heads.items()):
            if self.source.kind == "pretrainer":
                head_found, head_missing, head_misshaped = self._match(members, graph)
            else:
                head_found, head_missing, head_misshaped = {}, list(members.values()), []
            if head_missing or head_misshaped:
                fresh.append(head + (f" (the checkpoint's has another shape: "
                                     f"{head_misshaped[0]})" if head_misshaped else ""))
                continue
            loaded.append(head)
            found.update(head_found)

        values = {key: graph.reader.get_tensor(key) for key in found}
        rows = self._domain_rows(values, found)
        for key, var in found.items():
            var.assign(values[key])
        report = (f"Initialized from {ckpt} ({self.source.kind}"
                  f"{', ' + self.source.config_path if self.source.model_dir else ''}): "
                  f"encoder {len(encoder_paths)}/{len(encoder_paths)} variables")
        if loaded:
            report += f"; heads loaded: {', '.join(loaded)}"
        report += f"; created fresh: {', '.join(fresh) if fresh else 'none'}"
        if rows:
            report += (f"; {rows} domain words in [unused*] slots start as the mean of their "
                       "pieces' rows")
        return report

    def _domain_rows(self, values: dict, found: dict) -> int:
        """Rows of new domain words = mean of their base pieces' rows; returns their number."""
        md = self.source.model_dir
        if md is None:
            return 0
        try:
            base = read_vocab(md.vocab_file)
        except DatasetError as e:
            raise TrainingError(str(e)) from None
        words = new_words(base, self.vocab, self.vocab_source)
        if not words:
            return 0
        ids = sorted(words)
        targets = [self.encoder.token_embedding.embeddings]
        targets += [w for w in self.model.weights if _name(w) == "mlm_head/output_bias"]
        by_var = {id(v): k for k, v in found.items()}
        for var in targets:
            key = by_var.get(id(var))
            if key is None:  # a head created fresh: nothing to derive from
                continue
            table = np.array(values[key])
            table[ids] = np.stack([table[words[i]].mean(axis=0) for i in ids])
            values[key] = table
        return len(ids)
