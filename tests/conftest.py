"""Shared fixtures: paths to the hand-made corpus and vocab, and a dataset builder."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
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
