"""One router per resource (STYLE 12), included in one place: ``exchange.api.app``."""

__all__: list[str] = []
