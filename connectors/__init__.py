"""Connectors: one shared HTTP layer (``connectors.http``) and one package per source system.

Only the error tree is re-exported here, so ``import connectors`` stays cheap; sources are imported by name
through ``waterhub.sources``.
"""

from connectors.errors import ConnectorError, SourceConfigError, SourceDataError, SourceUnavailableError

__all__ = ["ConnectorError", "SourceConfigError", "SourceDataError", "SourceUnavailableError"]
