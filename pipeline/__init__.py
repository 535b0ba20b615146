"""tdkt: consolidation of schools' thi đua – khen thưởng forms for education offices."""

from pipeline.config import Config, load_config
from pipeline.engine import consolidate, consolidation
from pipeline.findings import DefinitionError, Finding, Severity, findings_frame
from pipeline.forms.definitions import load_forms
from pipeline.rounds.base import Round, RoundResult, register

__all__ = ["Config", "DefinitionError", "Finding", "Round", "RoundResult", "Severity",
           "consolidate", "consolidation", "findings_frame", "load_config", "load_forms",
           "register"]
