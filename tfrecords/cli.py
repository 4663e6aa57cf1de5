"""The one error style of every console script of the project (pipeline/, model/, tfrecords/):
a mistake a user can fix is one line on stderr, `COMMAND: message`, naming the flag or
file, and exit status 1, the status absl gives its own flag errors. No traceback.
(A preempted or interrupted job has its own statuses: pipeline/interrupts.py and
model/training/engine.py.)

    app.run(main, flags_parser=flags_parser("build_vocab"))  # absl's flag errors
    no_arguments(argv, "build_vocab")                        # in main: leftover words
    fail("build_vocab", "--input_file: no files match 'x*.txt'")
"""

import sys
from typing import Callable, List, NoReturn, Sequence

from absl import flags

EXIT_USAGE = 1


def fail(command: str, message) -> NoReturn:
    """Prints `command: message` on stderr, on one line, and exits with EXIT_USAGE
    (several errors at once, as absl gives missing required flags, are joined by "; ")."""
    text = "; ".join(line.strip() for line in str(message).splitlines() if line.strip())
    print(f"{command}: {text}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USAGE)


def no_arguments(argv: Sequence[str], command: str, usage: str = "") -> None:
    """Arguments absl left over (not flags) are an error: a word meant as a flag's value,
    or a glob the shell expanded."""
    if len(argv) > 1:
        fail(command, f"unexpected arguments {list(argv[1:])}" + (f"; usage: {usage}"
                                                                  if usage else ""))


def flags_parser(command: str, known_only: bool = False) -> Callable[[List[str]], List[str]]:
    """app.run(main, flags_parser=flags_parser("pretrain")): absl's flag errors (a
    misspelled flag, a value out of bounds, a required flag missing) in the same one-line
    style, instead of absl's "FATAL Flags parsing error" and its help hint.
    known_only: leave unknown flags to the caller (Beam's pipeline options)."""

    def parse(argv: List[str]) -> List[str]:
        try:
            return flags.FLAGS(argv, known_only=known_only)
        except flags.Error as e:
            fail(command, e)

    return parse
