"""Training: one engine under tf.distribute (strategies, mixed precision, gradient
accumulation, checkpoints, preemption), the optimizer and schedule, warm start from
someone else's checkpoint, the held-out MLM probe, and the two runs built on the engine:
pretraining (`pretraining_run`) and fine-tuning (`finetuning_run`). Imports networks and
tasks, never export."""
