"""``pmx cohort info``: patients, events and which modalities each patient has.

The availability table follows impuTMAE's: per modality the number (and share) of patients that
have it, and the number of patients per combination of modalities (which is what decides how a
method that needs every modality, or one that imputes missing ones, can use the cohort).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

__all__ = ["summarise", "store_summary", "MODALITY_ORDER"]

MODALITY_ORDER = ("slide", "rna", "mirna", "methylation", "cnv", "mutation", "protein")


def _ordered(modalities: Iterable[str]) -> list[str]:
    known = [m for m in MODALITY_ORDER if m in modalities]
    return known + sorted(m for m in modalities if m not in MODALITY_ORDER)


def summarise(name: str | None, patients: pd.DataFrame, availability: dict[str, set[str]], *,
              n_slides: int | None = None, features: dict[str, int] | None = None) -> dict[str, Any]:
    """JSON-able summary of one cohort (``patients`` has patient_id, time, event columns)."""
    ids = patients["patient_id"].astype(str).tolist()
    n = len(ids)
    event = patients["event"].astype(float).to_numpy() if n else np.zeros(0)
    time = patients["time"].astype(float).to_numpy() if n else np.zeros(0)
    modalities = _ordered(availability)
    per_modality = []
    for modality in modalities:
        have = availability[modality] & set(ids)
        entry: dict[str, Any] = {"modality": modality, "patients": len(have),
                                 "fraction": round(len(have) / n, 4) if n else 0.0,
                                 "events": int(sum(e for p, e in zip(ids, event) if p in have))}
        if features and modality in features:
            entry["features"] = int(features[modality])
        per_modality.append(entry)
    combos: dict[str, int] = {}
    for patient in ids:
        key = "+".join(m for m in modalities if patient in availability[m]) or "(none)"
        combos[key] = combos.get(key, 0) + 1
    combinations = [{"modalities": k, "patients": v} for k, v in sorted(combos.items(), key=lambda kv: -kv[1])]
    summary: dict[str, Any] = {
        "cohort": name,
        "patients": n,
        "events": int(event.sum()) if n else 0,
        "censored": int(n - event.sum()) if n else 0,
        "censoring_fraction": round(float(1 - event.mean()), 4) if n else None,
        "median_time_days": float(np.median(time)) if n else None,
        "complete_patients": sum(1 for p in ids if all(p in availability[m] for m in modalities)) if modalities else 0,
        "modalities": per_modality,
        "combinations": combinations,
    }
    if n_slides is not None:
        summary["slides"] = int(n_slides)
    return summary


def store_summary(store: Any, cohort: str | None = None) -> list[dict[str, Any]]:
    """One summary per cohort in the store's patients table (only ``cohort`` when given)."""
    from pmx.featurestore import sql_literal

    where = f"cohort = {sql_literal(cohort)}" if cohort else None
    patients = store.read("patients", where=where, columns=["patient_id", "time", "event", "cohort"]).to_pandas()
    if patients.empty:
        return []
    slides = store.read("slides", columns=["slide_id", "patient_id"]).to_pandas()
    omics = store.read("omics", where="source = 'raw'", columns=["patient_id", "modality"]).to_pandas()
    features = store.read("omics_features", where="source = 'raw'", columns=["modality", "features"]).to_pandas()
    widths = {row.modality: len(row.features) for row in features.itertuples(index=False)}
    out = []
    for name, group in patients.groupby(patients["cohort"].fillna("(none)"), sort=True):
        ids = set(group["patient_id"])
        availability: dict[str, set[str]] = {}
        cohort_slides = slides[slides["patient_id"].isin(ids)]
        if len(cohort_slides):
            availability["slide"] = set(cohort_slides["patient_id"])
        for modality, rows in omics[omics["patient_id"].isin(ids)].groupby("modality"):
            availability[str(modality)] = set(rows["patient_id"])
        frame = group.assign(event=group["event"].astype(float))
        out.append(summarise(str(name), frame, availability, n_slides=len(cohort_slides),
                             features={m: widths[m] for m in availability if m in widths}))
    return out
