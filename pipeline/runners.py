"""Beam runner options for the jobs: the default runner (the DirectRunner's batch engine on
every usable core), runner short names Beam does not resolve (DaskRunner), Dask's
partitioning, and refusing arguments that neither the command nor Beam knows.
"""

import os
from typing import List, Sequence

from pipeline.inputs import UsageError

DEFAULT_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


def _beam_parser():
    """An argparse parser holding every pipeline option of every runner Beam ships.
    Runner option classes that live in their own modules are imported first so that
    their flags count as known."""
    import argparse
    from apache_beam.options import pipeline_options
    try:
        import apache_beam.runners.dask.dask_runner  # noqa: F401  (its DaskOptions)
    except ImportError:  # dask is not installed
        pass
    parser = pipeline_options._BeamArgumentParser(allow_abbrev=False)
    seen = {}
    for cls in pipeline_options.PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        try:
            cls._add_argparse_args(parser)
        except argparse.ArgumentError:  # an option two classes define
            pass
    return parser


def beam_option_names() -> set:
    """Every Beam pipeline option's name, without its dashes."""
    return {o.lstrip("-") for a in _beam_parser()._actions for o in a.option_strings}


def unknown_beam_args(beam_args: Sequence[str], with_values: bool = False) -> List[str]:
    """The arguments that no Beam pipeline option (of any runner Beam ships) accepts
    (with_values: also the words after them, and the words that follow no flag).

    Beam itself only logs "Discarding unparseable args" among its other lines
    and runs with the defaults; a misspelled flag of ours (--dupe_factr) would
    silently become a 10x larger dataset.
    """
    _, unknown = _beam_parser().parse_known_args(list(beam_args))
    return unknown if with_values else [a for a in unknown if a.startswith("-")]


def check_beam_args(beam_args: Sequence[str], own_flags: Sequence[str] = ()) -> None:
    """UsageError naming the first argument that is neither ours nor Beam's, with the
    closest flag name when one is close (a typo)."""
    import difflib
    unknown = unknown_beam_args(beam_args)
    if not unknown:
        stray = unknown_beam_args(beam_args, with_values=True)  # no flag is unknown: words
        if stray:
            # Beam would drop them with a warning in pipeline.log: an unquoted glob after
            # --input_file silently loses every file but the first.
            more = f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""
            raise UsageError(
                f"unexpected argument {stray[0]!r}{more}: a file pattern the shell expanded? "
                "Quote it (--input_file 'data/*.txt') or join files with commas")
        return
    name = unknown[0].lstrip("-").split("=", 1)[0]
    close = difflib.get_close_matches(name, list(own_flags), n=1, cutoff=0.75)
    hint = f" (did you mean --{close[0]}?)" if close else ""
    raise UsageError(f"unknown flag --{name}{hint}: it is neither this command's flag nor a "
                     "Beam pipeline option")


def _expand_runner_names(beam_args: Sequence[str]) -> List[str]:
    """`--runner DaskRunner` (or `Dask`) -> Beam's DaskRunner by its module path: Beam
    resolves short names only for the runners it lists, and DaskRunner is not one."""
    out, args = [], list(beam_args)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--runner" and i + 1 < len(args):
            arg, i = f"--runner={args[i + 1]}", i + 1
        if arg.startswith("--runner=") and arg.split("=", 1)[1].lower() in ("dask",
                                                                            "daskrunner"):
            arg = f"--runner={DASK_RUNNER}"
        out.append(arg)
        i += 1
    return out


def dask_partitions(beam_args: List[str], work_items: int) -> List[str]:
    """The arguments with Beam's DaskRunner named in full, and on Dask one bag partition
    per work item unless told otherwise: Beam's DaskRunner puts 128 elements in a
    partition, so a job of fewer work items than that would run as one task on one core
    (its Reshuffle is a no-op). run() calls it, so library callers may say DaskRunner too."""
    beam_args = _expand_runner_names(beam_args)
    runner = next((a.split("=", 1)[1] for a in beam_args if a.startswith("--runner=")), "")
    if runner != DASK_RUNNER or any(a.startswith(("--dask_npartitions", "--dask_partition_size"))
                                    for a in beam_args):
        return beam_args
    return beam_args + [f"--dask_npartitions={max(1, work_items)}"]


def default_beam_args(beam_args: List[str]) -> List[str]:
    """Without --runner: the DirectRunner's batch engine, multi-processing on every core
    the process may use.

    That engine (FnApiRunner) is named directly: Beam 2.77's DirectRunner
    first tries to download its Prism runner from GitHub, which fails (with
    a confusing log) on machines without internet, then falls back to it.
    """
    beam_args = _expand_runner_names(beam_args)
    if any(a.startswith("--runner") for a in beam_args):
        return beam_args
    out = list(beam_args) + [f"--runner={DEFAULT_RUNNER}"]
    if not any(a.startswith("--direct_running_mode") for a in beam_args):
        out.append("--direct_running_mode=multi_processing")
    if not any(a.startswith("--direct_num_workers") for a in beam_args):
        out.append(f"--direct_num_workers={usable_cpus()}")
    return out


def usable_cpus() -> int:
    """The cores this process may run on: its CPU affinity (taskset, a cgroup cpuset, a
    Kubernetes CPU manager), not os.cpu_count(), which counts the whole machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows: no affinity call
        return os.cpu_count() or 1


def close_dask_client(result) -> None:
    """Beam's DaskRunner leaves its client open, and the local cluster it started runs
    until the interpreter exits (its shutdown logging then lands after the summary):
    closed here, while the job's log still takes that logging."""
    client = getattr(result, "client", None)
    if client is None:
        return
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()

