"""What the pretraining-data job prints, and where everything else goes.

By default the job prints only its own lines (settings once, progress at
most every 10 s, the summary, or one error line). Everything else written
to the process's stderr while the pipeline runs (Beam's and its workers'
logging, TensorFlow's and absl's, Dask's) goes to a log file instead: file
descriptor 2 itself becomes a pipe drained into the log, so worker processes
the runner starts inherit it too. `--verbose` leaves stderr alone.

Progress crosses process (and machine) boundaries through small files:
each DoFn instance in a worker process adds its counts to
`<staging>/_progress/<host>-<pid>-<id>.json` (rewritten at most every 2 s and
at the end of each bundle), and the driver sums them. Beam's metrics would be the natural channel, but the
DaskRunner has none, and the DirectRunner reports them only at the end.
"""

import json
import os
import posixpath
import socket
import sys
import threading
import time
from typing import Dict, Optional

from apache_beam.io.filesystems import FileSystems

PROGRESS_DIR = "_progress"
LOG_FILE = "pipeline.log"
COUNTS = ("bytes", "documents", "instances")


class ProgressFile:
    """A worker process's running totals (bytes read, documents, instances) for one DoFn
    of one job (`owner`: an id the DoFn draws when the pipeline is built, so a process
    that runs two jobs, or Dask's one setup per partition, keeps one set of counts)."""

    _open: Dict[tuple, "ProgressFile"] = {}

    @classmethod
    def of(cls, staging: str, owner: str) -> "ProgressFile":
        key = (staging, owner)
        if key not in cls._open:
            cls._open[key] = cls(staging, owner)
        return cls._open[key]

    def __init__(self, staging: str, owner: str = "", every: float = 2.0):
        self.path = posixpath.join(staging, PROGRESS_DIR,
                                   f"{socket.gethostname()}-{os.getpid()}-{owner}.json")
        self.every, self.last = every, 0.0
        self.counts = dict.fromkeys(COUNTS, 0)

    def add(self, **counts: int) -> None:
        for key, n in counts.items():
            self.counts[key] += n
        if time.time() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        self.last = time.time()
        try:
            with FileSystems.create(self.path) as f:
                f.write(json.dumps(self.counts).encode())
        except Exception:  # progress is best effort; the job's own writes will report
            pass


def read_progress(staging: str) -> Dict[str, int]:
    """The sum of every worker's progress file (files being rewritten are skipped)."""
    total = dict.fromkeys(COUNTS, 0)
    try:
        matches = FileSystems.match([posixpath.join(staging, PROGRESS_DIR, "*.json")])
        paths = [m.path for m in matches[0].metadata_list]
    except Exception:
        return total
    for path in paths:
        try:
            with FileSystems.open(path) as f:
                counts = json.loads(f.read().decode())
        except Exception:
            continue
        for key in total:
            total[key] += int(counts.get(key, 0))
    return total


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class JobConsole:
    """The job's console: quiet (stderr to a log file) unless verbose.

    Use as a context manager around the pipeline run; `say()` prints one of
    the job's own lines on the real console either way. File descriptor 2
    becomes a pipe that a thread drains into the log file, so that the
    processes writing to it (this one, the runner's workers) never fail or
    block on the log: on a full disk the log loses lines (counted), the job
    does not hang.
    """

    def __init__(self, log_path: Optional[str]):
        self.log_path = log_path  # None: verbose, stderr is left alone
        self.out = sys.stderr
        self.lost_bytes = 0
        self._saved_fd = None
        self._log = None
        self._lock = threading.Lock()
        self._drain = None

    def __enter__(self):
        if self.log_path is None:
            return self
        sys.stderr.flush()
        self._log = open(self.log_path, "ab", buffering=0)
        read_end, write_end = os.pipe()
        self._saved_fd = os.dup(2)
        self.out = os.fdopen(os.dup(self._saved_fd), "w", buffering=1)
        os.dup2(write_end, 2)
        os.close(write_end)
        self._drain = threading.Thread(target=self._copy, args=(read_end,), daemon=True)
        self._drain.start()
        return self

    def _copy(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while True:
                data = pipe.read(1 << 16)
                if not data:
                    return
                self._write(data)

    def _write(self, data: bytes) -> None:
        with self._lock:
            try:
                self._log.write(data)
            except OSError:  # e.g. the disk is full: the log loses it, nothing waits
                self.lost_bytes += len(data)

    def __exit__(self, *exc):
        if self._saved_fd is not None:
            sys.stderr.flush()
            os.dup2(self._saved_fd, 2)  # closes this process's write end of the pipe
            os.close(self._saved_fd)
            self._saved_fd = None
            # Worker processes that outlive the run may keep the pipe open: do not wait.
            self._drain.join(timeout=5)
            self.out.flush()
            self.out.close()
            self.out = sys.stderr
            with self._lock:
                try:
                    self._log.close()
                except OSError:
                    pass
            if self.lost_bytes:
                print(f"warning: {self.lost_bytes:,} bytes of logging could not be written to "
                      f"{self.log_path} (is its disk full?)", file=sys.stderr, flush=True)
        return False

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def log(self, text: str) -> None:
        """Writes to the log file only (the console when verbose)."""
        if self._log is not None:
            self._write((text.rstrip("\n") + "\n").encode("utf-8", "replace"))
        else:
            print(text, file=sys.stderr)


class ProgressPrinter(threading.Thread):
    """Prints the summed progress every `every` seconds while the pipeline runs."""

    def __init__(self, console: JobConsole, staging: str, total_bytes: int,
                 every: float = 10.0, label: str = "progress", instances: bool = True):
        super().__init__(daemon=True)
        self.console, self.staging, self.total = console, staging, max(total_bytes, 1)
        self.every, self.label, self.instances = every, label, instances
        self.start_time = time.time()
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.wait(self.every):
            self.console.say(self.line(read_progress(self.staging)))

    def line(self, counts: Dict[str, int], now: Optional[float] = None) -> str:
        """The progress line at time `now` (default: the clock's now)."""
        elapsed = (time.time() if now is None else now) - self.start_time
        done = min(counts["bytes"], self.total)
        fraction = done / self.total
        eta = (f", ETA {_duration(elapsed / fraction - elapsed)}"
               if 0.02 <= fraction < 1 else "")
        instances = (f"{counts['instances']:,} instances "
                     f"({counts['instances'] / elapsed:,.0f}/s), " if self.instances else "")
        return (f"{self.label}: {_megabytes(done)} of {_megabytes(self.total)} read "
                f"({100 * fraction:.0f}%), {counts['documents']:,} documents, "
                f"{instances}{_duration(elapsed)}{eta}")

    def stop(self):
        self._stop_event.set()
        if self.ident is not None:  # started
            self.join(timeout=5)
