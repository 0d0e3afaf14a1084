"""Per-rank fragments: each rank writes every finished slide's vectors here; one commit
publishes them to the store.

LanceDB (without the separate ``pylance`` package) has no public "write fragments now, commit
later" call, so the fragments are Arrow IPC files, one per slide, under
``<store>/_staging/embed/<stage key>/`` (any filesystem or object store pyarrow can write,
shared by all ranks). A file appears atomically (written to a temporary name, then moved), so a
staged slide is complete by construction: after a kill, staged slides are not recomputed, and
the next run's commit publishes them. The commit (rank 0, after every rank has finished) writes
the staged rows into the encoder's embeddings table with keyed replaces, in as few commits as
the ``commit_rows`` memory bound allows, then marks the slides done and deletes the files.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
import uuid
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.ipc as ipc

log = logging.getLogger("pmx.embedding")

SUFFIX = ".arrow"


def default_staging_uri(store: Any) -> str:
    """``<store>/_staging`` (a local folder for a local store, the same bucket otherwise)."""
    if store.local_dir is not None:
        return str(store.local_dir / "_staging")
    return store.uri.rstrip("/") + "/_staging"


def _filesystem(uri: str, storage_options: dict[str, str] | None = None) -> tuple[pafs.FileSystem, str]:
    if uri.startswith("s3://"):
        options = storage_options or _s3_env_options()
        if options:
            return _s3(options), uri[len("s3://"):].rstrip("/")
    if "://" in uri and not uri.startswith("file://"):
        return pafs.FileSystem.from_uri(uri)
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


def _s3_env_options() -> dict[str, str]:
    """Lance's S3 environment variables (what a CLI user sets, e.g. for MinIO) as storage
    options, when they name an endpoint: pyarrow alone would not read ``AWS_ENDPOINT`` or
    ``AWS_ALLOW_HTTP`` and would go to AWS itself."""
    env = {key.lower(): value for key, value in os.environ.items() if key.startswith("AWS_")}
    if not (env.get("aws_endpoint") or env.get("aws_endpoint_url")):
        return {}
    return env


def _s3(options: dict[str, str]) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem for the store's Lance storage options (endpoint, keys, region),
    so that staging reaches the same bucket as the store, e.g. a MinIO or other S3-compatible
    endpoint; unset keys fall back to pyarrow's defaults (environment, instance profile)."""
    def pick(*names: str) -> str | None:
        return next((options[n] for n in names if options.get(n)), None)

    endpoint = pick("endpoint", "aws_endpoint", "endpoint_url", "aws_endpoint_url")
    scheme = None
    if endpoint and "://" in endpoint:
        scheme, endpoint = endpoint.split("://", 1)
    elif endpoint and str(pick("allow_http", "aws_allow_http")).lower() == "true":
        scheme = "http"
    kwargs = {"access_key": pick("aws_access_key_id", "access_key_id"),
              "secret_key": pick("aws_secret_access_key", "secret_access_key"),
              "session_token": pick("aws_session_token", "session_token"),
              "region": pick("region", "aws_region", "aws_default_region"),
              "endpoint_override": endpoint,
              "scheme": scheme}
    return pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None})


def _file_name(slide_id: str) -> str:
    return urllib.parse.quote(slide_id, safe="") + SUFFIX


class Staging:
    """The staged fragments of one embed stage (one stage key)."""

    def __init__(self, root_uri: str, stage_key: str, storage_options: dict[str, str] | None = None):
        self.fs, root = _filesystem(root_uri, storage_options)
        self.dir = f"{root}/embed/{stage_key}"
        self.uri = f"{root_uri.rstrip('/')}/embed/{stage_key}"

    def _path(self, slide_id: str) -> str:
        return f"{self.dir}/{_file_name(slide_id)}"

    def write(self, slide_id: str, rows: pa.Table) -> None:
        """Stage one slide's rows; the file is complete or absent, never half-written."""
        self.fs.create_dir(self.dir, recursive=True)
        final = self._path(slide_id)
        partial = f"{self.dir}/.{uuid.uuid4().hex}.tmp"
        with self.fs.open_output_stream(partial) as sink:
            with ipc.new_file(sink, rows.schema) as writer:
                writer.write_table(rows)
        self.fs.move(partial, final)

    def read(self, slide_id: str) -> pa.Table | None:
        """A staged slide's rows, or None when it is not staged (or unreadable: then dropped)."""
        path = self._path(slide_id)
        try:
            if isinstance(self.fs, pafs.LocalFileSystem):  # mapped, not copied: Lance reads
                return ipc.open_file(pa.memory_map(path)).read_all()  # the page cache directly
            with self.fs.open_input_file(path) as source:
                return ipc.open_file(source).read_all()
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid) as exc:
            log.warning("staged fragment %s is unreadable (%s); the slide is recomputed", path, exc)
            self.remove(slide_id)
            return None

    def staged(self) -> set[str]:
        """Slide ids with a staged fragment."""
        selector = pafs.FileSelector(self.dir, allow_not_found=True)
        names = set()
        for info in self.fs.get_file_info(selector):
            base = info.base_name
            if info.type == pafs.FileType.File and base.endswith(SUFFIX) and not base.startswith("."):
                names.add(urllib.parse.unquote(base[: -len(SUFFIX)]))
        return names

    def remove(self, slide_id: str) -> None:
        try:
            self.fs.delete_file(self._path(slide_id))
        except FileNotFoundError:
            pass

    def clear(self) -> None:
        """Drop every staged fragment of this stage (``--force``, or after the commit)."""
        try:
            self.fs.delete_dir(self.dir)
        except FileNotFoundError:
            pass

    def tidy(self) -> None:
        """Remove the stage folder once it holds no fragments (temporary files of killed
        writers included)."""
        selector = pafs.FileSelector(self.dir, allow_not_found=True)
        if not any(info.base_name.endswith(SUFFIX) and not info.base_name.startswith(".")
                   for info in self.fs.get_file_info(selector)):
            self.clear()


def chunks(staging: Staging, slide_ids: list[str], max_rows: int) -> Iterator[tuple[list[str], pa.Table]]:
    """Staged slides grouped so that each group holds at most ``max_rows`` rows (one slide may
    exceed it alone); yields (slide ids, rows)."""
    group: list[str] = []
    tables: list[pa.Table] = []
    rows = 0
    for slide_id in slide_ids:
        table = staging.read(slide_id)
        if table is None:
            continue
        if group and rows + table.num_rows > max_rows:
            yield group, pa.concat_tables(tables)
            group, tables, rows = [], [], 0
        group.append(slide_id)
        tables.append(table)
        rows += table.num_rows
    if group:
        yield group, pa.concat_tables(tables)
