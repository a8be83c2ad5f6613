"""Subscriptions and their deliveries: signed webhooks and WeCom group robots, fed from the one outbox."""

__all__: list[str] = []
