"""Reading the operator's `.env` file and merging it under the process environment.

perago reads exactly one file, `<cwd>/.env` (no parent search), and never exports what it
reads: the values feed only perago's own configuration. The process environment wins over
the file, a process variable set to the empty string included.

The syntax is that of python-dotenv (the parser Docker Compose users and most Python tools
share), not perago 0.6's own line splitter. They agree on what real files contain:
`KEY=value`, `export KEY=value`, spaces around `=` and the value, one pair of matching
outer quotes removed, `#` comment lines, blank lines, `=` inside values, `#` inside a
value (`http://h/x#frag`), later duplicates winning, lines without `=` ignored, and no
`${VAR}` interpolation. Deliberate differences from perago 0.6, each for the shared syntax:

* ` # text` after an unquoted or quoted value is a comment (`A=x # c` is `x`; 0.6: `x # c`);
* backslash escapes are processed inside quotes (`"a\\nb"` holds a newline; `'it\\'s'` is
  `it's`); 0.6 kept quoted text verbatim;
* a quoted value may span several lines (0.6 read line by line);
* a statement python-dotenv cannot parse (unbalanced quotes such as `A="x`, `A='it's'`,
  or a key with spaces) is a `RuntimeConfigError` naming the file and line, where 0.6
  kept the text verbatim. The value itself is never echoed: it may be a secret. Lines
  without any `=` (free text included) are skipped, as 0.6 did.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from perago.errors import RuntimeConfigError

DOTENV_FILE_NAME = ".env"


def read_dotenv(path: Path) -> dict[str, str]:
    """Return the `KEY=value` pairs of `path`; a missing file (or a directory) gives `{}`."""
    if not path.is_file():
        return {}
    try:
        with path.open(encoding="utf-8") as stream:
            bindings = list(parse_stream(stream))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuntimeConfigError(f"cannot read {path}: {exc}") from exc
    values: dict[str, str] = {}
    for binding in bindings:
        if binding.error:
            if "=" not in binding.original.string:
                continue  # free text without `=`: perago 0.6 skipped such lines too
            raise RuntimeConfigError(
                f"{path} line {binding.original.line} is not a valid KEY=value line "
                "(check its quotes); the value is not shown because it may be a secret"
            )
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


def merge_environment(
    dotenv_values: Mapping[str, str], process_env: Mapping[str, str]
) -> dict[str, str]:
    """`.env` values overlaid by every process variable (process wins, even when empty)."""
    merged = dict(dotenv_values)
    merged.update(process_env)
    return merged
