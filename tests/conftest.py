"""Shared fixtures: paths to the hand-made corpus and vocab, and a dataset builder."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The suite uses at most 4 of the machine's cores, whatever it has (every process it
# starts inherits the affinity): the pipeline's default runner starts one worker process
# per usable core, which would be 64 processes per job on a 64-core machine.
MAX_TEST_CORES = 4
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > MAX_TEST_CORES:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:MAX_TEST_CORES])
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT))


@pytest.fixture
def fixtures_dir():
    return FIXTURES


@pytest.fixture
def fixture_vocab():
    return str(FIXTURES / "vocab.txt")


def run_module(module, *args, cwd=ROOT, check=True, timeout=600):
    """Runs `python -m module args...` in a fresh process; returns CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"python -m {module} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def kill_when_written(module, args, marker, timeout=240):
    """Starts `python -m module args`, kill -9s it as soon as `marker` exists, and returns
    the command line (to rerun it); fails when the file never appears."""
    command = [sys.executable, "-m", module, *map(str, args)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), f"{marker.name} was not written before the deadline"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return command


def signal_at(commands, when: str, sig=signal.SIGTERM, to: int = 0, again: bool = False,
              tmp=None, envs=None, timeout=300):
    """Starts the `commands` (argument lists, run from ROOT), sends `sig` to process `to`
    when its stderr first has a line starting with `when`, and, with `again`, the same
    signal a second time as soon as it says it is stopping (while it saves). Returns
    [(returncode, stderr text)] of every process once all have ended."""
    import tempfile
    tmp = pathlib.Path(tmp or tempfile.mkdtemp())
    procs, logs = [], []
    for i, command in enumerate(commands):
        env = dict(os.environ, PYTHONPATH=str(ROOT), **((envs or [{}] * len(commands))[i]))
        log = open(tmp / f"stderr-{i}.txt", "w+")
        logs.append(log)
        procs.append(subprocess.Popen([str(c) for c in command], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=log))
    path, deadline, sent = tmp / f"stderr-{to}.txt", time.time() + timeout, 0
    try:
        while any(p.poll() is None for p in procs) and time.time() < deadline:
            lines = path.read_text().splitlines()
            if not sent and any(line.startswith(when) for line in lines):
                procs[to].send_signal(sig)
                sent = 1
            elif sent == 1 and again and any(line.startswith(f"{sig.name}:") for line in lines):
                procs[to].send_signal(sig)
                sent = 2
            time.sleep(0.02)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for log in logs:
            log.close()
    assert sent, f"no line starting with {when!r} before the processes ended:\n" \
                 f"{path.read_text()[-3000:]}"
    return [(p.returncode, (tmp / f"stderr-{i}.txt").read_text()) for i, p in enumerate(procs)]


def error_line(stderr: str) -> str:
    """The last line of a failed command: its one error line (absl's flag errors add a
    fixed hint after theirs, which is skipped)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if lines and lines[-1] == "Pass --helpshort or --helpfull to see help on flags.":
        lines.pop()
    return lines[-1] if lines else ""
