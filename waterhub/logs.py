"""Logging for the hub's entry points (STYLE rule 18): structlog key-value events on stderr, JSON for machines.

Library modules only ask ``structlog.get_logger(__name__)``; what is shown, and how, is decided here, once, by
whoever starts the process (the CLI; inside Airflow, Airflow's own task logging).
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["QUIET_LOGGERS", "configure_logging"]

QUIET_LOGGERS = ("httpcore", "httpx")
"""Kept at WARNING even with ``--debug``: httpcore logs each failed step with the exception's text, and h11 puts an
illegal header's value (an API key) into that text; httpx logs every URL whole, query included, where some sources
want their token. Our HTTP client logs each page and each retry itself, without credentials."""


def configure_logging(*, debug: bool, as_json: bool) -> None:
    """Everything with ``--debug``, else warnings only, so a command's own output stays readable."""
    level = logging.DEBUG if debug else logging.WARNING
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s", force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
