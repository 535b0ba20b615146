"""tdkt: consolidation of schools' thi đua – khen thưởng forms for education offices.

The names below are loaded when first used, so that a light command (`tdkt history`) does
not pay for the dataframe and workbook libraries the consolidation needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.config import Config, load_config
    from pipeline.engine import consolidate, consolidation
    from pipeline.findings import DefinitionError, Finding, Severity, findings_frame
    from pipeline.forms.definitions import load_forms
    from pipeline.rounds.base import Round, RoundResult, register

_EXPORTS = {
    "Config": "pipeline.config", "load_config": "pipeline.config",
    "consolidate": "pipeline.engine", "consolidation": "pipeline.engine",
    "DefinitionError": "pipeline.findings", "Finding": "pipeline.findings",
    "Severity": "pipeline.findings", "findings_frame": "pipeline.findings",
    "load_forms": "pipeline.forms.definitions",
    "Round": "pipeline.rounds.base", "RoundResult": "pipeline.rounds.base",
    "register": "pipeline.rounds.base",
}
__all__ = ["Config", "DefinitionError", "Finding", "Round", "RoundResult", "Severity",
           "consolidate", "consolidation", "findings_frame", "load_config", "load_forms",
           "register"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
