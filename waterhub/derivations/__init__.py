"""The functions of derived datasets, one module each, named by ``waterhub/derived.toml`` (``module:function``)."""

__all__: list[str] = []
