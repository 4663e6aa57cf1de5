"""Saving Keras-backed tf.functions as SavedModels that every client loads.

Keras 3 variables wrap a tf.Variable. When a Keras layer is reachable from
the object tf.saved_model.save walks, each of its variables is exported as a
*copy* of the tf.Variable its functions capture (keras/src/backend/tensorflow/
core.py, `_export_to_saved_model_graph`), and the MetaGraph's restore op
fills the copy. `tf.saved_model.load` rewires this through the object graph,
but the graph-mode session loader (TF Serving's C++ `LoadSavedModel`,
`saved_model_cli run`) runs the restore op and then reads the captured,
never-restored variable: "Could not find variable ... uninitialized"
(tensorflow/serving#2250, keras-team/keras#19274). The same copy is why a
TF-Hub `trainable_variables` built from Keras variables trains weights the
forward pass never reads.

So the modules saved here never track Keras objects. `keras_free(obj)`
holds the Keras model out of the object graph; `save()` traces every
function first, collects the tf.Variables those functions capture, and
tracks exactly those as `variables` / `trainable_variables` /
`non_trainable_variables` on the root: the restore op then fills the
variables the graph reads, each stored once, and TF Hub finds the same
objects to train.

Why not keras.export.ExportArchive, which also loads in the session loader:
it tracks the Keras variables besides the captured ones, so every weight is
stored twice (measured: 3.41 MB of variables for a 1.70 MB encoder, against
1.70 MB here), and its root has no `__call__(inputs, training)`, which a
TF Hub reusable SavedModel needs.

Example:
    >>> root = ExportRoot()                                    # doctest: +SKIP
    >>> root.model = keras_free(model)                         # doctest: +SKIP
    >>> save(root, "out/1", {"serving_default": fn.get_concrete_function()})  # doctest: +SKIP
"""

from typing import Dict, Iterable

import tensorflow as tf


class ExportRoot(tf.__internal__.tracking.AutoTrackable):
    """A SavedModel root whose `variables` etc. are plain attributes (tf.Module makes
    them read-only properties), as TF Hub's reusable SavedModel API wants."""


class keras_free:  # noqa: N801  (reads as a marker at the assignment)
    """Holds an object (a Keras model) without the SavedModel object graph seeing it."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj


def captured_variables(functions: Iterable) -> tuple:
    """(trainable, non-trainable) tf.Variables captured by concrete functions, in order."""
    trainable, other, seen = [], [], set()
    for fn in functions:
        for v in fn.trainable_variables:
            if id(v) not in seen:
                seen.add(id(v))
                trainable.append(v)
        for v in fn.variables:
            if id(v) not in seen:
                seen.add(id(v))
                other.append(v)
    return trainable, other


def save(root: ExportRoot, path: str, signatures: Dict[str, object],
         functions: Iterable = ()) -> None:
    """Writes `root` with its captured variables tracked on it (see the module docstring).

    Args:
        root: the object to save; Keras objects on it must be wrapped in keras_free.
        path: the SavedModel directory.
        signatures: name -> concrete function (flat dict of tensors in and out).
        functions: other traced concrete functions the root exposes (e.g. a TF-Hub
            `__call__` with training=True), whose variables must be tracked too.
    """
    trainable, other = captured_variables(list(signatures.values()) + list(functions))
    root.variables = trainable + other
    root.trainable_variables = list(trainable)
    root.non_trainable_variables = list(other)
    tf.saved_model.save(root, path, signatures=signatures)
