"""report.md of a fine-tuning run: metrics.json in a few readable lines."""


def report(result: dict) -> str:
    """metrics.json in a few readable lines."""
    lines = [f"# Fine-tuning: {result['task']} ({result['kind']})", "",
             f"- initialized from: `{result['init_checkpoint']}`",
             f"- {result['train_examples']} training examples, {result['train_steps']} steps, "
             f"{result['train_seconds']} s; best epoch {result['best_epoch']}"
             + (" (stopped early)" if result["stopped_early"] else ""), "",
             "| epoch | " + " | ".join(k for k, v in result["history"][0]["dev"].items()
                                      if isinstance(v, float)) + " |"]
    keys = [k for k, v in result["history"][0]["dev"].items() if isinstance(v, float)]
    lines.append("|---" * (len(keys) + 1) + "|")
    for h in result["history"]:
        lines.append(f"| {h['epoch']} | " + " | ".join(f"{h['dev'][k]:.4f}" for k in keys) + " |")
    lines.append("")
    for path, scores in result["dev"].items():
        lines.append(f"- dev `{path}`: " + ", ".join(
            f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float)))
    if "test" in result:
        lines.append("- test: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in result["test"].items()
                                            if not isinstance(v, dict)))
    return "\n".join(lines) + "\n"
