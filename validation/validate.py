"""Validation report: every shipped dataset and every qualitative check, simulated with the defaults.

Writes ``docs/validation.md`` and one small figure per dataset (``docs/validation_<name>.png``).
Nothing is fitted here: the defaults are compared with the published record as they ship, and
failures are shown, not removed. Run in CI (``.ci/run``) before the documentation build; the
test suite checks that the committed report equals a fresh run.

Run:
    python validation/validate.py                 # write docs/validation.md and figures
    python validation/validate.py --out-dir DIR   # write them elsewhere
    python validation/validate.py --no-figures    # the Markdown only
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

import exopk
from exopk.analysis.compare import route_dose
from exopk.analysis.observations import check_observations, predict

ROOT = Path(__file__).resolve().parents[1]
DOSE_PARTICLES = 1e10  # the model is linear at this dose: %ID does not depend on it


def _fmt(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"


def _dataset_predictions(dataset) -> np.ndarray:
    """Default-model value of each row of a dataset, in the unit of its ``unit`` column."""
    meta = dataset.metadata
    scenarios = [dataset.scenario] if dataset.scenario else []
    params = exopk.load_parameters(meta["species"], "msc", scenarios=scenarios)
    dose = route_dose(meta["route"], DOSE_PARTICLES)
    obs = check_observations(dataset.data, where=dataset.name)
    ratio = (obs["quantity"] == "ratio_to_control").to_numpy()
    pred = np.full(len(obs), np.nan)
    if (~ratio).any():
        pred[~ratio] = predict(params, dose, obs[~ratio], label=dataset.label)
    if ratio.any():
        # ratio of the scenario model to the healthy model, brain (or organ) extravascular %ID
        healthy = exopk.load_parameters(meta["species"], "msc")
        as_amounts = obs[ratio].assign(quantity="extravascular_percent_id", unit="%ID")
        pred[ratio] = predict(params, dose, as_amounts, label=dataset.label) / predict(
            healthy, dose, as_amounts, label=dataset.label
        )
    factor = obs["scale_to_model"].to_numpy()
    return pred / np.where(np.isnan(factor), 1.0, factor)


def dataset_section(dataset, out_dir: Path | None, write: bool = True) -> tuple[list[str], dict]:
    meta = dataset.metadata
    data = dataset.data
    pred = _dataset_predictions(dataset)
    fold = pred / data["value"].to_numpy(dtype=float)
    within = float(np.mean((fold >= 0.5) & (fold <= 2.0)))
    lines = [
        f"### {meta['title']}",
        "",
        f"Dataset `{dataset.name}` — {meta['citation']}. Obtained: {meta['obtained']}. Species {meta['species']}, "
        f"route {meta['route']}, label {meta['label']}, scenario {meta['scenario']}. EVs: {meta['ev']}.",
        "",
        "| time (h) | organ | quantity | observed | model | unit | fold error (model/observed) | within 2-fold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (_, row), p, f in zip(data.iterrows(), pred, fold, strict=True):
        ok = "yes" if 0.5 <= f <= 2.0 else "**no**"
        lines.append(
            f"| {row['time_h']:g} | {row['organ']} | {row['quantity']} | {row['value']:g} | {_fmt(p)} | "
            f"{row['unit']} | {_fmt(f)} | {ok} |"
        )
    lines += ["", f"Share within 2-fold: **{100 * within:.0f} %** ({int(round(within * len(fold)))} of {len(fold)})."]
    wrong = [(row, f) for (_, row), f in zip(data.iterrows(), fold, strict=True) if not 0.5 <= f <= 2.0]
    if wrong:
        parts = []
        for row, f in wrong:
            how = f"over-predicts {f:.3g}-fold" if f > 1 else f"under-predicts {1 / f:.3g}-fold"
            parts.append(f"{row['organ']} {row['quantity']} at {row['time_h']:g} h: the model {how}")
        lines += ["", "What the model gets wrong: " + "; ".join(parts) + "."]
    else:
        lines += ["", "Every point is within 2-fold."]
    lines += ["", f"Caveats (from the dataset header): {meta['notes']}", ""]
    if out_dir is not None:
        figure = _figure(dataset, pred, out_dir) if write else out_dir / f"validation_{dataset.name}.png"
        lines += [f"![{dataset.name}: observed vs model]({figure.name})", ""]
    return lines, {"name": dataset.name, "n": len(fold), "within": within, "fold": fold}


def _figure(dataset, pred, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = dataset.data
    labels = [f"{o}\n{t:g} h" for o, t in zip(data["organ"], data["time_h"], strict=True)]
    x = np.arange(len(data))
    fig, ax = plt.subplots(figsize=(max(3.0, 0.9 * len(data) + 1.5), 2.8))
    ax.bar(x - 0.2, data["value"], 0.4, label="observed")
    ax.bar(x + 0.2, pred, 0.4, label="model (defaults)")
    ax.set_yscale("log")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel(f"{data['quantity'].iloc[0]} ({data['unit'].iloc[0]})", fontsize=7)
    ax.set_title(dataset.name, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=6)
    fig.tight_layout()
    path = out_dir / f"validation_{dataset.name}.png"
    fig.savefig(path, dpi=70, metadata={"Software": None})
    plt.close(fig)
    return path


def qualitative_checks() -> list[tuple[str, str, str, bool]]:
    """(statement, source, model value, passes) for the qualitative literature statements."""
    checks = []
    mouse = exopk.load_parameters("mouse", "msc")
    iv = exopk.IVBolus(dose_particles=DOSE_PARTICLES)
    t = np.linspace(0.0, 24.0, 2401)
    result = exopk.simulate(mouse, iv, t)

    b = exopk.simulate(mouse, iv, [0.0, 1 / 60, 5 / 60]).percent_id("blood")
    half_life_min = 4.0 * math.log(2) / math.log(b[1] / b[2])
    checks.append(
        (
            "Blood half-life of IV EVs < 10 min (all tracers), mouse",
            "Lázaro-Ibáñez et al. 2021 ACS Nano (literature.md §7 DS5)",
            f"initial blood half-life (1-5 min) {half_life_min:.3g} min",
            half_life_min < 10.0,
        )
    )

    peaks = {
        organ: float(t[int(np.argmax(result.percent_id(organ)))]) for organ in ("liver", "kidney", "lung", "spleen")
    }
    for organ, window, text in (
        ("liver", (0.0, 1.0), "within 1 h"),
        ("kidney", (0.0, 1.0), "within 1 h"),
        ("lung", (2.0, 12.0), "at 2-12 h"),
        ("spleen", (2.0, 12.0), "at 2-12 h"),
    ):
        ok = window[0] <= peaks[organ] <= window[1]
        checks.append(
            (
                f"Small EVs: {organ} %ID peaks {text}, IV",
                "Kang et al. 2021 J Extracell Vesicles 10:e12085, pooled review (literature.md §7 DS7)",
                f"{organ} peak at {peaks[organ]:.3g} h",
                ok,
            )
        )
    for when in (1.0, 4.0):
        k = int(np.searchsorted(t, when))
        amounts = {o: float(result.percent_id(o)[k]) for o in ("lung", "liver", "spleen", "kidney", "brain")}
        top = max(amounts, key=amounts.get)
        checks.append(
            (
                f"Liver is the organ with most small EVs at {when:g} h, IV",
                "Kang et al. 2021 (DS7); Morishita et al. 2015 (liver 28 of 36.6 %ID listed)",
                f"largest organ: {top} ({amounts[top]:.3g} %ID)",
                top == "liver",
            )
        )

    def at(label, organ, when):
        return float(exopk.observe.simulate_label(mouse, iv, [0.0, when], label).label_percent_id(organ)[-1])

    nano, indium = at("NanoLuc", "lung", 4.0), at("In-111", "lung", 4.0)
    checks.append(
        (
            "NanoLuc-CD63 signal shows more lung accumulation than 111In (same EVs), IV",
            "Lázaro-Ibáñez et al. 2021 (literature.md §7 DS5)",
            f"lung label %ID at 4 h: NanoLuc {nano:.3g}, In-111 {indium:.3g}",
            nano > indium,
        )
    )

    fractions = {}
    for species in ("mouse",):
        p = exopk.load_parameters(species, "msc")
        rates = [
            p[f"intranasal_{k}"]
            for k in ("nose_to_brain_per_h", "absorption_per_h", "mucociliary_clearance_per_h", "degradation_per_h")
        ]
        fractions[species] = 100.0 * rates[1] / sum(rates)
    checks.append(
        (
            "2-4 % of an intranasal dose enters the blood (analogue: [125I]-albumin), mouse",
            "PMID 25027317 (literature-2.md §1b); also the intranasal calibration target (3 %)",
            f"absorbed fraction {fractions['mouse']:.3g} %",
            2.0 <= fractions["mouse"] <= 4.0,
        )
    )

    human = exopk.load_parameters("human", "msc")
    hb = exopk.simulate(human, iv, [0.0, 1 / 60, 5 / 60]).percent_id("blood")
    human_half = 4.0 * math.log(2) / math.log(hb[1] / hb[2])
    checks.append(
        (
            "Primates clear IV EVs more slowly than mice (longer circulation)",
            "Driedonks et al. 2022 J Extracell Vesicles, macaque (literature.md §7 DS8)",
            f"initial blood half-life: human {human_half:.3g} min vs mouse {half_life_min:.3g} min",
            human_half > half_life_min,
        )
    )
    return checks


def render(out_dir: Path | None, write_figures: bool = True) -> str:
    """The report as Markdown; figures go to ``out_dir`` (none if None; named but not written if not
    ``write_figures``)."""
    lines = [
        "# Validation against the published record",
        "",
        "Generated by `validation/validate.py` (run in CI before the documentation build; do not edit by hand).",
        "Every shipped dataset (`exopk datasets list`) is simulated with the **default** parameters as they ship",
        "(species, route, label and scenario from the dataset header; nothing is fitted here), and every",
        "qualitative statement of the literature survey that the model can be held to is checked. Failures are",
        "shown, not removed. Fold error = model / observed; a point is *within 2-fold* if it lies in [0.5, 2].",
        "",
        "Read the numbers with their provenance: two of the three datasets are also calibration targets of",
        "the defaults (their agreement is a fit, not a test), and two are analogues (IgG, albumin), not EVs.",
        "",
    ]
    sections, summaries = [], []
    for name in exopk.io.list_datasets():
        section, summary = dataset_section(exopk.io.load_dataset(name), out_dir, write_figures)
        sections += section
        summaries.append(summary)
    n_all = sum(s["n"] for s in summaries)
    within_all = sum(s["within"] * s["n"] for s in summaries) / n_all
    lines += ["## Summary", "", "| dataset | points | within 2-fold | fold errors |", "|---|---|---|---|"]
    for s in summaries:
        lines.append(
            f"| `{s['name']}` | {s['n']} | {100 * s['within']:.0f} % | {', '.join(_fmt(f) for f in s['fold'])} |"
        )
    checks = qualitative_checks()
    n_pass = sum(c[3] for c in checks)
    lines += [
        "",
        f"All datasets: **{100 * within_all:.0f} %** of {n_all} points within 2-fold. "
        f"Qualitative checks: **{n_pass} of {len(checks)}** pass.",
        "",
        "## Datasets",
        "",
    ]
    lines += sections
    lines += [
        "## Qualitative checks",
        "",
        "Statements without numbers (not datasets): the model is held to them as they are stated.",
        "",
        "| statement | source | model | result |",
        "|---|---|---|---|",
    ]
    for statement, source, value, ok in checks:
        lines.append(f"| {statement} | {source} | {value} | {'pass' if ok else '**fail**'} |")
    lines += [
        "",
        "## Not validated",
        "",
        "No stored source gives EV %ID or %ID/g after intranasal, intraperitoneal or subcutaneous dosing,",
        "an EV injured:healthy organ ratio, or numeric EV blood kinetics in rats or humans (literature.md",
        "§6, literature-2.md §4); those parts of the model rest on analogues and assumptions listed in the",
        "parameter tables.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs", help="where to write validation.md")
    parser.add_argument("--no-figures", action="store_true", help="write the Markdown only")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    text = render(None if args.no_figures else args.out_dir)
    (args.out_dir / "validation.md").write_text(text, encoding="utf-8")
    print(f"wrote {args.out_dir / 'validation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
