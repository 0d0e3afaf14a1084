"""Console logging for ``pmx run`` when nothing configured it (the CLI or a notebook may have)."""

from __future__ import annotations

import logging


def ensure_logging(level: int = logging.INFO) -> None:
    """Show ``pmx.*`` INFO lines (stage cache hits, fold results) unless logging is set up already."""
    if not logging.getLogger().handlers and not logging.getLogger("pmx").handlers:
        logging.basicConfig(level=level, format="%(name)s: %(message)s")
