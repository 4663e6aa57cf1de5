"""SIGTERM and SIGINT during a pipeline job: stop it cleanly, never half-written.

A preemptible VM or an evicted pod gets SIGTERM, a person presses Ctrl-C.
Python's default for SIGTERM kills the process on the spot: the output lock
stays behind and the staging directory with it. While `StopSignals.armed`
(the Beam pipeline runs), the first signal raises `Interrupted` in the main
thread, so the job's cleanup runs (the staging directory removed, the lock
released); later signals are noted and ignored, so that the cleanup itself
is not cut short. Outside the armed window (the checks before, the staged
swap into place after) a signal is only recorded: the swap is short and
leaves a complete dataset, so it is allowed to finish.

Example:
    >>> with StopSignals() as signals:  # doctest: +SKIP
    ...     signals.armed = True
    ...     run_the_pipeline()
"""

import signal
import sys
import threading
from typing import Optional

# The exit status of an interrupted job (sysexits' EX_TEMPFAIL: "try again later"), as
# model.pretrain's after a preemption.
EXIT_INTERRUPTED = 75


class Interrupted(BaseException):
    """A stop signal reached the job while its pipeline ran (a BaseException, as
    KeyboardInterrupt: no `except Exception` on the way swallows it)."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


def stop_child_processes(timeout: float = 10.0) -> int:
    """Terminates this process's children (the DirectRunner's SDK worker processes, a
    local Dask cluster), killing those still alive after `timeout` s; returns how many.

    An interrupted Beam run does not stop its worker processes: they would go on
    writing into the staging directory, and the interpreter would wait for the
    threads that wait for them (measured: the process did not exit in 10 minutes).
    """
    import psutil
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    return len(children)


class JobStopped(Exception):
    """The job was stopped by a signal and cleaned up; the message is the line to print."""


class StopSignals:
    """SIGTERM and SIGINT handlers for the duration of a job (main thread only)."""

    def __init__(self):
        self.received: Optional[str] = None
        self.armed = False
        self._previous = {}

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received:
            print(f"{name} again: still cleaning up", file=sys.stderr, flush=True)
            return
        self.received = name
        if self.armed:
            self.armed = False
            raise Interrupted(name)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        self.armed = False
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        return False
