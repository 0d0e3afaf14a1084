"""Omics of the demo cohort: values with planted features, written in real GDC file layouts.

Expression is simulated as negative-binomial counts whose log-mean is a per-feature baseline
plus library size, a site batch shift, nuisance programs (structure unrelated to survival) and
the planted programs (factor loadings on a known subset of features). Methylation is simulated
on the M-value scale and written as beta values. The planted feature names are returned so the
generator can write them to planted.json for selector tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "OmicsPanel",
    "simulate_rna",
    "simulate_mirna",
    "simulate_methylation",
    "write_star_counts",
    "write_mirna_quantification",
    "write_methylation_beta",
]


@dataclass
class OmicsPanel:
    """Features of one modality, the planted subsets and the simulated values per sample."""

    modality: str
    names: list[str]
    values: np.ndarray  # (n_samples, n_features): counts (int) or beta (float, NaN = missing)
    planted: dict[str, list[str]] = field(default_factory=dict)  # factor -> feature names
    loadings: dict[str, dict[str, float]] = field(default_factory=dict)
    ids: list[str] | None = None  # e.g. Ensembl gene IDs
    extra: dict[str, np.ndarray | list[str]] = field(default_factory=dict)


def _plant(rng: np.random.Generator, candidates: np.ndarray, sizes: dict[str, int], low: float, high: float
           ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Disjoint feature subsets per factor with loadings of random sign and |loading| in [low, high]."""
    chosen = rng.permutation(candidates)
    planted: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    start = 0
    for factor, size in sizes.items():
        idx = np.sort(chosen[start:start + size])
        start += size
        loads = rng.uniform(low, high, size) * rng.choice([-1.0, 1.0], size)
        planted[factor] = (idx, loads)
    return planted


