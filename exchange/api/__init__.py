"""The consumer API departments read the exchange through; ``exchange.api.app.create_app`` builds it."""

__all__: list[str] = []
