"""The local web server: one static page and a small JSON API, on the standard library.

Endpoints (all under the server's URL):

``GET /``                                  the page (``static/index.html``)
``GET /api/options``                       species, EV files, scenarios, routes, labels
``POST /api/run``                          JSON ``{"form": {...}, "uploads": {...}}`` -> result, or 400 with
                                           ``{"errors": {field: message}}``
``GET /api/result/<id>/<file>``            ``result.csv``, ``percent_id_table.csv``, ``parameters.csv``,
                                           ``route_metrics.csv``, ``reproduce.py``, ``command.sh``,
                                           ``regimen_<route>.csv``, ``curves.svg|png`` (``?route=&scale=``),
                                           ``image.svg|png``, ``comparison.svg|png``
``POST /api/population``                   as /api/run plus population fields -> 202 ``{"job": id}``
``GET /api/jobs/<id>``                     progress: ``state, done, total, fraction, message``
``POST /api/jobs/<id>/cancel``             stop after the current chunk
``GET /api/jobs/<id>/bands.svg|png|csv``   the finished population's bands

A request that fails answers with a JSON error (400 for input, 404 unknown, 500 otherwise) and
the server goes on serving. It binds 127.0.0.1 unless told otherwise: the page runs code on
the user's machine and has no authentication.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from exopk.app import compute, figures, reproduce
from exopk.app.form import FormError, parse_form
from exopk.app.jobs import DEFAULT_CV, MAX_SUBJECTS, JobManager, parse_population
from exopk.errors import ExopkError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY_BYTES = 4_000_000
_KEEP_RESULTS = 16


class AppServer(ThreadingHTTPServer):
    """The exopk page's HTTP server; holds recent results, population jobs and an upload folder.

    Parameters
    ----------
    host : str, default "127.0.0.1"
        Interface to listen on; loopback unless you mean to share the page.
    port : int, default 8765
        0 picks a free port (see :attr:`url`).
    quiet : bool, default True
        Do not log each request on stderr.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, quiet: bool = True) -> None:
        self.quiet = quiet
        self.results: OrderedDict[str, compute.RunOutput] = OrderedDict()
        self.results_lock = threading.Lock()
        self.jobs = JobManager()
        self.workdir = Path(tempfile.mkdtemp(prefix="exopk-app-"))
        super().__init__((host, port), _Handler)  # closes its socket and calls server_close if bind fails

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8765/``."""
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def remember(self, output: compute.RunOutput) -> str:
        """Keep ``output`` for its downloads; returns its id (older results are forgotten)."""
        key = uuid.uuid4().hex[:12]
        with self.results_lock:
            self.results[key] = output
            while len(self.results) > _KEEP_RESULTS:
                self.results.popitem(last=False)
        return key

    def result(self, key: str) -> compute.RunOutput | None:
        """A kept result, or None."""
        with self.results_lock:
            return self.results.get(key)

    def server_close(self) -> None:
        """Stop population jobs, close the socket and remove uploaded files."""
        self.jobs.cancel_all()
        super().server_close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def make_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, quiet: bool = True) -> AppServer:
    """Create (but do not start) the server; see :class:`AppServer`."""
    return AppServer(host, port, quiet=quiet)


def start_in_thread(host: str = DEFAULT_HOST, port: int = 0) -> tuple[AppServer, threading.Thread]:
    """Start a server in a daemon thread (for tests and notebooks); stop it with ``server.shutdown()``."""
    server = make_server(host, port)
    thread = threading.Thread(target=server.serve_forever, name="exopk-app", daemon=True)
    thread.start()
    return server, thread


class _HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _page() -> bytes:
    return resources.files("exopk.app").joinpath("static", "index.html").read_bytes()


def options() -> dict:
    """What the page's choices are: species (with reference body weights), EVs, scenarios, routes, labels."""
    import exopk
    from exopk.app.form import PAGE_ROUTES
    from exopk.model.parameters import ORGANS

    species = []
    for name in exopk.available("species"):
        params = exopk.load_parameters(name)
        species.append({"name": name, "body_weight_g": params["body_weight_g"], "routes": list(params.routes)})
    labels = []
    for name in exopk.observe.available_labels():
        label = exopk.observe.load_label(name)
        labels.append({"name": name, "family": label.family, "modality": label.modality})
    return {
        "species": species,
        "ev": list(exopk.available("ev")),
        "scenarios": list(exopk.available("scenarios")),
        "routes": list(PAGE_ROUTES),
        "sites": [f"{o}_{s}" for o in ORGANS for s in ("vascular", "tissue")],
        "labels": labels,
        "default_cv": DEFAULT_CV,
        "max_subjects": MAX_SUBJECTS,
        "limits": list(compute.LIMITS),
    }


def _frame_json(frame) -> dict:
    """A DataFrame as ``{"columns": [...], "rows": [[...], ...]}`` (NaN -> null)."""
    import math

    rows = []
    for record in frame.itertuples(index=False, name=None):
        rows.append([None if isinstance(v, float) and not math.isfinite(v) else v for v in record])
    return {"columns": list(frame.columns), "rows": rows}


