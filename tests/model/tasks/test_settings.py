"""Typed task settings: each family owns its settings and their defaults (written once, in
its Settings dataclass); the fine-tuning flags and FinetuneConfig take them from there."""
import dataclasses

from model.tasks import finetune_task, setting_flags
from model.tasks.squad import SquadSettings
from model.training.finetuning_run import TASK_SETTINGS, FinetuneConfig


def test_every_family_setting_is_a_config_field_left_unset_by_default():
    fields = {f.name: f for f in dataclasses.fields(FinetuneConfig)}
    assert set(TASK_SETTINGS) == set(setting_flags()) >= {"text_column", "doc_stride"}
    for name in TASK_SETTINGS:
        assert fields[name].default is None, name  # None: the family's default


def test_unset_settings_take_the_familys_defaults_and_config_json_records_them():
    squad = finetune_task("squad", {"doc_stride": 64, "max_query_length": None,
                                    "text_column": "q", "max_seq_length": 256})
    assert (squad.doc_stride, squad.max_query_length, squad.seq_length) == (
        64, SquadSettings.max_query_length, 256)
    recorded = squad.config()
    assert recorded["doc_stride"] == 64 and recorded["n_best_size"] == 20
    assert "text_column" not in recorded  # another family's setting: not squad's
    table = finetune_task("classification", {"text_column": "review", "doc_stride": 64})
    assert (table.s.text_column, table.s.label_column) == ("review", "label")
    assert "doc_stride" not in table.config()
    # A config.json section read back by export gives the same typed settings.
    again = finetune_task("squad", recorded)
    assert again.s == squad.s
