"""tdkt: consolidation of schools' thi đua – khen thưởng forms for education offices."""

from pipeline.config import Config, load_config
from pipeline.engine import Consolidation, consolidate, consolidation
from pipeline.findings import DefinitionError, Finding, Severity, findings_frame
from pipeline.forms.definitions import load_forms

__all__ = ["Config", "Consolidation", "DefinitionError", "Finding", "Severity", "consolidate",
           "consolidation", "findings_frame", "load_config", "load_forms"]
