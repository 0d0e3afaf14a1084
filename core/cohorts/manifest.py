"""The cohort manifest: where a cohort's survival table, slides and omics files are.

A manifest is a TOML (or JSON) file; relative paths resolve against the manifest's folder, so a
cohort folder can be moved or copied as a whole. The format is documented with examples in
docs/cohorts.md; this module is its single definition (unknown keys are rejected with the list
of valid ones, so a typo never silently drops a source).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pmx.errors import ConfigError

__all__ = [
    "MANIFEST_VERSION",
    "ClinicalSource",
    "SlideSource",
    "OmicsSource",
    "Manifest",
    "load_manifest",
    "dump_manifest_toml",
    "MODALITY_KINDS",
]

MANIFEST_VERSION = 1

ClinicalFormat = Literal["table", "gdc-clinical", "tcga-cdr", "mcat", "cbioportal"]
SlideFormat = Literal["files", "table", "mcat"]
OmicsFormat = Literal[
    "gdc-star-counts", "gdc-mirna", "gdc-methylation-beta", "matrix", "h5ad", "mcat", "cbioportal"
]
ValueKind = Literal["counts", "beta", "continuous", "binary"]

#: default value kind of well-known modalities (decides the validation rules)
MODALITY_KINDS: dict[str, str] = {
    "rna": "counts", "mirna": "counts", "methylation": "beta", "cnv": "continuous",
    "mutation": "binary", "protein": "continuous",
}
_FORMAT_KINDS = {"gdc-star-counts": "counts", "gdc-mirna": "counts", "gdc-methylation-beta": "beta"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClinicalSource(_Section):
    """The survival table: one of several layouts, normalised to patient_id, time (days), event."""

    format: ClinicalFormat = Field("table", description="layout of the survival table")
    path: str = Field(..., description="file (or cBioPortal study folder) relative to the manifest")
    id_column: str = Field("patient_id", description="table: column with patient IDs or barcodes")
    time_column: str = Field("time", description="table: column with follow-up time")
    event_column: str = Field("event", description="table: column with the event indicator")
    event_meaning: Literal["death", "censored"] = Field(
        "death", description="table: whether 1 in event_column means death or censored")
    time_unit: Literal["days", "months", "years"] = Field("days", description="table: unit of time_column")
    site_column: str | None = Field(None, description="table: column with the site/centre (default: from barcode)")
    cohort_column: str | None = Field(None, description="table: column with the cohort/project name")
    endpoint: Literal["OS", "DSS", "DFI", "PFI"] = Field("OS", description="tcga-cdr: which endpoint to use")
    cohort: str | None = Field(None, description="cohort name for every patient (overrides the table)")


class SlideSource(_Section):
    """Whole-slide images and the patients they belong to."""

    format: SlideFormat = Field("files", description="files (glob/folder), table (CSV/TSV) or mcat")
    glob: str | None = Field(None, description="files: glob of slide files relative to the manifest")
    path: str | None = Field(None, description="files: folder of slides; table/mcat: the table file")
    slide_dir: str | None = Field(None, description="table/mcat: folder that relative slide paths/IDs are in")
    patient_column: str = Field("patient_id", description="table: column with the patient of each slide")
    path_column: str = Field("path", description="table: column with the slide file path")
    slide_column: str = Field("slide_id", description="table: column with the slide ID (default: file stem)")
    mpp_column: str = Field("mpp", description="table: optional column with an mpp override per slide")
    mpp: float | None = Field(None, gt=0, description="mpp override for every slide of this source")
    extensions: list[str] = Field(
        [".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".bif", ".svslide"],
        description="files: slide file extensions considered when path is a folder")

    @model_validator(mode="after")
    def _where(self) -> "SlideSource":
        if self.format == "files" and not (self.glob or self.path):
            raise ValueError("slides with format 'files' need 'glob' or 'path' (a folder)")
        if self.format in ("table", "mcat") and not self.path:
            raise ValueError(f"slides with format '{self.format}' need 'path' (the table)")
        return self


class OmicsSource(_Section):
    """One omics source: per-sample GDC files, a matrix, an AnnData file, MCAT or cBioPortal."""

    format: OmicsFormat = Field(..., description="file layout")
    modality: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$",
                                 description="rna, mirna, methylation, cnv, mutation, ... (mcat/cbioportal: optional filter)")
    path: str | None = Field(None, description="matrix/h5ad/mcat file, cBioPortal folder, or a folder of GDC files")
    glob: str | None = Field(None, description="GDC per-sample files: glob relative to the manifest")
    sample_sheet: str | None = Field(None, description="GDC sample sheet linking file names to sample barcodes")
    value: str | None = Field(None, description="column to read (STAR: unstranded; miRNA: read_count)")
    feature: Literal["gene_name", "gene_id"] = Field("gene_name", description="STAR: feature names to use")
    orientation: Literal["auto", "samples-x-features", "features-x-samples"] = Field(
        "auto", description="matrix: whether rows are samples or features")
    id_column: str | None = Field(None, description="matrix/h5ad: column with sample IDs (samples as rows) "
                                                    "or feature names (features as rows)")
    kind: ValueKind | None = Field(None, description="counts, beta, continuous or binary (default by modality)")
    include_normals: bool = Field(False, description="keep normal-tissue samples (TCGA types 10-19) as fallback")

    @model_validator(mode="after")
    def _check(self) -> "OmicsSource":
        if self.format not in ("mcat", "cbioportal") and self.modality is None:
            raise ValueError(f"omics with format '{self.format}' need 'modality'")
        if self.format in ("gdc-star-counts", "gdc-mirna", "gdc-methylation-beta"):
            if not (self.glob or self.path):
                raise ValueError(f"omics with format '{self.format}' need 'glob' or 'path' (a folder)")
        elif not self.path:
            raise ValueError(f"omics with format '{self.format}' need 'path'")
        return self

    def value_kind(self, modality: str | None = None) -> str:
        """counts / beta / continuous / binary: the rules values of this source are checked with."""
        if self.kind:
            return self.kind
        if self.format in _FORMAT_KINDS:
            return _FORMAT_KINDS[self.format]
        modality = modality or self.modality or ""
        if self.format in ("mcat", "cbioportal"):  # normalised tables (z-scores, RSEM), never raw counts
            return {"mutation": "binary", "methylation": "beta"}.get(modality, "continuous")
        return MODALITY_KINDS.get(modality, "continuous")

    @property
    def label(self) -> str:
        return f"omics[{self.modality or self.format}]"


class Manifest(_Section):
    """A whole cohort: survival, slides and omics sources (paths relative to ``root``)."""

    version: int = Field(MANIFEST_VERSION, description="manifest format version")
    name: str | None = Field(None, description="cohort name (default: the manifest's folder name)")
    clinical: ClinicalSource = Field(..., description="the survival table")
    slides: list[SlideSource] = Field(default_factory=list, description="slide sources")
    omics: list[OmicsSource] = Field(default_factory=list, description="omics sources")
    root: Path = Field(Path("."), description="folder relative paths resolve against (set on load)")

    @field_validator("slides", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != MANIFEST_VERSION:
            raise ValueError(f"manifest version {value} is not supported (this pmx reads version {MANIFEST_VERSION})")
        return value

    def resolve(self, relative: str) -> Path:
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.root / path

    @property
    def cohort_name(self) -> str:
        return self.name or self.clinical.cohort or self.root.resolve().name


def _problems(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
        if err.get("type") == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        else:
            lines.append(f"'{key}': {err.get('msg')}")
    return "; ".join(lines)


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a manifest; errors name the file and the offending key."""
    path = Path(path)
    if path.is_dir():
        for candidate in ("manifest.toml", "manifest.json"):
            if (path / candidate).is_file():
                path = path / candidate
                break
        else:
            raise ConfigError(f"{path} is a folder without manifest.toml or manifest.json; "
                              "pass the manifest file (see docs/cohorts.md)")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"manifest {path} does not exist") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"manifest {path} cannot be parsed: {exc}") from None
    if "root" in data:
        raise ConfigError(f"manifest {path}: 'root' is set by pmx (the manifest's folder); remove it")
    try:
        return Manifest.model_validate({**data, "root": path.parent.resolve()})
    except ValidationError as exc:
        raise ConfigError(f"manifest {path} is invalid: {_problems(exc)} (see docs/cohorts.md)") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def dump_manifest_toml(manifest: Manifest, comments: dict[str, str] | None = None) -> str:
    """TOML text of a manifest, listing only keys that differ from the defaults."""
    comments = comments or {}
    data = manifest.model_dump(exclude_defaults=True, exclude={"root"})
    lines = ["# pmx cohort manifest (format: docs/cohorts.md)"]
    for key in ("version", "name"):
        value = getattr(manifest, key)
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")

    def section(header: str, values: dict[str, Any], note: str | None) -> None:
        lines.append("")
        if note:
            lines.append(f"# {note}")
        lines.append(header)
        for k, v in values.items():
            lines.append(f"{k} = {_toml_value(v)}")

    section("[clinical]", {"format": manifest.clinical.format, **data.get("clinical", {})}, comments.get("clinical"))
    for source, dumped in zip(manifest.slides, data.get("slides", [])):
        section("[[slides]]", {"format": source.format, **dumped}, comments.get("slides"))
    for source, dumped in zip(manifest.omics, data.get("omics", [])):
        section("[[omics]]", {"modality": source.modality, **dumped} if source.modality else dumped,
                comments.get(f"omics.{source.modality}"))
    return "\n".join(lines) + "\n"