def result_json(key: str, output: compute.RunOutput) -> dict:
    """The JSON answer of ``POST /api/run``."""
    spec = output.spec
    base = f"/api/result/{key}/"
    routes = list(output.results)
    comparison = None
    if output.comparison is not None:
        metrics = output.comparison.metrics_frame()
        keep = metrics["quantity"].isin(
            ["bioavailability_fraction", "brain_to_blood_auc_ratio", "dte_percent", "dtp_percent"]
        ) | ((metrics["quantity"] == "auc_inf_percent_id_h") & metrics["organ"].isin(["blood", "brain_extravascular"]))
        comparison = _frame_json(metrics[keep].reset_index(drop=True))
    downloads = {
        "result.csv": "tidy CSV of the curves (route, time_h, organ, quantity, value, unit)",
        "percent_id_table.csv": "the %ID and %ID/g table",
        "parameters.csv": "every parameter with unit and source",
        "reproduce.py": "Python code that reproduces this result",
        "command.sh": "the exopk command lines that reproduce it",
    }
    if output.comparison is not None:
        downloads["route_metrics.csv"] = "route comparison: exact AUCs, bioavailability, DTE, DTP"
    if spec.n_doses > 1 and not spec.regimen_file:
        for route in spec.routes:
            downloads[reproduce.regimen_csv_name(route)] = f"regimen table of {route} (read by command.sh)"
    return {
        "id": key,
        "routes": routes,
        "elapsed_ms": round(1000 * output.elapsed_s, 1),
        "summary": (
            f"{output.params.species} ({output.params['body_weight_g']:g} g) / {output.params.ev}; "
            f"{', '.join(routes)}; {spec.n_doses} dose(s) of {spec.dose_particles:.4g} particles"
            if not spec.regimen_file
            else f"{output.params.species} / {output.params.ev}; regimen {spec.regimen_file}"
        ),
        "label": spec.label,
        "table": _frame_json(output.table),
        "comparison": comparison,
        "parameters": _frame_json(output.params.table()),
        "label_parameters": _frame_json(compute.label_frame(spec.label)) if spec.label else None,
        "notes": list(output.notes),
        "limits": list(compute.LIMITS),
        "image_note": figures.image_available(output),
        "cli": reproduce.cli_text(spec),
        "python": reproduce.python_code(spec),
        "base": base,
        "downloads": downloads,
    }


