"""Who may read what: departments, their tokens and grants, row filters, and the audit of every read."""

__all__: list[str] = []
