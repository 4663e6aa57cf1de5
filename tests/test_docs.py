"""Every command the docs show still runs: each `python -m MODULE` (or console script) in
README.md, WORKSPACE.md and docs/*.md names a module that exists, and every --flag after
it is one that module defines (or, for the Beam jobs, a Beam pipeline option). Flags are
read from each command's own --helpfull, so a renamed or removed flag fails here."""
import functools
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", ROOT / "WORKSPACE.md", *sorted((ROOT / "docs").glob("*.md"))]
SCRIPTS = {"bert-inspect": "tfrecords.inspect", "bert-sample-data": "pipeline.sample_data",
           "bert-build-vocab": "pipeline.build_vocab",
           "bert-create-pretraining-data": "pipeline.create_pretraining_data",
           "bert-clean-corpus": "pipeline.clean_corpus",
           "bert-pretrain": "model.pretrain", "bert-import-checkpoint": "model.import_checkpoint",
           "bert-export": "model.export", "bert-predict": "model.predict",
           "bert-finetune": "model.finetune"}
BEAM_JOBS = {"pipeline.create_pretraining_data", "pipeline.clean_corpus"}  # unknown flags go to Beam's options
COMMAND = re.compile(r"(?:python3? -m ([\w.]+)|\b(bert-[a-z-]+)\b)")


def commands(text: str):
    """(module, [flags]) of every command in code blocks and inline code."""
    spans = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    spans += [s for s in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))]
    for span in spans:
        joined = re.sub(r"\\\n\s*", " ", span)
        for line in joined.splitlines():
            found = list(COMMAND.finditer(line))
            for k, m in enumerate(found):
                module = m.group(1) or SCRIPTS.get(m.group(2))
                if module is None or module.split(".")[0] not in ("tfrecords", "pipeline",
                                                                  "model"):
                    continue  # pip, venv, pytest...
                end = found[k + 1].start() if k + 1 < len(found) else len(line)
                rest = re.split(r"[|;&#]", line[m.end():end])[0]
                yield module, re.findall(r"(?<![\w-])--([A-Za-z_]\w*)", rest)


@functools.lru_cache(maxsize=None)
def defined_flags(module: str) -> frozenset:
    proc = subprocess.run([sys.executable, "-m", module, "--helpfull"], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3"),
                          capture_output=True, text=True, timeout=300)
    names = set(re.findall(r"^\s+--(?:\[no\])?(\w+)", proc.stdout + proc.stderr, re.M))
    assert names, f"{module} --helpfull listed no flags:\n{proc.stderr[-1500:]}"
    return frozenset(names | {f"no{n}" for n in names})


def test_every_documented_command_and_flag_exists():
    import importlib.util
    uses = {}
    for doc in DOCS:
        for module, flags in commands(doc.read_text()):
            assert importlib.util.find_spec(module) is not None, f"{doc.name}: no {module}"
            uses.setdefault(module, []).append((doc.name, flags))
    assert {"model.pretrain", "model.finetune", "pipeline.create_pretraining_data"} <= set(uses)
    with ThreadPoolExecutor(4) as pool:
        known = dict(zip(uses, pool.map(defined_flags, uses)))
    from pipeline.runners import beam_option_names
    beam = beam_option_names()
    wrong = []
    for module, found in uses.items():
        for doc, flags in found:
            for flag in flags:
                if flag in known[module] or flag in ("flagfile", "helpfull", "helpshort"):
                    continue
                if module in BEAM_JOBS and flag in beam:
                    continue
                wrong.append(f"{doc}: python -m {module} --{flag}")
    assert not wrong, "documented flags that do not exist:\n" + "\n".join(sorted(set(wrong)))


FLAGFILES = {"pretrain": "model.pretrain", "data": "pipeline.create_pretraining_data",
             "vocab": "pipeline.build_vocab"}


def test_the_demo_script_and_the_recipe_flagfiles_use_flags_that_exist():
    """What `make demo` runs (scripts/demo.sh, its fine-tuning flags included) and every
    recipe flagfile (configs/recipes/NAME.{data,vocab,pretrain}.flags)."""
    uses = {}
    script = re.sub(r"\\\n\s*", " ", (ROOT / "scripts" / "demo.sh").read_text())
    shared = re.search(r"FT=\((.*?)\)", script, re.S).group(1)  # the fine-tuning flags
    for m in re.finditer(r'"\$PY" -m ([\w.]+)([^\n]*)', script):
        flags = re.findall(r"(?<![\w-])--([A-Za-z_]\w*)", m.group(2))
        if "${FT[@]}" in m.group(2):
            flags += re.findall(r"(?<![\w-])--([A-Za-z_]\w*)", shared)
        uses.setdefault(m.group(1), set()).update(flags)
    for path in sorted((ROOT / "configs" / "recipes").glob("*.flags")):
        module = FLAGFILES[path.name.split(".")[-2]]
        uses.setdefault(module, set()).update(
            re.findall(r"^--([A-Za-z_]\w*)", path.read_text(), re.M))
    assert {"model.finetune", "model.pretrain", "pipeline.build_vocab"} <= set(uses)
    with ThreadPoolExecutor(4) as pool:
        known = dict(zip(uses, pool.map(defined_flags, uses)))
    wrong = sorted(f"{m} --{f}" for m, flags in uses.items() for f in flags
                   if f not in known[m] and f != "flagfile")
    assert not wrong, wrong


def _anchors(path) -> set:
    """GitHub's anchors of a markdown file's headings (outside code blocks)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {"#" + re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", text, re.M)}


def test_every_link_between_the_docs_resolves():
    broken = []
    for doc in DOCS:
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(#[^)\s]*)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (doc.parent / target).resolve() if target else doc
            if "shared" in path.parts and not path.exists():
                continue  # ../shared sits beside the repository, not in it
            if not path.exists():
                broken.append(f"{doc.name}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{doc.name}: {target}{anchor}")
    assert not broken, "\n".join(broken)