def _negative_binomial(rng: np.random.Generator, mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    shape = 1.0 / dispersion
    return rng.poisson(rng.gamma(shape, mean / shape)).astype(np.int64)


def _expression(
    rng: np.random.Generator,
    factors: dict[str, np.ndarray],
    sites: np.ndarray,
    n_features: int,
    planted_sizes: dict[str, int],
    library: float,
    baseline: tuple[float, float],
    n_nuisance: int,
    normal_mask: np.ndarray,
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    n = sites.size
    base = rng.normal(*baseline, n_features)
    base -= np.log(np.exp(base).sum())  # proportions
    dispersion = np.exp(rng.normal(np.log(0.12), 0.4, n_features))
    log_mean = np.tile(base, (n, 1)) + np.log(library) + rng.normal(0, 0.15, (n, 1))
    unique_sites = np.unique(sites)
    site_shift = {s: rng.normal(0, 0.12, n_features) for s in unique_sites}
    log_mean += np.stack([site_shift[s] for s in sites])
    for _ in range(n_nuisance):
        z = rng.standard_normal(n)
        idx = rng.choice(n_features, n_features // 12, replace=False)
        log_mean[:, idx] += np.outer(z, rng.normal(0, 0.45, idx.size))
    expressed = np.flatnonzero(base + np.log(library) > np.log(40))
    planted = _plant(rng, expressed, planted_sizes, 0.55, 0.9)
    for factor, (idx, loads) in planted.items():
        z = np.where(normal_mask, 0.0, factors[factor])  # normal tissue does not carry the programme
        log_mean[:, idx] += np.outer(z, loads)
    counts = _negative_binomial(rng, np.exp(log_mean), np.tile(dispersion, (n, 1)))
    return counts, planted


def _panel(modality: str, names: list[str], values: np.ndarray,
           planted: dict[str, tuple[np.ndarray, np.ndarray]], **kwargs) -> OmicsPanel:
    return OmicsPanel(
        modality=modality,
        names=names,
        values=values,
        planted={f: [names[i] for i in idx] for f, (idx, _) in planted.items()},
        loadings={f: {names[i]: round(float(l), 4) for i, l in zip(idx, loads)} for f, (idx, loads) in planted.items()},
        **kwargs,
    )


def simulate_rna(rng: np.random.Generator, factors: dict[str, np.ndarray], sites: np.ndarray,
                 n_genes: int, normal_mask: np.ndarray) -> OmicsPanel:
    """STAR-like gene counts; planted: rna_program (40 genes), grade (25), immune (20)."""
    sizes = {"rna_program": 40, "grade": 25, "immune": 20}
    counts, planted = _expression(rng, factors, sites, n_genes, sizes, library=2.5e7,
                                  baseline=(0.0, 1.6), n_nuisance=4, normal_mask=normal_mask)
    width = len(str(n_genes))
    names = [f"SYN{i + 1:0{max(width, 4)}d}" for i in range(n_genes)]
    ids = [f"ENSG9{i + 1:010d}.{1 + (i * 7) % 19}" for i in range(n_genes)]
    gene_types = np.where(rng.random(n_genes) < 0.85, "protein_coding", "lncRNA")
    lengths = np.round(np.exp(rng.normal(7.6, 0.7, n_genes))).astype(np.int64) + 200
    return _panel("rna", names, counts, planted, ids=ids,
                  extra={"gene_type": list(gene_types), "length": lengths})


def simulate_mirna(rng: np.random.Generator, factors: dict[str, np.ndarray], sites: np.ndarray,
                   n_mirnas: int, normal_mask: np.ndarray) -> OmicsPanel:
    """miRNA-seq counts; planted: mirna_program (15 miRNAs), immune (10)."""
    sizes = {"mirna_program": 15, "immune": 10}
    counts, planted = _expression(rng, factors, sites, n_mirnas, sizes, library=4e6,
                                  baseline=(0.0, 2.0), n_nuisance=2, normal_mask=normal_mask)
    names = []
    for i in range(n_mirnas):
        stem = 9000 + i // 3 if i % 5 else 9000 + i
        names.append(f"hsa-mir-{stem}-{i % 3 + 1}" if i % 5 else f"hsa-mir-{stem}")
    names = list(dict.fromkeys(names))
    k = 0
    while len(names) < n_mirnas:  # keep names unique whatever the count
        names.append(f"hsa-mir-{20000 + k}")
        k += 1
    cross = np.where(rng.random(n_mirnas) < 0.1, "Y", "N")
    return _panel("mirna", names[:n_mirnas], counts, planted, extra={"cross_mapped": list(cross)})


def simulate_methylation(rng: np.random.Generator, factors: dict[str, np.ndarray], sites: np.ndarray,
                         n_cpgs: int, normal_mask: np.ndarray) -> OmicsPanel:
    """Beta values (M-value model) with some missing probes; planted: meth_program (40), grade (20)."""
    n = sites.size
    group = rng.choice(3, n_cpgs, p=[0.45, 0.4, 0.15])
    base = np.select([group == 0, group == 1], [rng.normal(-3.0, 0.8, n_cpgs), rng.normal(2.5, 0.8, n_cpgs)],
                     rng.normal(0.0, 1.0, n_cpgs))
    m = np.tile(base, (n, 1)) + rng.normal(0, 0.35, (n, n_cpgs))
    site_shift = {s: rng.normal(0, 0.1, n_cpgs) for s in np.unique(sites)}
    m += np.stack([site_shift[s] for s in sites])
    for _ in range(2):
        idx = rng.choice(n_cpgs, n_cpgs // 10, replace=False)
        m[:, idx] += np.outer(rng.standard_normal(n), rng.normal(0, 0.4, idx.size))
    planted = _plant(rng, np.arange(n_cpgs), {"meth_program": 40, "grade": 20}, 0.7, 1.1)
    for factor, (idx, loads) in planted.items():
        z = np.where(normal_mask, 0.0, factors[factor])
        m[:, idx] += np.outer(z, loads)
    beta = 2.0**m / (1.0 + 2.0**m)
    flaky = rng.choice(n_cpgs, max(n_cpgs // 100, 1), replace=False)  # probes failing detection often
    planted_idx = np.concatenate([idx for idx, _ in planted.values()])
    flaky = np.setdiff1d(flaky, planted_idx)
    beta[:, flaky] = np.where(rng.random((n, flaky.size)) < 0.1, np.nan, beta[:, flaky])
    beta[rng.random(beta.shape) < 0.002] = np.nan
    names = [f"cg{90000000 + i * 37:08d}" for i in range(n_cpgs)]
    return _panel("methylation", names, beta, planted)


def _float_texts(values: np.ndarray) -> list[str]:
    """Shortest round-trip text of each float (what GDC files hold), formatted in C."""
    if values.size == 0:
        return []
    return repr(np.asarray(values, dtype=np.float64).tolist())[1:-1].split(", ")


def write_star_counts(path: Path, panel: OmicsPanel, row: int, rng: np.random.Generator) -> None:
    """One sample in the exact GDC "augmented STAR gene counts" layout (v36 header, N_* rows)."""
    counts = panel.values[row].astype(np.int64)
    lengths = np.asarray(panel.extra["length"], dtype=np.float64)
    second = np.round(counts * rng.uniform(0.93, 0.99)).astype(np.int64)
    first = np.round(counts * rng.uniform(0.005, 0.03)).astype(np.int64)
    rate = counts / lengths
    tpm = rate / rate.sum() * 1e6 if rate.sum() > 0 else rate
    fpkm = counts / lengths * 1e9 / max(counts.sum(), 1)
    coding = np.array([t == "protein_coding" for t in panel.extra["gene_type"]])
    upper = np.percentile(counts[coding & (counts > 0)], 75) if np.any(coding & (counts > 0)) else 1.0
    fpkm_uq = counts / lengths * 1e9 / (upper * coding.sum())
    total = int(counts.sum())
    lines = [
        "# gene-model: GENCODE v36",
        "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\ttpm_unstranded"
        "\tfpkm_unstranded\tfpkm_uq_unstranded",
    ]
    for label, share in (("N_unmapped", 0.02), ("N_multimapping", 0.08), ("N_noFeature", 0.3), ("N_ambiguous", 0.05)):
        value = int(total * share * rng.uniform(0.7, 1.3))
        lines.append(f"{label}\t\t\t{value}\t{value + int(total * 0.1 * rng.random())}\t{value}\t\t\t")
    ids, names, types = panel.ids or panel.names, panel.names, panel.extra["gene_type"]
    columns = zip(ids, names, types, map(str, counts.tolist()), map(str, first.tolist()), map(str, second.tolist()),
                  _float_texts(tpm), _float_texts(fpkm), _float_texts(fpkm_uq))
    lines.extend("\t".join(row) for row in columns)
    path.write_text("\n".join(lines) + "\n")


def write_mirna_quantification(path: Path, panel: OmicsPanel, row: int) -> None:
    """One sample in the GDC ``*.mirbase21.mirnas.quantification.txt`` layout."""
    counts = panel.values[row].astype(np.int64)
    total = max(int(counts.sum()), 1)
    cross = panel.extra["cross_mapped"]
    lines = ["miRNA_ID\tread_count\treads_per_million_miRNA_mapped\tcross-mapped"]
    rpm = _float_texts(counts / total * 1e6)
    lines.extend("\t".join(row) for row in zip(panel.names, map(str, counts.tolist()), rpm, cross))
    path.write_text("\n".join(lines) + "\n")


def write_methylation_beta(path: Path, panel: OmicsPanel, row: int) -> None:
    """One sample in the GDC level-3 beta layout: probe and beta, tab-separated, no header."""
    texts = _float_texts(np.round(panel.values[row], 12))
    lines = [f"{name}\t{'NA' if text == 'nan' else text}" for name, text in zip(panel.names, texts)]
    path.write_text("\n".join(lines) + "\n")