class _Handler(BaseHTTPRequestHandler):
    server: AppServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        if not self.server.quiet:
            super().log_message(format, *args)

    # --- plumbing -------------------------------------------------------------------------
    def _send(self, status: HTTPStatus, body: bytes, content_type: str, filename: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if filename:
            self.send_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, payload: dict) -> None:
        self._send(status, json.dumps(payload, allow_nan=False).encode(), "application/json")

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread: do not reuse the connection
            raise _HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request larger than {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _HttpError(HTTPStatus.BAD_REQUEST, f"request body is not JSON: {err}") from None
        if not isinstance(data, dict):
            raise _HttpError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
        return data

    def _guard(self, action) -> None:
        """Run ``action``; every failure becomes a JSON answer and the server keeps serving."""
        try:
            action()
        except FormError as err:
            self._json(HTTPStatus.BAD_REQUEST, {"errors": err.errors})
        except _HttpError as err:
            self._json(err.status, {"error": str(err)})
        except ExopkError as err:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(err)})
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as err:  # a bug: answer, and keep the server up
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": compute.describe_error(err)})

    # --- routes ---------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._guard(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._guard(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guard(self._post)

    def _get(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, _page(), "text/html; charset=utf-8")
        elif path == "/api/options":
            self._json(HTTPStatus.OK, options())
        elif path.startswith("/api/result/"):
            self._result_file(path.removeprefix("/api/result/"), query)
        elif path.startswith("/api/jobs/"):
            self._job_get(path.removeprefix("/api/jobs/"))
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        else:
            raise _HttpError(HTTPStatus.NOT_FOUND, f"no page {path!r}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        data = self._body()  # always read: on a kept-alive connection unread bytes would start the next request
        if path == "/api/run":
            spec = self._spec(data)
            output = compute.run(spec)
            key = self.server.remember(output)
            self._json(HTTPStatus.OK, result_json(key, output))
        elif path == "/api/population":
            errors: dict[str, str] = {}
            spec = population = None
            try:
                spec = self._spec(data)
            except FormError as err:
                errors.update(err.errors)
            try:
                population = parse_population(data.get("form") or {})
            except FormError as err:
                errors.update(err.errors)
            if errors:
                raise FormError(errors)
            assert spec is not None and population is not None
            job = self.server.jobs.start(spec, population)
            self._json(HTTPStatus.ACCEPTED, {"job": job.id, **job.status()})
        elif path.startswith("/api/jobs/") and path.endswith("/cancel"):
            cancelled = self.server.jobs.cancel(path.removeprefix("/api/jobs/").removesuffix("/cancel"))
            if cancelled is None:
                raise _HttpError(HTTPStatus.NOT_FOUND, "no such job (finished jobs are kept for a while only)")
            self._json(HTTPStatus.OK, cancelled.status())
        else:
            raise _HttpError(HTTPStatus.NOT_FOUND, f"no endpoint {path!r}")

    def _spec(self, data: dict):
        form = data.get("form") or {}
        uploads = data.get("uploads") or {}
        if not isinstance(form, dict) or not isinstance(uploads, dict):
            raise _HttpError(HTTPStatus.BAD_REQUEST, "`form` and `uploads` must be JSON objects")
        return parse_form(form, uploads, self.server.workdir / uuid.uuid4().hex[:8])

    def _result_file(self, rest: str, query: dict) -> None:
        key, _, name = rest.partition("/")
        output = self.server.result(key)
        if output is None:
            raise _HttpError(HTTPStatus.NOT_FOUND, "this result has expired; run the simulation again")
        spec = output.spec
        first = next(iter(output.results))
        text = "text/csv; charset=utf-8"
        if name == "result.csv":
            body = output.tidy_frame().to_csv(index=False, float_format="%.10g").encode()
            self._send(HTTPStatus.OK, body, text, name)
        elif name == "percent_id_table.csv":
            self._send(HTTPStatus.OK, output.table.to_csv(index=False, float_format="%.10g").encode(), text, name)
        elif name == "parameters.csv":
            self._send(HTTPStatus.OK, output.params.table().to_csv(index=False).encode(), text, name)
        elif name == "route_metrics.csv" and output.comparison is not None:
            body = output.comparison.metrics_frame().to_csv(index=False, float_format="%.10g").encode()
            self._send(HTTPStatus.OK, body, text, name)
        elif name == "reproduce.py":
            self._send(HTTPStatus.OK, reproduce.python_code(spec).encode(), "text/x-python; charset=utf-8", name)
        elif name == "command.sh":
            self._send(HTTPStatus.OK, reproduce.cli_text(spec).encode(), "text/x-shellscript; charset=utf-8", name)
        elif name.startswith("regimen_") and name.endswith(".csv") and name[8:-4] in spec.routes:
            self._send(HTTPStatus.OK, reproduce.regimen_csv(spec, name[8:-4]).encode(), text, name)
        elif "." in name and name.rsplit(".", 1)[0] in ("curves", "image", "comparison"):
            stem, fmt = name.rsplit(".", 1)
            if fmt not in figures.FORMATS:
                raise _HttpError(HTTPStatus.NOT_FOUND, f"figures come as {', '.join(figures.FORMATS)}; got {fmt!r}")
            route = query.get("route", first)
            if stem == "curves":
                body = figures.render(lambda: figures.curves_figure(output, route, query.get("scale", "log")), fmt)
            elif stem == "image":
                body = figures.render(lambda: figures.image_figure(output, route), fmt)
            else:
                body = figures.render(lambda: figures.comparison_figure(output), fmt)
            download = f"exopk_{stem}.{fmt}" if query.get("download") else None
            self._send(HTTPStatus.OK, body, figures.FORMATS[fmt], download)
        else:
            raise _HttpError(HTTPStatus.NOT_FOUND, f"no file {name!r} in this result")

    def _job_get(self, rest: str) -> None:
        job_id, _, name = rest.partition("/")
        job = self.server.jobs.get(job_id)
        if job is None:
            raise _HttpError(HTTPStatus.NOT_FOUND, "no such job (finished jobs are kept for a while only)")
        if not name:
            self._json(HTTPStatus.OK, job.status())
            return
        if job.state != "done":
            raise _HttpError(HTTPStatus.CONFLICT, f"the population run is {job.state}; no bands yet")
        if name == "bands.csv":
            body = job.result.to_frame().to_csv(index=False, float_format="%.10g").encode()
            self._send(HTTPStatus.OK, body, "text/csv; charset=utf-8", name)
        elif name in ("bands.svg", "bands.png"):
            fmt = name.rsplit(".", 1)[1]
            body = figures.render(lambda: figures.bands_figure(job.result), fmt)
            self._send(HTTPStatus.OK, body, figures.FORMATS[fmt])
        else:
            raise _HttpError(HTTPStatus.NOT_FOUND, f"no file {name!r} for this job")


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, open_browser: bool = True, quiet: bool = True) -> int:
    """Serve the page until interrupted (Ctrl-C); prints the URL.

    Parameters
    ----------
    host : str, default "127.0.0.1"
    port : int, default 8765
        0 picks a free port.
    open_browser : bool, default True
        Open the page in the default browser.
    quiet : bool, default True
        Do not log requests.

    Returns
    -------
    int
        Exit status (0).
    """
    server = make_server(host, port, quiet=quiet)
    print(f"exopk app: serving {server.url} (Ctrl-C stops it)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"exopk app: warning: listening on {host}: anyone who can reach it can run simulations here", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(0.3, webbrowser.open, args=(server.url,)).start()
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        print("exopk app: stopped", flush=True)
    finally:
        server.server_close()
    time.sleep(0)  # let daemon threads notice the cancel
    return 0
