"""Choosing the tf.distribute strategy, in one place.

    auto          MirroredStrategy over all local GPUs when there are any, else one device
    one_device    the first GPU, or the CPU
    mirrored      MirroredStrategy over local GPUs (else the logical CPUs: see split_cpu)
    multi_worker  MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG
    tpu           TPUStrategy on --tpu (a name, grpc:// address, or "local")
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


class StrategyError(ValueError):
    """A strategy that cannot be set up here; the message says what is missing."""


def split_cpu(num_devices: int) -> None:
    """Makes `num_devices` logical CPU devices.

    Must run before anything initializes TensorFlow's runtime (reading a
    dataset does), so the trainer calls it first of all.
    """
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])


def make_strategy(name: str, *, tpu: str = "") -> tf.distribute.Strategy:
    """The strategy named by --strategy.

    Example:
        >>> make_strategy("one_device").num_replicas_in_sync
        1
    """
    if name not in STRATEGIES:
        raise StrategyError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "multi_worker":
        # Before anything lists devices: that starts the runtime, after which
        # collectives can no longer be configured.
        if "TF_CONFIG" not in os.environ:
            raise StrategyError("--strategy multi_worker reads the cluster from TF_CONFIG, "
                                "which is not set (see WORKSPACE.md)")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as e:
            raise StrategyError(f"TF_CONFIG is not valid JSON: {e}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one_device"
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if not tpu:
        raise StrategyError("--strategy tpu needs --tpu (a TPU name, grpc:// address or 'local')")
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
