"""The page's form: read, validate and turn into a model, regimens and a label.

Everything here is plain Python (no HTTP), so that the page's logic is tested without a browser.
A bad field is reported by name (the ``id`` of the input on the page), so the page can put the
message next to it; several bad fields are reported together.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exopk.errors import ExopkError

#: Routes the page offers (``local`` needs a site).
PAGE_ROUTES = ("iv_bolus", "iv_infusion", "intranasal", "intraperitoneal", "subcutaneous", "intratracheal", "local")
#: Largest upload accepted (bytes): parameter files and regimen tables are a few kB.
MAX_UPLOAD_BYTES = 1_000_000
#: Most output times of one run (the CLI allows more; a page should answer within a second).
MAX_TIMES = 20_001
#: Most doses of a repeated regimen.
MAX_DOSES = 1000

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class FormError(ExopkError, ValueError):
    """One or more fields of the page's form are invalid.

    Attributes
    ----------
    errors : dict of str to str
        Message per field name (the ``id`` of the input on the page).
    """

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"`{name}`: {message}" for name, message in self.errors.items()))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """A validated request: what to simulate and what to show.

    Parameters
    ----------
    species : str
        Bundled species name.
    body_weight_g : float or None
        Body weight (g); None keeps the species' reference weight.
    ev : str
        Bundled EV preparation, or the file name of an uploaded EV parameter file.
    scenarios : tuple of str
        Bundled scenario names or file names of uploaded overlays, applied in order.
    routes : tuple of str
        One or more routes (:data:`PAGE_ROUTES`); ignored when ``regimen_file`` is given.
    dose_particles : float
        Dose per administration (particles), after any µg conversion.
    dose_value, dose_unit, particles_per_ug
        The dose as typed (``dose_unit`` ``"particles"`` or ``"ug"``).
    n_doses : int
        Number of doses of each route (1 = a single dose).
    interval_h : float or None
        Time between repeated doses (h).
    infusion_duration_h : float or None
        Duration of an ``iv_infusion`` (h).
    site : str or None
        ``<organ>_<vascular|tissue>`` for route ``local``.
    regimen_file : str or None
        File name of an uploaded regimen table (replaces routes, dose and repeats).
    label : str or None
        Bundled label name, or None for intact EVs only.
    times_h : tuple of float
        Sacrifice / imaging times (h) of the %ID table and the images.
    t_end_h, dt_h : float
        Curve grid 0, dt, ..., t_end (h).
    files : dict of str to Path
        Uploaded files by their (sanitised) file name, as saved on the server.
    """

    species: str = "mouse"
    body_weight_g: float | None = None
    ev: str = "msc"
    scenarios: tuple[str, ...] = ()
    routes: tuple[str, ...] = ("iv_bolus",)
    dose_particles: float = 1e10
    dose_value: float = 1e10
    dose_unit: str = "particles"
    particles_per_ug: float | None = None
    n_doses: int = 1
    interval_h: float | None = None
    infusion_duration_h: float | None = None
    site: str | None = None
    regimen_file: str | None = None
    label: str | None = None
    times_h: tuple[float, ...] = (0.5, 4.0, 24.0)
    t_end_h: float = 48.0
    dt_h: float = 0.05
    files: Mapping[str, Path] = field(default_factory=dict)

    @property
    def n_times(self) -> int:
        """Number of curve output times."""
        return int(round(self.t_end_h / self.dt_h)) + 1


def _text(form: Mapping[str, Any], name: str, default: str = "") -> str:
    value = form.get(name, default)
    if value is None:
        return default
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value).strip()


def _number(form, name: str, errors: dict, *, default=None, positive=True, allow_zero=False, what="a number"):
    """A finite number from field ``name`` (blank -> ``default``); records a message on failure."""
    text = _text(form, name)
    if text == "":
        if default is None and name not in errors:
            return None
        return default
    try:
        value = float(text.replace("×10^", "e").replace(" ", ""))
    except ValueError:
        errors[name] = f"must be {what}; got {text!r}"
        return None
    if not math.isfinite(value):
        errors[name] = f"must be finite; got {text!r}"
        return None
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        rule = "zero or positive" if allow_zero else "positive"
        errors[name] = f"must be {rule}; got {text}"
        return None
    return value


def _save_upload(upload: Mapping[str, Any], field_name: str, workdir: Path, errors: dict) -> tuple[str, Path] | None:
    """Write an uploaded text file to ``workdir``; returns (file name, path) or None (message recorded)."""
    name = str(upload.get("name") or "").strip()
    text = upload.get("text")
    if not name or not isinstance(text, str):
        errors[field_name] = "the upload is empty; choose a file"
        return None
    if len(text.encode("utf-8", errors="replace")) > MAX_UPLOAD_BYTES:
        errors[field_name] = (
            f"{name!r} is larger than {MAX_UPLOAD_BYTES // 1000} kB; parameter and regimen files are a few kB"
        )
        return None
    safe = _SAFE_NAME.sub("_", Path(name).name).lstrip(".") or "upload"
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / safe
    path.write_text(text, encoding="utf-8")
    return safe, path


def _upload_kind(path: Path, name: str, errors: dict) -> str | None:
    """``"ev"`` or ``"scenario"`` for an uploaded TOML file, from its top-level tables."""
    if not name.endswith(".toml"):
        errors["params_file"] = (
            f"{name!r} is not a .toml file; upload an EV parameter file or a scenario overlay (.toml)"
        )
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        errors["params_file"] = f"{name!r} is not valid TOML: {err}"
        return None
    if "changes" in data:
        return "scenario"
    if "organs" in data or "allometry" in data:
        return "ev"
    errors["params_file"] = (
        f"{name!r} has neither a [changes] table (scenario overlay) nor [organs.*] tables (EV parameter file); "
        f"found tables: {', '.join(sorted(data)) or 'none'}"
    )
    return None


def parse_form(
    form: Mapping[str, Any], uploads: Mapping[str, Any] | None = None, workdir: Path | None = None
) -> RunSpec:
    """Check the page's fields and return a :class:`RunSpec`.

    Parameters
    ----------
    form : Mapping
        Field values as the page sends them (strings, or lists for multiple choices):
        ``species``, ``body_weight_g``, ``ev``, ``scenarios``, ``routes``, ``dose``,
        ``dose_unit``, ``particles_per_ug``, ``n_doses``, ``interval_h``,
        ``infusion_duration_h``, ``site``, ``label``, ``times_h`` (comma-separated h),
        ``t_end_h``, ``dt_h``.
    uploads : Mapping, optional
        ``params_file`` and/or ``regimen_file``: ``{"name": file name, "text": content}``.
    workdir : Path, optional
        Where uploads are saved (needed when there are uploads).

    Returns
    -------
    RunSpec

    Raises
    ------
    FormError
        Every invalid field, each with its message.
    """
    from exopk.model.parameters import available
    from exopk.observe.labels import available_labels

    uploads = dict(uploads or {})
    errors: dict[str, str] = {}
    files: dict[str, Path] = {}

    species = _text(form, "species", "mouse")
    if species not in available("species"):
        errors["species"] = f"unknown species {species!r}; expected one of: {', '.join(available('species'))}"
    body_weight_g = _number(form, "body_weight_g", errors, what="a body weight in g")

    ev = _text(form, "ev", "msc") or "msc"
    scenarios = [s for s in (x.strip() for x in _text(form, "scenarios").split(",")) if s]
    for name in scenarios:
        if name not in available("scenarios"):
            errors["scenarios"] = f"unknown scenario {name!r}; expected some of: {', '.join(available('scenarios'))}"
    if uploads.get("params_file"):
        if workdir is None:
            raise ValueError("`workdir` is needed to save uploads")
        saved = _save_upload(uploads["params_file"], "params_file", workdir, errors)
        if saved is not None:
            kind = _upload_kind(saved[1], saved[0], errors)
            if kind is not None:
                files[saved[0]] = saved[1]
                if kind == "ev":
                    ev = saved[0]
                else:
                    scenarios.append(saved[0])
    if ev not in files and ev not in available("ev"):
        errors["ev"] = f"unknown EV preparation {ev!r}; expected one of: {', '.join(available('ev'))}, or upload a file"

    regimen_file = None
    if uploads.get("regimen_file"):
        if workdir is None:
            raise ValueError("`workdir` is needed to save uploads")
        saved = _save_upload(uploads["regimen_file"], "regimen_file", workdir, errors)
        if saved is not None:
            if not saved[0].endswith(".csv"):
                errors["regimen_file"] = f"{saved[0]!r} is not a .csv file; expected a regimen table (CSV)"
            else:
                files[saved[0]] = saved[1]
                regimen_file = saved[0]

    routes = tuple(r for r in (x.strip() for x in _text(form, "routes", "iv_bolus").split(",")) if r)
    if regimen_file is None:
        if not routes:
            errors["routes"] = "choose at least one route"
        for route in routes:
            if route not in PAGE_ROUTES:
                errors["routes"] = f"unknown route {route!r}; expected some of: {', '.join(PAGE_ROUTES)}"
        if len(set(routes)) != len(routes):
            errors["routes"] = f"a route is listed twice: {', '.join(routes)}"

    dose_unit = _text(form, "dose_unit", "particles") or "particles"
    if dose_unit not in ("particles", "ug"):
        errors["dose_unit"] = f"must be 'particles' or 'ug'; got {dose_unit!r}"
    dose_value = _number(form, "dose", errors, what="a dose")
    particles_per_ug = _number(form, "particles_per_ug", errors, what="particles per µg")
    if regimen_file is None and dose_value is None and "dose" not in errors:
        errors["dose"] = "give a dose (particles, or µg with a particles-per-µg factor)"
    needs_factor = dose_unit == "ug"
    if needs_factor and particles_per_ug is None and "particles_per_ug" not in errors:
        errors["particles_per_ug"] = (
            "a dose in µg needs the particles per µg of your preparation (no default is assumed)"
        )
    dose_particles = None
    if dose_value is not None and "dose_unit" not in errors:
        dose_particles = dose_value * particles_per_ug if needs_factor and particles_per_ug else dose_value

    n_doses_value = _number(form, "n_doses", errors, default=1.0, what="a whole number of doses")
    n_doses = 1
    if n_doses_value is not None:
        if n_doses_value != int(n_doses_value) or not 1 <= n_doses_value <= MAX_DOSES:
            errors["n_doses"] = f"must be a whole number from 1 to {MAX_DOSES}; got {_text(form, 'n_doses')}"
        else:
            n_doses = int(n_doses_value)
    interval_h = _number(form, "interval_h", errors, what="an interval in h")
    if n_doses > 1 and interval_h is None and "interval_h" not in errors:
        errors["interval_h"] = f"{n_doses} doses need the time between doses (h)"

    infusion_duration_h = _number(form, "infusion_duration_h", errors, what="a duration in h")
    if "iv_infusion" in routes and regimen_file is None and infusion_duration_h is None:
        errors.setdefault("infusion_duration_h", "route iv_infusion needs the infusion duration (h)")
    if n_doses > 1 and interval_h and infusion_duration_h and "iv_infusion" in routes:
        if infusion_duration_h > interval_h:
            errors["infusion_duration_h"] = (
                f"an infusion of {infusion_duration_h:g} h does not fit between doses {interval_h:g} h apart"
            )
    site = _text(form, "site") or None
    if "local" in routes and regimen_file is None:
        from exopk.model.parameters import ORGANS

        organ, _, space = (site or "").rpartition("_")
        if organ not in ORGANS or space not in ("vascular", "tissue"):
            errors["site"] = (
                "route local needs a site <organ>_<vascular|tissue> with organ one of "
                f"{', '.join(ORGANS)}; got {site!r}"
            )

    label = _text(form, "label") or None
    if label in ("none", "intact EVs only"):
        label = None
    if label is not None and label.lower() not in {n.lower() for n in available_labels()}:
        errors["label"] = f"unknown label {label!r}; expected one of: {', '.join(available_labels())}"
    elif label is not None:
        label = next(n for n in available_labels() if n.lower() == label.lower())

    t_end_h = _number(form, "t_end_h", errors, default=48.0, what="an end time in h")
    dt_h = _number(form, "dt_h", errors, default=0.05, what="a time step in h")
    if t_end_h is not None and dt_h is not None:
        if dt_h > t_end_h:
            errors["dt_h"] = f"the step ({dt_h:g} h) must not exceed the end time ({t_end_h:g} h)"
        elif round(t_end_h / dt_h) + 1 > MAX_TIMES:
            errors["dt_h"] = (
                f"{t_end_h:g} h every {dt_h:g} h is {round(t_end_h / dt_h) + 1:,} times; at most {MAX_TIMES:,}"
            )

    times: list[float] = []
    for part in (p.strip() for p in _text(form, "times_h", "0.5, 4, 24").replace(";", ",").split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            errors["times_h"] = f"times must be numbers in h, separated by commas; got {part!r}"
            break
        if not math.isfinite(value) or value < 0:
            errors["times_h"] = f"times must be zero or positive (h); got {part}"
            break
        times.append(value)
    if not times and "times_h" not in errors:
        errors["times_h"] = "give at least one sacrifice or imaging time (h)"
    if t_end_h is not None and times and max(times) > t_end_h and "times_h" not in errors:
        errors["times_h"] = f"{max(times):g} h is after the end of the simulation ({t_end_h:g} h); raise the end time"

    if errors:
        raise FormError(errors)
    assert dose_particles is not None or regimen_file is not None
    return RunSpec(
        species=species,
        body_weight_g=body_weight_g,
        ev=ev,
        scenarios=tuple(scenarios),
        routes=routes if regimen_file is None else (),
        dose_particles=float(dose_particles) if dose_particles is not None else math.nan,
        dose_value=float(dose_value) if dose_value is not None else math.nan,
        dose_unit=dose_unit,
        particles_per_ug=particles_per_ug,
        n_doses=n_doses,
        interval_h=interval_h if n_doses > 1 else None,
        infusion_duration_h=infusion_duration_h if "iv_infusion" in routes else None,
        site=site if "local" in routes else None,
        regimen_file=regimen_file,
        label=label,
        times_h=tuple(sorted(set(times))),
        t_end_h=float(t_end_h),
        dt_h=float(dt_h),
        files=files,
    )
