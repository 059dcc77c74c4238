"""The web page's logic without a browser: form validation, results, reproduction, HTTP API (issue 16)."""

from __future__ import annotations

import io
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import exopk
from exopk.app import FormError, cli_commands, parse_form, python_code, run, scale_body_weight, start_in_thread
from exopk.app.jobs import JobManager, parse_population
from exopk.app.reproduce import regimen_csv, regimen_csv_name
from exopk.cli import build_parser, main

# A short grid keeps every run here fast; the page's default is 0-48 h every 0.05 h.
FAST = {"t_end_h": "24", "dt_h": "0.5", "times_h": "1, 4, 24"}


# --- form validation ------------------------------------------------------------------------


def test_defaults_give_the_mouse_iv_bolus_of_the_readme():
    spec = parse_form({"dose": "1e10"})
    assert (spec.species, spec.ev, spec.routes, spec.dose_particles, spec.label) == (
        "mouse",
        "msc",
        ("iv_bolus",),
        1e10,
        None,
    )
    assert spec.times_h == (0.5, 4.0, 24.0)


@pytest.mark.parametrize(
    ("form", "field", "match"),
    [
        ({"dose": "-5"}, "dose", "must be positive; got -5"),
        ({"dose": "lots"}, "dose", "must be a dose; got 'lots'"),
        ({"dose": ""}, "dose", "give a dose"),
        ({"dose": "50", "dose_unit": "ug"}, "particles_per_ug", "no default is assumed"),
        ({"dose": "1e10", "species": "dog"}, "species", "unknown species 'dog'"),
        ({"dose": "1e10", "routes": "iv_bolus,oral"}, "routes", "unknown route 'oral'"),
        ({"dose": "1e10", "routes": ""}, "routes", "at least one route"),
        ({"dose": "1e10", "routes": "iv_infusion"}, "infusion_duration_h", "needs the infusion duration"),
        ({"dose": "1e10", "routes": "local", "site": "heart_tissue"}, "site", "got 'heart_tissue'"),
        ({"dose": "1e10", "label": "GFP"}, "label", "unknown label 'GFP'"),
        ({"dose": "1e10", "times_h": "1, soon"}, "times_h", "got 'soon'"),
        ({"dose": "1e10", "times_h": "72", "t_end_h": "48"}, "times_h", "after the end of the simulation"),
        ({"dose": "1e10", "n_doses": "3"}, "interval_h", "3 doses need the time between doses"),
        ({"dose": "1e10", "n_doses": "2.5"}, "n_doses", "whole number"),
        ({"dose": "1e10", "dt_h": "0.0001"}, "dt_h", "at most"),
        ({"dose": "1e10", "body_weight_g": "0"}, "body_weight_g", "must be positive; got 0"),
        ({"dose": "1e10", "scenarios": "flu"}, "scenarios", "unknown scenario 'flu'"),
    ],
)
def test_bad_field_is_reported_by_name_with_value_and_rule(form, field, match):
    with pytest.raises(FormError, match=match) as info:
        parse_form(form)
    assert field in info.value.errors
    assert match in info.value.errors[field]


def test_all_bad_fields_are_reported_together():
    with pytest.raises(FormError) as info:
        parse_form({"dose": "-1", "label": "GFP", "times_h": "x"})
    assert set(info.value.errors) == {"dose", "label", "times_h"}
    assert isinstance(info.value, ValueError) and isinstance(info.value, exopk.ExopkError)


def test_dose_in_ug_uses_the_given_factor():
    spec = parse_form({"dose": "50", "dose_unit": "ug", "particles_per_ug": "2e9"})
    assert spec.dose_particles == exopk.particles_from_protein(dose_ug=50, particles_per_ug=2e9)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("broken.toml", "[organs.liver\nx = 1", "not valid TOML"),
        ("notes.txt", "hello", "not a .toml file"),
        ("empty.toml", "[metadata]\nname = 'x'\n", "neither a [changes] table"),
    ],
)
def test_unparseable_parameter_upload_is_reported_on_its_field(tmp_path, name, text, match):
    with pytest.raises(FormError) as info:
        parse_form({"dose": "1e10"}, {"params_file": {"name": name, "text": text}}, tmp_path)
    assert match in info.value.errors["params_file"]


