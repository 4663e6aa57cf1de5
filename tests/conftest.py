"""Shared fixtures: paths to the hand-made corpus and vocab, and a dataset builder."""

import os
import pathlib
import subprocess
import sys

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
