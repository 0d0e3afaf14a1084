"""TCGA barcodes: how aliquots, samples and slides are linked to patients.

A TCGA barcode reads ``TCGA-TSS-PPPP-SSV-PPA-PLATE-CC`` (project, tissue source site,
participant, sample type + vial, portion + analyte, plate, centre); slide names read
``TCGA-TSS-PPPP-SSV-PP-DX1``. The first 12 characters name the patient, characters 14-15 the
sample type (01 primary solid tumour, 11 solid tissue normal, ...).

When a patient has several samples of one modality, pmx keeps exactly one, chosen by
:func:`pick_sample` (the *duplicate rule*, documented in docs/cohorts.md):

1. normal samples (types 10-19) and control samples (20-29) are dropped unless
   ``include_normals`` is set;
2. tumour types are ranked 01 > 03 > 09 > 02 > 05 > 06 > 07 > 04 > 08 > others
   (primary before recurrent before metastatic);
3. within the best type, the lowest vial letter (A before B) wins, then the lexicographically
   smallest full barcode (so the choice never depends on file order).

IDs that are not TCGA barcodes are taken as patient IDs unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

__all__ = [
    "Barcode",
    "parse_barcode",
    "patient_of",
    "is_tcga_barcode",
    "find_barcode",
    "sample_rank",
    "pick_sample",
    "SAMPLE_TYPES",
]

_BARCODE = re.compile(
    r"^(?P<patient>(?P<project>TCGA|TARGET|[A-Z0-9]{2,6})-(?P<tss>[A-Z0-9]{2})-(?P<participant>[A-Z0-9]{4,6}))"
    r"(?:-(?P<sample>\d{2})(?P<vial>[A-Z])?"
    r"(?:-(?P<portion>\d{2})(?P<analyte>[A-Z])?"
    r"(?:-(?P<plate>[A-Z0-9]{4})(?:-(?P<center>\d{2}))?|-(?P<slide>[A-Z]{2}\d+))?)?)?",
    re.IGNORECASE,
)
_SEARCH = re.compile(r"TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}(?:-\d{2}[A-Z]?(?:-\d{2}[A-Z]?(?:-[A-Z0-9]{2,4}(?:-\d{2})?)?)?)?",
                     re.IGNORECASE)

#: sample type code -> meaning (the codes pmx sees most; others are accepted as "other")
SAMPLE_TYPES: dict[str, str] = {
    "01": "Primary Solid Tumor",
    "02": "Recurrent Solid Tumor",
    "03": "Primary Blood Derived Cancer - Peripheral Blood",
    "04": "Recurrent Blood Derived Cancer - Bone Marrow",
    "05": "Additional - New Primary",
    "06": "Metastatic",
    "07": "Additional Metastatic",
    "08": "Human Tumor Original Cells",
    "09": "Primary Blood Derived Cancer - Bone Marrow",
    "10": "Blood Derived Normal",
    "11": "Solid Tissue Normal",
    "12": "Buccal Cell Normal",
    "13": "EBV Immortalized Normal",
    "14": "Bone Marrow Normal",
}
_TUMOUR_ORDER = ["01", "03", "09", "02", "05", "06", "07", "04", "08"]


@dataclass(frozen=True)
class Barcode:
    """The parts of a (possibly partial) TCGA barcode that linking needs."""

    text: str
    patient: str
    tss: str
    sample_type: str | None = None
    vial: str | None = None
    analyte: str | None = None

    @property
    def is_normal(self) -> bool:
        return self.sample_type is not None and 10 <= int(self.sample_type) <= 29

    @property
    def sample(self) -> str | None:
        """``TCGA-XX-YYYY-01A`` (patient + sample type + vial) when the barcode has them."""
        if self.sample_type is None:
            return None
        return f"{self.patient}-{self.sample_type}{self.vial or ''}"


def parse_barcode(text: str) -> Barcode | None:
    """Parse a TCGA-style barcode (upper-cased); None when ``text`` is not one."""
    text = str(text).strip()
    match = _BARCODE.match(text)
    if match is None or not text.upper().startswith(("TCGA-", "TARGET-")):
        return None
    parts = match.groupdict()
    return Barcode(
        text=text.upper(),
        patient=parts["patient"].upper(),
        tss=parts["tss"].upper(),
        sample_type=parts["sample"],
        vial=(parts["vial"] or "").upper() or None,
        analyte=(parts["analyte"] or "").upper() or None,
    )


def is_tcga_barcode(text: str) -> bool:
    return parse_barcode(text) is not None


def patient_of(identifier: str) -> str:
    """Patient ID of a barcode (its first 12 characters) or the ID itself when it is not one."""
    barcode = parse_barcode(identifier)
    return barcode.patient if barcode is not None else str(identifier).strip()


def find_barcode(text: str) -> str | None:
    """The longest TCGA barcode inside a file name or string (e.g. a slide file name)."""
    match = _SEARCH.search(str(text))
    return match.group(0).upper() if match else None


def sample_rank(identifier: str, include_normals: bool = False) -> tuple[int, str, str] | None:
    """Sort key of the duplicate rule (smaller is preferred); None = excluded sample."""
    barcode = parse_barcode(identifier)
    if barcode is None or barcode.sample_type is None:
        return (len(_TUMOUR_ORDER) + 50, "", str(identifier))
    code = barcode.sample_type
    if barcode.is_normal:
        if not include_normals:
            return None
        rank = len(_TUMOUR_ORDER) + int(code)
    elif code in _TUMOUR_ORDER:
        rank = _TUMOUR_ORDER.index(code)
    else:
        rank = len(_TUMOUR_ORDER) + 40
    return (rank, barcode.vial or "", barcode.text)


def pick_sample(identifiers: Iterable[str], include_normals: bool = False) -> str | None:
    """Apply the duplicate rule to one patient's sample IDs; None when all are excluded."""
    ranked = []
    for identifier in identifiers:
        key = sample_rank(identifier, include_normals)
        if key is not None:
            ranked.append((key, identifier))
    if not ranked:
        return None
    return min(ranked)[1]
