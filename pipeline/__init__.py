"""tdkt: consolidation of schools' thi đua – khen thưởng forms for education offices."""

from .config import Config, load_config
from .findings import DefinitionError, Finding, Severity, findings_frame
from .forms import load_forms
from .run import Consolidation, consolidate, consolidation

__all__ = ["Config", "Consolidation", "DefinitionError", "Finding", "Severity", "consolidate",
           "consolidation", "findings_frame", "load_config", "load_forms"]