def test_upload_with_an_unknown_parameter_is_reported_on_its_field(tmp_path):
    overlay = '[metadata]\nscenario = "x"\n[changes]\nliver_speed_per_h = { factor = 2.0, source = "test" }\n'
    spec = parse_form({"dose": "1e10", **FAST}, {"params_file": {"name": "mine.toml", "text": overlay}}, tmp_path)
    with pytest.raises(FormError) as info:
        run(spec)
    assert "liver_speed_per_h" in info.value.errors["params_file"]


def test_bad_regimen_upload_is_reported_on_its_field_by_file_name(tmp_path):
    table = "time_h,route,dose_particles\n0,iv_bolus,1e10\n24,oral,1e10\n"
    spec = parse_form({**FAST}, {"regimen_file": {"name": "plan.csv", "text": table}}, tmp_path)
    with pytest.raises(FormError) as info:
        run(spec)
    message = info.value.errors["regimen_file"]
    assert "plan.csv" in message and "oral" in message and str(tmp_path) not in message


def test_uploaded_scenario_overlay_changes_the_model(tmp_path):
    overlay = (
        '[metadata]\nscenario = "slow_liver"\n[changes]\nliver_uptake_vascular_per_h = { factor = 0.5, source = "t" }\n'
    )
    spec = parse_form({"dose": "1e10", **FAST}, {"params_file": {"name": "slow.toml", "text": overlay}}, tmp_path)
    output = run(spec)
    base = exopk.load_parameters()
    assert output.params["liver_uptake_vascular_per_h"] == 0.5 * base["liver_uptake_vascular_per_h"]


# --- results --------------------------------------------------------------------------------


def test_table_equals_simulate_at_the_sacrifice_times():
    spec = parse_form({"dose": "3e10", "routes": "iv_bolus,intranasal", "label": "In-111", **FAST})
    output = run(spec)
    params = exopk.load_parameters()
    times = np.array([1.0, 4.0, 24.0])
    for route, dose in (("iv_bolus", exopk.IVBolus), ("intranasal", exopk.Intranasal)):
        labelled = exopk.observe.simulate_label(params, dose(dose_particles=3e10), times, "In-111")
        rows = output.table[output.table["route"] == route]
        for organ in ("blood", "liver", "spleen", "brain"):
            got = rows[rows["organ"] == organ]
            np.testing.assert_allclose(got["ev_percent_id"], labelled.ev.percent_id(organ), rtol=1e-12)
            np.testing.assert_allclose(got["ev_percent_id_per_g"], labelled.ev.percent_id_per_g(organ), rtol=1e-12)
            expected = labelled.label_percent_id(organ, decay_corrected=True)
            np.testing.assert_allclose(got["label_percent_id"], expected, rtol=1e-12)
    assert "nasal_cavity" in set(output.table[output.table["route"] == "intranasal"]["organ"])
    assert output.comparison is not None
    direct = exopk.analysis.compare_routes(params, ["iv_bolus", "intranasal"], 3e10)
    assert output.comparison.targeting("intranasal")["dte_percent"] == pytest.approx(
        direct.targeting("intranasal")["dte_percent"], rel=1e-9
    )


def test_repeated_doses_are_the_explicit_regimen():
    spec = parse_form({"dose": "1e10", "n_doses": "3", "interval_h": "6", **FAST})
    output = run(spec)
    regimen = exopk.Regimen([exopk.IVBolus(dose_particles=1e10, t_h=t) for t in (0.0, 6.0, 12.0)])
    direct = exopk.simulate(exopk.load_parameters(), regimen, np.linspace(0, 24, 49))
    np.testing.assert_allclose(output.results["iv_bolus"].percent_id("liver"), direct.percent_id("liver"), rtol=1e-12)


def test_body_weight_follows_the_population_rule():
    params = exopk.load_parameters()
    scaled = scale_body_weight(params, 32.0)
    population = exopk.analysis.sample_population(params, 1, body_weight_g=[32.0])
    for name, values in population.variations.items():
        assert scaled[name] == values[0]
    assert scaled["body_weight_g"] == 32.0
    assert scaled["liver_uptake_vascular_per_h"] == params["liver_uptake_vascular_per_h"]


def test_tidy_frame_has_units_and_a_route_column():
    output = run(parse_form({"dose": "1e10", "routes": "iv_bolus,subcutaneous", "label": "DiR", **FAST}))
    frame = output.tidy_frame()
    assert list(frame.columns) == ["route", "time_h", "organ", "quantity", "value", "unit"]
    assert set(frame["route"]) == {"iv_bolus", "subcutaneous"}
    assert frame["unit"].notna().all() and "radiance_dorsal_au" in set(frame["quantity"])


