"""The one door to Great Expectations: imported on first use (it costs seconds), quietly, in one ephemeral context.

GX 1.24 imports the ``sre_constants``/``sre_parse`` modules that Python 3.11 deprecates; the warning is harmless
and not ours to fix, so it is silenced around the import and nowhere else.
"""

from __future__ import annotations

import gc
import warnings
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition

__all__ = ["batch_definition", "load_great_expectations"]


@cache
def load_great_expectations() -> None:
    """Import GX with its import-time deprecation warnings silenced; later imports of its modules are free.

    The import leaves some 200,000 objects that live as long as the process. Validation allocates enough to set off
    full garbage collections, and each would scan them all (0.2 s here, a sixth of a million-row batch), so they
    are moved out of the collector's sight once (``gc.freeze``) after a collection has freed the import's garbage.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="module 'sre_.*' is deprecated", category=DeprecationWarning)
        import great_expectations  # noqa: F401 - imported for its side effect: every submodule is now loaded
    gc.collect()
    gc.freeze()


@cache
def batch_definition() -> BatchDefinition[Any]:
    """A whole-DataFrame batch definition in one ephemeral context per process: nothing on disk, no analytics, no
    progress bars."""
    load_great_expectations()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    source = context.data_sources.add_pandas("waterhub")
    return source.add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole")
