"""``gene-families``: CMTA/MCAT genomic groups, standard-scaled on the training fold.

Features are grouped into the gene families of a signatures table in MCAT's
``signatures.csv`` layout: one column per family (tumour suppressors, oncogenes, protein
kinases, cell differentiation markers, transcription factors, cytokines and growth factors),
each listing gene symbols, shorter columns padded with empty cells. A feature belongs to a
family when its gene symbol does, for each of its data types: MCAT-style column names carry a
suffix (``TP53_rnaseq``, ``TP53_cnv``, ``TP53_mut``); matrices given per omics type without
suffixes get the type's suffix (``suffixes``: rna -> _rnaseq, cnv -> _cnv, mutation -> _mut).
Within a family features are sorted by name; a gene listed in two families feeds both.

Output: one matrix per family (patients x that family's features), scaled with mean and
standard deviation of the training patients. Values missing for a patient (a patient without
CNV data, say) are filled with the training mean, i.e. 0 after scaling.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..config import ComponentConfig, Field
from ..errors import ConfigError, DataError
from .data import canonical_type, require_features
from .filters import check_no_empty
from .scaling import FoldScaler
from .selector import OmicsSelector

__all__ = ["GeneFamiliesSelector", "load_signatures", "combine_with_suffixes"]

log = logging.getLogger("pmx.omics")

DEFAULT_SUFFIXES = {"rna": "_rnaseq", "cnv": "_cnv", "mutation": "_mut"}


def load_signatures(path: str | Path) -> dict[str, list[str]]:
    """Family -> gene symbols from an MCAT-style signatures table (CSV or TSV)."""
    if not str(path):
        raise ConfigError(
            "gene-families needs a signatures table: --set signatures=PATH (CSV, one column per "
            "gene family listing gene symbols, as MCAT's signatures.csv)"
        )
    path = Path(path)
    if not path.is_file():
        raise DataError(f"signatures table {path} does not exist; give the path of a signatures.csv")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"signatures table {path} cannot be read as {'TSV' if sep == chr(9) else 'CSV'}: {exc}") from None
    families: dict[str, list[str]] = {}
    for column in table.columns:
        genes = [g.strip() for g in table[column].dropna().astype(str) if g.strip()]
        if genes:
            families[str(column).strip()] = list(dict.fromkeys(genes))
    if not families:
        raise DataError(f"signatures table {path} lists no genes; expected one column of gene symbols per family")
    return families


def combine_with_suffixes(omics: dict[str, pd.DataFrame], suffixes: dict[str, str]) -> pd.DataFrame:
    """One patients x features table with MCAT suffixes on every column (outer join on patients)."""
    known = tuple(sorted(set(suffixes.values()) | set(DEFAULT_SUFFIXES.values()), key=len, reverse=True))
    parts = []
    for kind, matrix in omics.items():
        suffix = suffixes.get(kind)
        columns = []
        for column in matrix.columns:
            if column.endswith(known):
                columns.append(column)
            elif suffix is not None:
                columns.append(f"{column}{suffix}")
            else:
                raise DataError(
                    f"omics '{kind}': feature {column!r} has no _rnaseq/_cnv/_mut suffix and '{kind}' "
                    f"has no suffix configured; set suffixes (e.g. --set suffixes.{kind}=\"_rnaseq\") or "
                    "name its columns like TP53_rnaseq"
                )
        parts.append(matrix.set_axis(columns, axis=1))
    combined = pd.concat(parts, axis=1, join="outer", sort=False)
    if combined.columns.has_duplicates:
        dup = combined.columns[combined.columns.duplicated()][0]
        raise DataError(f"feature {dup!r} appears in more than one omics matrix; keep it in one")
    return combined


def _symbol(feature: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if feature.endswith(suffix):
            return feature[: -len(suffix)]
    return feature


class GeneFamiliesSelector(OmicsSelector):
    """Six gene-family groups from a signatures table (CMTA/MCAT), standard-scaled on the training fold."""

    name = "gene-families"
    version = "1"

    class Config(ComponentConfig):
        signatures: str = Field("", description="path of the signatures table (MCAT signatures.csv layout)")
        suffixes: dict[str, str] = Field(
            dict(DEFAULT_SUFFIXES), description="suffix appended to each omics type's unsuffixed feature names")
        scaler: Literal["standard", "minmax", "none"] = Field(
            "standard", description="scaling fit on the training fold: standard, minmax or none")
        allow_empty_families: bool = Field(
            False, description="keep families with no matching feature (as empty groups) instead of failing")

    def _suffixes(self) -> dict[str, str]:
        return {canonical_type(k): v for k, v in self.config.suffixes.items()}

    def _fit(self, omics: dict[str, pd.DataFrame], survival: pd.DataFrame) -> None:
        families = load_signatures(self.config.signatures)
        combined = combine_with_suffixes(omics, self._suffixes())
        train = combined.loc[combined.index.isin(survival.index)]
        if train.empty:
            raise DataError(
                "gene-families: none of the training patients has omics values; check that patient IDs match"
            )
        known = tuple(sorted(set(self._suffixes().values()) | set(DEFAULT_SUFFIXES.values()), key=len, reverse=True))
        by_symbol: dict[str, list[str]] = {}
        for feature in combined.columns:
            by_symbol.setdefault(_symbol(feature, known), []).append(feature)
        self._groups: dict[str, list[str]] = {}
        for family, genes in families.items():
            features = sorted(f for g in genes for f in by_symbol.get(g, []))
            features = list(dict.fromkeys(features))
            if not features and not self.config.allow_empty_families:
                raise DataError(
                    f"gene family {family!r} ({len(genes)} genes, e.g. {genes[:3]}) matches no feature "
                    f"(features look like {list(combined.columns[:3])}). Use gene symbols as feature "
                    "names (not Ensembl IDs), or set allow_empty_families=true"
                )
            self._groups[family] = features
        used = sorted({f for fs in self._groups.values() for f in fs})
        if used:
            check_no_empty("gene-families", train[used])
        values = train[used].to_numpy(dtype=np.float64)
        self._means = pd.Series(np.nanmean(values, axis=0) if used else [], index=used, dtype=float)
        self._scalers: dict[str, FoldScaler] = {}
        for family, features in self._groups.items():
            filled = train[features].fillna(self._means[features])
            self._scalers[family] = FoldScaler(self.config.scaler).fit(filled.to_numpy(dtype=np.float64))
            self._selected[family] = features
            self.report_[family] = {
                "genes_listed": len(families[family]), "features": len(features),
                "by_type": {s.strip("_"): sum(f.endswith(s) for f in features) for s in known
                            if any(f.endswith(s) for f in features)},
            }
        log.debug("gene-families: %s", {k: len(v) for k, v in self._groups.items()})

    def _transform(self, omics: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        combined = combine_with_suffixes(omics, self._suffixes())
        out: dict[str, pd.DataFrame] = {}
        for family, features in self._groups.items():
            block = require_features(combined, features, f"gene family {family!r}")
            if block.isna().to_numpy().any():
                rows = block.index[block.isna().any(axis=1).to_numpy()].tolist()
                log.info("gene family %r: %d patient(s) with missing values filled with training means",
                         family, len(rows))
                block = block.fillna(self._means[features])
            values = self._scalers[family].transform(block.to_numpy(dtype=np.float64))
            out[family] = pd.DataFrame(values, index=block.index, columns=features)
        return out
