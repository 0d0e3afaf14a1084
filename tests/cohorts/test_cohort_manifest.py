"""The manifest format: what it accepts, the errors it gives, and that dumping it round-trips."""

from __future__ import annotations

import json

import pytest

from pmx.cohorts.manifest import ClinicalSource, Manifest, OmicsSource, SlideSource, dump_manifest_toml, load_manifest
from pmx.errors import ConfigError


def _write(tmp_path, text: str, name: str = "manifest.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_manifest_and_relative_paths(tmp_path):
    path = _write(tmp_path, '[clinical]\npath = "surv.csv"\n\n[slides]\nglob = "slides/*.svs"\n')
    manifest = load_manifest(path)
    assert manifest.clinical.format == "table" and manifest.clinical.time_unit == "days"
    assert len(manifest.slides) == 1 and manifest.slides[0].format == "files"  # one [slides] table is fine
    assert manifest.resolve("surv.csv") == tmp_path.resolve() / "surv.csv"
    assert manifest.cohort_name == tmp_path.name
    assert load_manifest(tmp_path) == manifest  # a folder means its manifest.toml


@pytest.mark.parametrize(
    "text, message",
    [
        ('[clinical]\npath = "a.csv"\ntime_colum = "t"\n', "unknown key 'clinical.time_colum'"),
        ('[slides]\nglob = "*.svs"\n', "'clinical': Field required"),
        ('version = 2\n[clinical]\npath = "a.csv"\n', "version 2 is not supported"),
        ('[clinical]\npath = "a.csv"\n[[omics]]\nformat = "matrix"\npath = "m.csv"\n', "need 'modality'"),
        ('[clinical]\npath = "a.csv"\n[[omics]]\nmodality = "rna"\nformat = "gdc-star-counts"\n', "need 'glob'"),
        ('[clinical]\npath = "a.csv"\nformat = "excel"\n', "clinical.format"),
        ('[clinical\npath = "a.csv"\n', "cannot be parsed"),
    ],
)
def test_manifest_errors_name_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match="manifest .* (is invalid|cannot be parsed)") as caught:
        load_manifest(_write(tmp_path, text))
    assert message in str(caught.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_manifest(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="without manifest.toml"):
        load_manifest(tmp_path)


def test_dump_round_trip_and_json(tmp_path):
    manifest = Manifest(
        name="brca",
        root=tmp_path,
        clinical=ClinicalSource(format="tcga-cdr", path="cdr.tsv", endpoint="PFI"),
        slides=[SlideSource(format="table", path="slides.csv", mpp=0.25)],
        omics=[OmicsSource(modality="rna", format="gdc-star-counts", glob="rna/**/*.tsv", sample_sheet="sheet.tsv"),
               OmicsSource(modality="cnv", format="matrix", path="cnv.parquet", orientation="features-x-samples")],
    )
    text = dump_manifest_toml(manifest)
    loaded = load_manifest(_write(tmp_path, text))
    assert loaded.model_dump(exclude={"root"}) == manifest.model_dump(exclude={"root"})
    as_json = manifest.model_dump(mode="json", exclude={"root"})
    assert load_manifest(_write(tmp_path, json.dumps(as_json), "m.json")) == loaded
    assert OmicsSource(modality="cnv", format="matrix", path="x").value_kind() == "continuous"
    assert OmicsSource(modality="x", format="gdc-methylation-beta", path="d").value_kind() == "beta"
