"""The ``waterhub`` command line: one module per noun, assembled in ``main``."""

__all__: list[str] = []
