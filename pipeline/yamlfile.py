"""Definition files (schemas/*.yaml, an office's rule layer) read with PyYAML's safe loader,
its C version (libyaml, in the PyYAML wheels) where installed: about ten times faster, and a
run reads some forty of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """The YAML document in `path` (UTF-8), safe tags only; raises OSError,
    UnicodeDecodeError or yaml.YAMLError."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
