"""The ``waterhub`` command line: one module per noun, assembled in ``main``."""
