"""Where ``pmx select`` gets omics and survival from: the store, a cohort manifest, or files.

* the feature store (default): raw omics written by ``pmx ingest`` (``source = 'raw'``) and
  the ``patients`` table's survival;
* a cohort manifest (``--cohort``): read and validated in memory, nothing written;
* plain matrices (``--omics TYPE=PATH`` + ``--clinical PATH``): CSV/TSV/Parquet, either
  orientation, with a survival table of ``patient_id, time, event``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError

__all__ = ["OmicsInputs", "from_store", "from_cohort", "from_files"]


class OmicsInputs:
    """Matrices per omics type plus survival, restricted to patients with survival."""

    def __init__(self, omics: dict[str, pd.DataFrame], survival: pd.DataFrame, source: str) -> None:
        from .data import as_survival_frame

        self.survival = as_survival_frame(survival)
        known = set(self.survival.index)
        self.omics = {k: m.loc[m.index.isin(known)] for k, m in omics.items()}
        self.omics = {k: m for k, m in self.omics.items() if len(m)}
        if not self.omics:
            raise DataError(f"{source}: no omics values for patients with survival data; check the patient IDs")
        self.source = source

    @property
    def patients(self) -> list[str]:
        """Patients with survival and at least one omics type (the ones folds are made of)."""
        have = set().union(*(set(m.index) for m in self.omics.values()))
        return sorted(p for p in self.survival.index if p in have)


def from_store(store: Any, modalities: Sequence[str] = (), cohort: str | None = None) -> OmicsInputs:
    """Raw omics and survival of the store's patients (only ``cohort``'s when given)."""
    from pmx.featurestore import sql_literal
    from pmx.featurestore.omics import read_omics

    if not store.has_table("omics_features") or not store.has_table("patients"):
        raise DataError(
            f"the store {getattr(store, 'uri', store)} holds no ingested cohort; run `pmx ingest MANIFEST` "
            "first, or give --cohort MANIFEST or --omics TYPE=PATH --clinical PATH"
        )
    names = store.read("omics_features", where="source = 'raw' AND fold = -1", columns=["modality"])
    available = sorted(set(names["modality"].to_list()))
    wanted = list(modalities) or available
    missing = [m for m in wanted if m not in available]
    if missing:
        raise DataError(f"the store has no raw omics {missing}; it has {available or 'none'}")
    omics = {}
    for modality in wanted:
        matrix = read_omics(store, modality=modality)
        omics[modality] = pd.DataFrame(matrix.values.astype(np.float64), index=matrix.patient_ids,
                                       columns=matrix.features)
    where = f"cohort = {sql_literal(cohort)}" if cohort is not None else None
    patients = store.read("patients", where=where, columns=["patient_id", "time", "event", "cohort"]).to_pandas()
    if cohort is not None and patients.empty:
        known = sorted(str(c) for c in store.read("patients", columns=["cohort"])["cohort"].unique().to_list()
                       if c is not None)
        raise DataError(f"the store {getattr(store, 'uri', store)} has no patients of cohort {cohort!r}; "
                        f"its cohorts are {', '.join(known) or 'none'} (`pmx cohort info --store DIR`)")
    cohorts = sorted(str(c) for c in patients["cohort"].dropna().unique())
    if cohort is None and len(cohorts) > 1:  # omics are restricted to the patients read here
        import logging

        logging.getLogger("pmx.omics").warning(
            "the store %s holds %d cohorts (%s); using the patients of all of them "
            "(`pmx select --cohort NAME` for one)",
            getattr(store, "uri", store), len(cohorts), ", ".join(cohorts))
    patients = patients.drop(columns=["cohort"]).dropna(subset=["time", "event"])
    source = f"store {getattr(store, 'uri', '')}" + (f" cohort {cohort}" if cohort is not None else "")
    return OmicsInputs(omics, patients.set_index("patient_id"), source)


def from_cohort(manifest: str | Path, modalities: Sequence[str] = ()) -> OmicsInputs:
    from pmx.cohorts import load_cohort

    cohort = load_cohort(manifest, inspect_slides=False)
    wanted = list(modalities) or sorted(cohort.omics)
    missing = [m for m in wanted if m not in cohort.omics]
    if missing:
        raise DataError(f"cohort {manifest} has no omics {missing}; it has {sorted(cohort.omics)}")
    omics = {m: cohort.omics[m].frame().astype(np.float64) for m in wanted}
    patients = cohort.patients.dropna(subset=["time", "event"]).set_index("patient_id")
    return OmicsInputs(omics, patients, f"cohort {manifest}")


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if suffix in (".tsv", ".txt") else ",")


def from_files(omics: Sequence[str], clinical: str | Path | None) -> OmicsInputs:
    if clinical is None:
        raise ConfigError("--omics needs --clinical PATH: a table with patient_id, time and event columns")
    clinical = Path(clinical)
    if not clinical.is_file():
        raise DataError(f"clinical table {clinical} does not exist")
    survival = _read_table(clinical)
    if "patient_id" not in survival.columns:
        raise DataError(f"{clinical} has no 'patient_id' column; columns: {list(survival.columns)}")
    survival["patient_id"] = survival["patient_id"].astype(str)
    known = survival["patient_id"].tolist()
    from pmx.cohorts.readers.matrix import read_matrix

    matrices: dict[str, pd.DataFrame] = {}
    for option in omics:
        kind, sep, path = option.partition("=")
        if not sep or not kind.strip() or not path.strip():
            raise ConfigError(f"--omics {option!r}: expected TYPE=PATH, e.g. --omics rna=counts.tsv")
        if not Path(path).is_file():
            raise DataError(f"--omics {kind}: file {path} does not exist")
        matrices[kind.strip()] = read_matrix(path.strip(), known_ids=known).astype(np.float64)
    return OmicsInputs(matrices, survival.set_index("patient_id"), "files")
