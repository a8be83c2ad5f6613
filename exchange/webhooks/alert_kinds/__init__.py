"""One module per alert kind, each registering with ``@alert_renderer``; found by ``exchange.webhooks.alerts``."""

__all__: list[str] = []
