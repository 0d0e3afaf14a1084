"""``pmx evaluate PREDICTIONS``: score any model's predictions the way pmx scores its own."""

from __future__ import annotations

from pathlib import Path

import click

from pmx.cli.output import echo_json, echo_table


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


@click.command(context_settings={"show_default": True})
@click.argument("predictions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where km.png, metrics.json and report.md go [default: PREDICTIONS_evaluation/ next to the file].")
@click.option("--n-boot", default=1000, type=int, help="Bootstrap resamples for the C-index CI.")
@click.option("--seed", default=0, type=int, help="Seed of the bootstrap.")
def evaluate(predictions: Path, as_json: bool, out_dir: Path | None, n_boot: int, seed: int) -> None:
    """Metrics and a KM plot from a CSV/TSV/Parquet of time,event,risk (optionally fold).

    event is 1 for death and 0 for censored; higher risk means worse prognosis. With a fold
    column every fold is scored separately (mean +/- std) and the KM split uses each fold's
    median risk.
    """
    from pmx.evaluation.scoring import evaluate_predictions, read_predictions

    table = read_predictions(predictions)
    out = out_dir if out_dir is not None else predictions.with_name(f"{predictions.stem}_evaluation")
    result = evaluate_predictions(table, n_boot=n_boot, seed=seed, out_dir=out,
                                  source=str(predictions), title=predictions.name)
    if as_json:
        echo_json(result)
        return
    if result.get("folds"):
        echo_table(["fold", "c_index", "n_test", "events_test"],
                   [[f["fold"], _fmt(f["c_index"]), f["n_test"], f["events_test"]] for f in result["folds"]])
        click.echo(f"C-index per fold: {result['c_index_mean']:.4f} ± {result['c_index_std']:.4f}\n")
    lo, hi = result["c_index_ci"]
    click.echo(f"patients {result['n']}, events {result['events']}")
    click.echo(f"Harrell's C   {result['c_index']:.4f}  (95% CI {lo:.4f}-{hi:.4f}, {result['n_boot']} bootstrap resamples)")
    click.echo(f"Uno's C       {_fmt(result.get('uno_c'))}")
    click.echo(f"mean AUC(t)   {_fmt(result.get('auc_mean'))}")
    p = result.get("logrank_p")
    click.echo(f"log-rank p    {'-' if p is None else f'{p:.3g}'}  (median-risk split: high {result['n_high']}, low {result['n_low']})")
    for note in result.get("notes", []):
        click.echo(f"note: {note}")
    if result.get("km_plot"):
        click.echo(f"KM plot: {result['km_plot']}")
    click.echo(f"metrics: {result['metrics_json']}")
