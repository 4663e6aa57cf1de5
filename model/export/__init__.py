"""Export: the SavedModels TF Serving and TF Hub users load (`writer`, `savedmodel`,
`hub`), and their verification through those clients (`checks`, `verify`). The command
is `python -m model.export` (`__main__.py`). Imports networks and tasks, never training."""
