"""The ingest stage as every method runs it: cached in the store, logged, recorded in lineage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("pmx.run")


def ingest_stage(context: Any, manifest: Path, store: Any, lineage: dict[str, Any]) -> Any:
    """Validate and write the cohort (a cache hit when the same content is ingested already);
    returns :class:`pmx.cohorts.ingestion.IngestResult`."""
    from pmx.cohorts import ingest

    ingested = ingest(manifest, store, force=context.force)
    lineage.setdefault("stages", {})["ingest"] = {"key": ingested.key, "cached": ingested.cached,
                                                  "cohort": ingested.cohort.name}
    log.info("stage ingest (%s): %s", ingested.cohort.name,
             "cache hit" if ingested.cached else "computed")
    return ingested
