"""Domain rules, one module per source domain; ``quality.domain`` imports every module here on first use."""

__all__: list[str] = []