def test_route_without_parameters_for_the_species_is_refused_on_routes(monkeypatch):
    spec = parse_form({"dose": "1e10", "routes": "intratracheal", **FAST})
    params = exopk.load_parameters()
    monkeypatch.setattr(type(params), "routes", property(lambda self: ("intranasal",)))
    with pytest.raises(FormError) as info:
        run(spec)
    assert "intratracheal" in info.value.errors["routes"]


# --- reproduction ---------------------------------------------------------------------------

REPRO_FORMS = [
    {"dose": "2e10", "routes": "iv_bolus,intranasal", "label": "DiR", "body_weight_g": "31.5", **FAST},
    {
        "dose": "40",
        "dose_unit": "ug",
        "particles_per_ug": "1.5e9",
        "routes": "iv_infusion",
        "infusion_duration_h": "0.75",
        "scenarios": "acute_kidney_injury",
        **FAST,
    },  # fmt: skip
    {
        "dose": "1e10",
        "n_doses": "3",
        "interval_h": "8",
        "routes": "local",
        "site": "kidney_vascular",
        "label": "I-125",
        **FAST,
    },  # fmt: skip
]


@pytest.mark.parametrize("form", REPRO_FORMS)
def test_generated_python_code_gives_the_same_numbers(form, tmp_path, monkeypatch):
    spec = parse_form(form)
    output = run(spec)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(python_code(spec), "reproduce.py", "exec"), namespace)  # noqa: S102 (the code under test)
    pd.testing.assert_frame_equal(namespace["table"], output.table, check_exact=False, rtol=1e-13)
    written = pd.read_csv(tmp_path / "exopk_result.csv")
    page = pd.read_csv(io.StringIO(output.tidy_frame().to_csv(index=False, float_format="%.10g")))
    pd.testing.assert_frame_equal(written, page)


@pytest.mark.parametrize("form", REPRO_FORMS)
def test_cli_commands_parse_with_the_real_parser_and_reproduce_the_csv(form, tmp_path, monkeypatch, capsys):
    spec = parse_form(form)
    output = run(spec)
    monkeypatch.chdir(tmp_path)
    for route in spec.routes:
        if spec.n_doses > 1:
            (tmp_path / regimen_csv_name(route)).write_text(regimen_csv(spec, route), encoding="utf-8")
    commands = cli_commands(spec)
    parser = build_parser()
    for command in commands:
        parser.parse_args(command)  # raises on any unknown option or bad value
        assert shlex.split(shlex.join(command)) == command
    for command, route in zip(commands, spec.routes, strict=False):
        assert command[0] == "simulate"
        assert main(command) == 0, capsys.readouterr().err
        cli = pd.read_csv(tmp_path / f"exopk_{route}.csv")
        page = output.tidy_frame()
        page = page[page["route"] == route].drop(columns="route").reset_index(drop=True)
        page = pd.read_csv(io.StringIO(page.to_csv(index=False, float_format="%.10g")))
        pd.testing.assert_frame_equal(cli, page)
    if len(spec.routes) >= 2:
        assert commands[-1][0] == "compare" and main(commands[-1]) == 0


def test_uploaded_files_are_named_in_the_reproduction(tmp_path):
    table = "time_h,route,dose_particles\n0,iv_bolus,1e10\n12,intraperitoneal,1e10\n"
    spec = parse_form({**FAST}, {"regimen_file": {"name": "plan.csv", "text": table}}, tmp_path)
    assert "--regimen plan.csv" in shlex.join(cli_commands(spec)[0])
    assert "Regimen.from_csv('plan.csv'" in python_code(spec)


# --- population jobs ------------------------------------------------------------------------


def _wait(job, seconds=60.0):
    deadline = time.monotonic() + seconds
    while job.state == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    return job.status()


def test_population_job_reports_progress_and_matches_simulate_population():
    spec = parse_form({"dose": "1e10", "t_end_h": "24", "dt_h": "1"})
    population = parse_population({"n_subjects": "300", "population_cv": "liver_uptake_vascular_per_h=40", "seed": "3"})
    job = JobManager().start(spec, population)
    status = _wait(job)
    assert status["state"] == "done", status["message"]
    assert status["done"] == status["total"] > 1 and status["fraction"] == 1.0
    params = exopk.load_parameters()
    direct = exopk.analysis.simulate_population(
        exopk.analysis.sample_population(params, 300, {"liver_uptake_vascular_per_h": 0.4}, seed=3),
        exopk.IVBolus(dose_particles=1e10),
        np.linspace(0, 24, 25),
        progress=False,
    )
    np.testing.assert_allclose(job.result.percent_id_percentiles, direct.percent_id_percentiles, rtol=1e-9, atol=1e-14)


