"""Example task modules: the README's task module, which `perago demo` also runs.

Not part of the installed `perago` package: a task module is user code, so these live
beside it the way a user's own `app/workers/` package would. `perago demo` puts this
directory on the workers' PYTHONPATH; to run one yourself, `export PYTHONPATH=examples`
from the repository root.
"""
