"""Make the authoring test task package (`authoring_tasks`) importable, as an installed package would be."""

import sys
from pathlib import Path

MODULES_ROOT = Path(__file__).parent / "modules"
GOLDEN_ROOT = Path(__file__).parent / "golden"

if str(MODULES_ROOT) not in sys.path:
    sys.path.insert(0, str(MODULES_ROOT))
