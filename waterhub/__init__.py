"""waterhub: the hub's entry points (settings, pipeline, CLI) sitting on top of the domain packages."""

__all__ = ["__version__"]

__version__ = "0.1.0"
