"""`perago demo`: perago's main job, end to end, on the embedded Conductor emulator.

Starts the emulator in its own process, registers the README's example task module
(`examples/perago_examples/greet.py`) and a one-task workflow, runs `perago start` on it
in a child process with throwaway workspace and log roots, submits the workflows, shows
progress on stderr, and prints a table (tasks/s, latency, failures) from Conductor's own
timestamps. Layout: `children` (the two child processes), `conductor_admin`,
`submission`, `progress`, `summary`, `errors`, `run`.
"""

from perago.demo.errors import DemoError
from perago.demo.run import DEFAULT_PROCESSES, DEFAULT_TASKS, run_demo

__all__ = ["DEFAULT_PROCESSES", "DEFAULT_TASKS", "DemoError", "run_demo"]