def test_population_job_can_be_cancelled():
    spec = parse_form({"dose": "1e10", "t_end_h": "48", "dt_h": "0.05"})
    population = parse_population({"n_subjects": "20000", "population_cv": "liver_uptake_vascular_per_h=30"})
    manager = JobManager()
    job = manager.start(spec, population)
    manager.cancel(job.id)
    status = _wait(job)
    assert status["state"] == "cancelled"
    assert status["done"] < status["total"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"n_subjects": "1"}, "n_subjects"),
        ({"n_subjects": "20001"}, "n_subjects"),
        ({"population_cv": "liver=30"}, "population_cv"),
        ({"population_cv": "liver_uptake_vascular_per_h=-3"}, "population_cv"),
        ({"population_cv": "", "body_weight_cv_percent": ""}, "population_cv"),
        ({"body_weight_cv_percent": "lots"}, "body_weight_cv_percent"),
        ({"seed": "-1"}, "seed"),
    ],
)
def test_bad_population_fields_are_reported_by_name(form, field):
    with pytest.raises(FormError) as info:
        parse_population(form)
    assert field in info.value.errors


# --- the HTTP server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    srv, thread = start_in_thread(port=0)
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _request(server, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        server.url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_page_and_options_are_served(server):
    status, headers, body = _request(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'id="dose"' in body and b'id="error-dose"' in body
    status, _, body = _request(server, "/api/options")
    options = json.loads(body)
    assert {s["name"] for s in options["species"]} == set(exopk.available("species"))
    assert {"DiR", "In-111", "I-125", "NanoLuc"} <= {label["name"] for label in options["labels"]}


def test_server_answers_bad_input_by_field_and_keeps_running(server):
    status, _, body = _request(server, "/api/run", {"form": {"dose": "-1"}})
    assert status == 400 and json.loads(body) == {"errors": {"dose": "must be positive; got -1"}}
    upload = {"params_file": {"name": "broken.toml", "text": "[[["}}
    status, _, body = _request(server, "/api/run", {"form": {"dose": "1e10"}, "uploads": upload})
    assert status == 400 and "not valid TOML" in json.loads(body)["errors"]["params_file"]
    status, _, body = _request(server, "/api/run", raw=b"{not json")
    assert status == 400 and "not JSON" in json.loads(body)["error"]
    status, _, body = _request(server, "/api/run", raw=b"[1, 2]")
    assert status == 400
    assert _request(server, "/nowhere")[0] == 404
    assert _request(server, "/api/result/unknown/result.csv")[0] == 404
    status, _, body = _request(server, "/api/run", {"form": {"dose": "1e10", **FAST}})
    assert status == 200 and json.loads(body)["table"]["rows"]


def test_answer_reports_the_model_time_it_took(server):
    # Speed itself is measured by benchmarks/bench_app.py (DESIGN §4: tests never assert wall-clock time).
    form = {"dose": "1e10", "routes": "iv_bolus", "label": "DiR", **FAST}
    start = time.perf_counter()
    status, _, body = _request(server, "/api/run", {"form": form})
    wall_ms = 1000 * (time.perf_counter() - start)
    assert status == 200
    assert 0 < json.loads(body)["elapsed_ms"] <= wall_ms


def test_downloads_figures_and_code_are_served(server):
    form = {"dose": "1e10", "routes": "iv_bolus,intranasal", "label": "DiR", **FAST}
    status, _, body = _request(server, "/api/run", {"form": form})
    result = json.loads(body)
    base = result["base"]
    status, headers, csv = _request(server, base + "result.csv")
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    frame = pd.read_csv(io.BytesIO(csv))
    direct = exopk.observe.simulate_label(
        exopk.load_parameters(), exopk.IVBolus(dose_particles=1e10), np.linspace(0, 24, 49), "DiR"
    )
    expected = direct.to_frame()
    got = frame[frame["route"] == "iv_bolus"].drop(columns="route").reset_index(drop=True)
    np.testing.assert_allclose(got["value"], expected["value"], rtol=1e-9, atol=1e-300)
    assert list(got["quantity"]) == list(expected["quantity"])
    for name, magic in (("curves.svg", b"<?xml"), ("curves.png?scale=linear", b"\x89PNG"), ("image.png", b"\x89PNG"),
                        ("comparison.svg", b"<?xml")):  # fmt: skip
        status, _, data = _request(server, base + name)
        assert status == 200 and data.startswith(magic), name
    assert _request(server, base + "curves.pdf")[0] == 404
    assert _request(server, base + "curves.svg?scale=sideways")[0] == 400
    status, _, code = _request(server, base + "reproduce.py")
    assert code.decode() == result["python"]
    status, _, metrics = _request(server, base + "route_metrics.csv")
    assert "dte_percent" in metrics.decode()
    params = pd.read_csv(io.BytesIO(_request(server, base + "parameters.csv")[2]))
    assert {"name", "value", "unit", "source"} <= set(params.columns)
    assert params["source"].notna().all() and (params["source"].str.len() > 0).all()


def test_every_parameter_has_unit_and_source_and_limits_are_shown(server):
    status, _, body = _request(server, "/api/run", {"form": {"dose": "1e10", "species": "rat", **FAST}})
    result = json.loads(body)
    table = pd.DataFrame(result["parameters"]["rows"], columns=result["parameters"]["columns"])
    assert len(table) == len(exopk.load_parameters("rat").table())
    assert (table["source"].str.len() > 0).all() and (table["unit"].notna()).all()
    assert (table["extrapolated"].str.len() > 0).any()
    assert any("extrapolated" in note for note in result["notes"])
    assert len(result["limits"]) >= 4 and any("Brain" in limit for limit in result["limits"])


def test_population_endpoints_progress_and_cancel(server):
    body = {"form": {"dose": "1e10", "t_end_h": "24", "dt_h": "1", "n_subjects": "200",
                     "population_cv": "liver_uptake_vascular_per_h=30"}}  # fmt: skip
    status, _, answer = _request(server, "/api/population", body)
    assert status == 202
    job = json.loads(answer)["job"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = json.loads(_request(server, f"/api/jobs/{job}")[2])
        if state["state"] != "running":
            break
        time.sleep(0.05)
    assert state["state"] == "done"
    assert _request(server, f"/api/jobs/{job}/bands.png")[2].startswith(b"\x89PNG")
    bands = pd.read_csv(io.BytesIO(_request(server, f"/api/jobs/{job}/bands.csv")[2]))
    assert {"percent_id_p5", "percent_id_p95"} <= set(bands["quantity"])
    status, _, answer = _request(server, "/api/population", {"form": {"dose": "1e10", "n_subjects": "0"}})
    assert status == 400 and "n_subjects" in json.loads(answer)["errors"]
    assert _request(server, "/api/jobs/nope/cancel", {})[0] == 404


# --- binding and the command ----------------------------------------------------------------


def _other_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (may be none in a sandbox)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return sorted({info[4][0] for info in infos if not info[4][0].startswith("127.")})


def test_server_binds_only_to_loopback_by_default():
    assert build_parser().parse_args(["app"]).host == "127.0.0.1"
    srv, thread = start_in_thread(port=0)
    try:
        host, port = srv.server_address[:2]
        assert host == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        for address in _other_addresses():
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
                pass
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_app_command_prints_the_url_and_serves(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "BROWSER": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "exopk", "app", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=tmp_path,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("exopk app: serving http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[3]
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"exopk" in response.read()
    finally:
        process.terminate()
        process.communicate(timeout=10)  # waits and closes the pipes


@pytest.mark.parametrize(
    ("argv", "match"), [(["app", "--port", "99999"], "--port"), (["app", "--port", "x"], "--port")]
)
def test_app_command_refuses_bad_options_in_one_line(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and "Traceback" not in err


def test_app_command_reports_a_busy_port_in_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["app", "--port", str(port), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("exopk: error: cannot listen on 127.0.0.1:") and err.count("\n") == 1


def test_static_page_ships_inside_the_package():
    from importlib import resources

    assert resources.files("exopk.app").joinpath("static", "index.html").is_file()
    assert Path(exopk.app.__file__).parent.joinpath("static", "index.html").is_file()


def test_kept_alive_connection_survives_a_post_whose_body_the_endpoint_ignores(server):
    # Regression test: the cancel endpoint did not read its body, whose bytes then began the next request.
    import http.client

    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("POST", "/api/jobs/nope/cancel", body=b"{}", headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 404
        response.read()
        connection.request("GET", "/api/options")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["species"]
    finally:
        connection.close()
