"""Readers of cohort inputs in the layouts real data comes in (GDC, TCGA-CDR, MCAT, cBioPortal,
plain matrices, AnnData). Each returns pandas objects; linking and validation happen in
:mod:`pmx.cohorts.loader`."""

from .cbioportal import cbioportal_data_files, read_cbioportal_clinical, read_cbioportal_mutations
from .clinical import read_clinical_table, read_tcga_cdr
from .common import NonNumericError, read_table
from .gdc import (read_gdc_clinical, read_methylation_beta, read_mirna_quantification, read_sample_sheet,
                  read_star_counts)
from .matrix import read_h5ad, read_matrix
from .mcat import mcat_clinical, mcat_omics, mcat_slides, read_mcat_table

__all__ = [
    "NonNumericError", "cbioportal_data_files", "mcat_clinical", "mcat_omics", "mcat_slides",
    "read_cbioportal_clinical", "read_cbioportal_mutations", "read_clinical_table", "read_gdc_clinical",
    "read_h5ad", "read_matrix", "read_mcat_table", "read_methylation_beta", "read_mirna_quantification",
    "read_sample_sheet", "read_star_counts", "read_table", "read_tcga_cdr",
]
