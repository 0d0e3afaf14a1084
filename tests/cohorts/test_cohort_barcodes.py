"""TCGA barcode parsing and the duplicate rule that picks one sample per patient."""

from __future__ import annotations

import pytest

from pmx.cohorts.barcodes import find_barcode, is_tcga_barcode, parse_barcode, patient_of, pick_sample


def test_parse_aliquot_barcode():
    b = parse_barcode("TCGA-A1-A0SB-01A-11R-A144-07")
    assert b is not None
    assert (b.patient, b.tss, b.sample_type, b.vial, b.analyte) == ("TCGA-A1-A0SB", "A1", "01", "A", "R")
    assert b.sample == "TCGA-A1-A0SB-01A"
    assert not b.is_normal
    assert parse_barcode("TCGA-A1-A0SB-11A").is_normal


def test_patient_is_first_12_characters_and_other_ids_pass_through():
    assert patient_of("TCGA-A1-A0SB-01A-11R-A144-07") == "TCGA-A1-A0SB"
    assert patient_of("tcga-a1-a0sb-01a") == "TCGA-A1-A0SB"
    assert patient_of("TCGA-A1-A0SB") == "TCGA-A1-A0SB"
    assert patient_of("patient-007") == "patient-007"
    assert not is_tcga_barcode("patient-007")


def test_slide_barcode_in_a_file_name():
    name = "TCGA-A1-A0SB-01Z-00-DX1.8F9C5E9A-1B2C-4D5E-8F90-123456789ABC.svs"
    assert find_barcode(name) == "TCGA-A1-A0SB-01Z-00-DX1"
    assert patient_of(find_barcode(name)) == "TCGA-A1-A0SB"
    assert find_barcode("slide_42.svs") is None


@pytest.mark.parametrize(
    "samples, expected",
    [
        (["TCGA-A1-0001-11A-01R-A1-07", "TCGA-A1-0001-01A-01R-A1-07"], "TCGA-A1-0001-01A-01R-A1-07"),
        (["TCGA-A1-0001-01B-01R-A1-07", "TCGA-A1-0001-01A-01R-A1-07"], "TCGA-A1-0001-01A-01R-A1-07"),
        (["TCGA-A1-0001-06A-01R-A1-07", "TCGA-A1-0001-01A-01R-A1-07"], "TCGA-A1-0001-01A-01R-A1-07"),
        (["TCGA-A1-0001-06A-01R-A1-07", "TCGA-A1-0001-02A-01R-A1-07"], "TCGA-A1-0001-02A-01R-A1-07"),
        (["TCGA-A1-0001-01A-21R-A1-07", "TCGA-A1-0001-01A-11R-A1-07"], "TCGA-A1-0001-01A-11R-A1-07"),
    ],
)
def test_duplicate_rule(samples, expected):
    assert pick_sample(samples) == expected
    assert pick_sample(list(reversed(samples))) == expected  # never depends on order


def test_normals_are_excluded_unless_asked_for():
    only_normal = ["TCGA-A1-0001-11A-01R-A1-07"]
    assert pick_sample(only_normal) is None
    assert pick_sample(only_normal, include_normals=True) == only_normal[0]
