"""Datasets served over the open Delta Sharing protocol: Delta tables kept from the change log, signed file URLs.

Import submodules; nothing heavy here (deltalake and pyarrow load inside the functions that need them).
"""

__all__: list[str] = []
