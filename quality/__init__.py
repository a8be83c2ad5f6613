"""Quality: the Great Expectations suite derived from a contract, domain rules, and the runner that splits a batch
into valid rows and quarantined ones with reasons.

Only light names are re-exported; Great Expectations is imported when a batch is first validated.
"""

from quality.errors import MissingReferenceKeysError, QualityError, SuiteEvaluationError
from quality.runner import ValidationOutcome, validate_frame

__all__ = ["MissingReferenceKeysError", "QualityError", "SuiteEvaluationError", "ValidationOutcome", "validate_frame"]
