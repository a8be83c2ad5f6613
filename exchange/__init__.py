"""The shared dataset: store, change log, snapshots, notifications. Import submodules; nothing heavy here."""

__all__: list[str] = []
