"""The walls of the architecture (shared/DESIGN.md), read from the imports of every module.

tfrecords/ imports neither stage; pipeline/ and model/ never import each other; inside
model/, the rooms stand on each other in one order: networks, then tasks, then training
and export side by side (neither imports the other), then the commands at the top
(model/*.py), which no room imports except the ground-floor helper `model.storage`.
"""
import ast
import pathlib

from tests.conftest import ROOT

RANK = {"networks": 0, "tasks": 1, "training": 2, "export": 2}


def imports(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "model":
                yield from (f"model.{a.name}" for a in node.names)
            else:
                yield node.module


def test_stages_and_rooms_import_only_downwards():
    wrong = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] not in ("tfrecords", "pipeline", "model"):
            continue
        for name in imports(path):
            top = name.split(".")
            if parts[0] == "tfrecords" and top[0] in ("pipeline", "model"):
                wrong.append((path, name))
            elif {parts[0], top[0]} == {"pipeline", "model"}:
                wrong.append((path, name))
            elif (parts[0] == "model" and top[0] == "model" and len(top) > 1 and len(parts) > 2
                  and parts[-1] != "__main__.py"):  # a room's command stands on top
                room, target = parts[1], top[1]
                if target in RANK:
                    if RANK[target] > RANK[room] or (RANK[target] == RANK[room] and
                                                       target != room):
                        wrong.append((path, name))
                elif target != "storage":  # a command (model/*.py) imported by a room
                    wrong.append((path, name))
    assert not wrong, "\n".join(f"{p.relative_to(ROOT)} imports {n}" for p, n in wrong)


def test_model_holds_only_rooms_and_commands():
    """Each top-level module of model/ is a command (python -m model.X) or one of the two
    helpers every command shares; everything else lives in a room."""
    helpers = {"__init__.py", "cli.py", "storage.py"}
    modules = {p.name for p in (ROOT / "model").glob("*.py")} - helpers
    for name in modules:
        assert "__name__ == \"__main__\"" in (ROOT / "model" / name).read_text(), \
            f"model/{name} is not a command: move it into a room"
    assert {p.name for p in (ROOT / "model").iterdir() if p.is_dir()
            and (p / "__init__.py").exists()} == {"networks", "tasks", "training", "export"}
