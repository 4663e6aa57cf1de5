"""Every console script speaks the one error style (tfrecords/cli.py): a mistake is one
line, `COMMAND: message`, naming the flag, exit status 1; no traceback, no absl banner."""
import os
import subprocess
import sys

from tests.conftest import ROOT

# setup.py's console scripts, by module, with the name their messages start with.
COMMANDS = {
    "tfrecords.inspect": "inspect", "pipeline.sample_data": "sample_data",
    "pipeline.create_pretraining_data": "create_pretraining_data",
    "pipeline.clean_corpus": "clean_corpus",
    "pipeline.build_vocab": "build_vocab", "model.pretrain": "pretrain",
    "model.import_checkpoint": "import_checkpoint", "model.export": "export",
    "model.predict": "predict", "model.finetune": "finetune",
}


# Its unknown flags are checked against Beam's options after absl's (required) ones.
REQUIRED = {"pipeline.create_pretraining_data": ["--input_file=x", "--vocab_file=v",
                                                 "--output_dir=o"],
            "pipeline.clean_corpus": ["--input_file=x", "--output_dir=o"]}


def run_all(extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    procs = {m: subprocess.Popen([sys.executable, "-m", m, *REQUIRED.get(m, []), *extra],
                                 cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for m in COMMANDS}
    return {m: (p.wait(timeout=300), p.communicate()[1]) for m, p in procs.items()}


def test_the_console_scripts_are_setup_pys():
    text = (ROOT / "setup.py").read_text()
    for module in COMMANDS:
        assert f"={module}" in text.replace(".__main__", "")


def test_a_misspelled_flag_is_one_line_naming_it_from_every_command():
    for module, (code, err) in run_all(["--no_such_flag=1"]).items():
        command = COMMANDS[module]
        last = err.strip().splitlines()[-1]
        assert code == 1, (module, err[-1500:])
        assert last.startswith(f"{command}: ") and "no_such_flag" in last, (module, last)
        assert "Traceback" not in err and "FATAL" not in err, (module, err[-1500:])



def test_several_missing_flags_are_still_one_line():
    proc = subprocess.run([sys.executable, "-m", "pipeline.create_pretraining_data"], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=300)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("create_pretraining_data: flag --input_file")
    assert "--vocab_file" in last and "--output_dir" in last
