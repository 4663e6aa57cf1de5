"""Tasks as registered classes: one module per task family.

    classification.py   sentence(-pair) classification and regression (GLUE, any table)
    tagging.py          token classification (NER)
    squad.py            span extraction (SQuAD v1.1 / v2.0)
    multiple_choice.py  a question and N candidate endings, choose one (SWAG / COPA)
    pretraining.py      masked LM + NSP (the engine's pretraining task; "pretrainer" kind)
    encoder.py          a bare encoder ("encoder" kind; served only)

Fine-tuning, export, predict and model-directory loading look a task up here
(`finetune_task`, `serving_task`, `load_model`) and never branch on its name.
A new family is one module with a class that sets `kind` and `task_names`,
and one name in the registry line below.
"""

import dataclasses
from typing import Dict, Optional, Tuple

from model.networks.model_dir import ModelDir, ModelDirError, restore
from model.tasks.base import _BY_KIND, _BY_NAME, FinetuneTask, ServingTask, TaskData, TaskError
from model.tasks.base import register

__all__ = ["FinetuneTask", "ServingTask", "TaskData", "TaskError", "finetune_task", "load_model",
           "register", "serving_task", "setting_flags", "task_defaults", "task_names"]


def task_names() -> Tuple[str, ...]:
    """Every --task value, sorted."""
    return tuple(sorted(_BY_NAME))


def _task_class(name: str) -> type:
    if name not in _BY_NAME:
        raise TaskError(f"--task {name!r}: known tasks are {', '.join(task_names())}")
    return _BY_NAME[name]


def finetune_task(name: str, settings: Optional[dict] = None) -> FinetuneTask:
    """The task of a --task value, with its settings (flags)."""
    return _task_class(name)(name, settings)


def task_defaults(name: str) -> dict:
    """The hyperparameters a --task value fine-tunes with when the flags leave them unset."""
    return dict(_task_class(name).defaults)


def setting_flags() -> Dict[str, dataclasses.Field]:
    """Every family's flag-facing settings (fields made with base.setting()), by name; a
    name two families share is one flag, so it must mean the same (type and default)."""
    out: Dict[str, dataclasses.Field] = {}
    for cls in sorted(set(_BY_NAME.values()), key=lambda c: c.kind):
        for f in dataclasses.fields(cls.settings_type):
            if "help" not in f.metadata:
                continue
            seen = out.setdefault(f.name, f)
            if (seen.type, seen.default) != (f.type, f.default):
                raise TypeError(f"task setting {f.name} differs between families")
    return out


def serving_task(md: ModelDir) -> ServingTask:
    """The task object of a model directory's kind, from its config.json."""
    cls = _BY_KIND.get(md.kind)
    if cls is None:
        raise ModelDirError(f"{md.path}/config.json: unknown kind {md.kind!r} (known: "
                            f"{', '.join(sorted(_BY_KIND))})")
    section = md.config.get("task", {})
    try:
        if issubclass(cls, FinetuneTask):
            return cls(section.get("name", md.kind), section)
        return cls(settings=section)
    except TaskError as e:
        raise ModelDirError(f"{md.path}/config.json: {e}") from None


def load_model(md: ModelDir):
    """(model, encoder, task) of a model directory, weights restored (every variable found)."""
    task = serving_task(md)
    model, backbone = task.load_model(md)
    restore(md, md.kind, model=model)
    return model, backbone, task


# The registry line: importing a task module registers its classes (@register).
from model.tasks import classification, encoder, multiple_choice, pretraining, squad, tagging  # noqa: E402,F401,E501
