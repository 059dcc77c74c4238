"""Optical signal: attenuation with depth, views, the phantom image, plots and the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import exopk
from exopk.cli import main
from exopk.plots.imaging import phantom_image

DOSE_PARTICLES = 1e10
OPTICAL = [n for n in exopk.observe.available_labels() if exopk.observe.load_label(n).modality == "optical"]


@pytest.fixture(scope="module")
def dir_result(params):
    return exopk.observe.simulate_label(
        params, exopk.IVBolus(dose_particles=DOSE_PARTICLES), [0.0, 1.0, 24.0, 72.0], "DiR"
    )


@pytest.mark.parametrize("name", OPTICAL)
def test_signal_falls_monotonically_with_depth(name):
    label = exopk.observe.load_label(name)
    depth_mm = np.linspace(0.0, 20.0, 201)

    t = exopk.observe.transmission(label, depth_mm)

    assert t[0] == 1.0
    assert np.all(np.diff(t) < 0)


def test_near_infrared_dye_penetrates_better_than_visible_labels():
    at_5_mm = {
        n: float(exopk.observe.transmission(exopk.observe.load_label(n), 5.0))
        for n in ("DiR", "DiD", "DiI", "Gluc-lactadherin")
    }

    assert at_5_mm["DiR"] > at_5_mm["DiD"] > at_5_mm["DiI"]
    assert at_5_mm["DiR"] > 100 * at_5_mm["Gluc-lactadherin"]


def test_attenuation_is_the_tabulated_value_at_a_tabulated_wavelength():
    imaging = exopk.observe.load_imaging("mouse")
    k = int(np.flatnonzero(imaging.wavelength_nm == 810.0)[0])

    assert imaging.attenuation_per_mm(810.0) == pytest.approx(imaging.mu_eff_per_mm[k])
    with pytest.raises(exopk.ParameterError, match="no tissue attenuation for 1500 nm"):
        imaging.attenuation_per_mm(1500.0)


def test_radiance_is_label_times_transmission_and_views_differ(dir_result):
    imaging = exopk.observe.load_imaging()
    for view in ("dorsal", "ventral"):
        depth = imaging.depth("liver", view)
        expected = dir_result.label_percent_id("liver") * exopk.observe.transmission(dir_result.label, depth)
        np.testing.assert_allclose(dir_result.radiance_au("liver", view), expected)
    # The liver lies ventrally, the kidneys dorsally (assumed depths in params/imaging/mouse.toml).
    assert dir_result.radiance_au("liver", "ventral")[1] > dir_result.radiance_au("liver", "dorsal")[1]
    assert dir_result.radiance_au("kidney", "dorsal")[1] > dir_result.radiance_au("kidney", "ventral")[1]


def test_deeper_organ_gives_less_radiance_for_the_same_label():
    imaging = exopk.observe.load_imaging()
    label = exopk.observe.load_label("DiD")
    deeper = {k: v + 1.0 for k, v in imaging.depth_mm["dorsal"].items()}
    t_shallow = exopk.observe.transmission(label, imaging.depth_mm["dorsal"]["liver"], imaging)
    t_deep = exopk.observe.transmission(label, deeper["liver"], imaging)

    assert t_deep < t_shallow


def test_nuclear_labels_have_no_optical_signal(params):
    result = exopk.observe.simulate_label(params, exopk.IVBolus(dose_particles=DOSE_PARTICLES), [0.0, 1.0], "I-125")
    with pytest.raises(exopk.InputError, match="not optical"):
        result.radiance_au("liver")
    with pytest.raises(exopk.InputError, match="not optical"):
        exopk.plots.plot_whole_body(result, [1.0])


def test_phantom_image_conserves_radiance_and_blurs_deeper_sources():
    pixel_mm = 0.25
    shallow, body, _ = phantom_image({"liver": 1.0}, "ventral", {"liver": 0.5}, pixel_mm=pixel_mm)
    deep, _, _ = phantom_image({"liver": 1.0}, "ventral", {"liver": 6.0}, pixel_mm=pixel_mm)

    assert shallow.sum() * pixel_mm**2 == pytest.approx(1.0, rel=0.02)  # little light outside the body
    assert deep.max() < shallow.max()  # the same light, spread wider
    assert np.all(shallow[~body] == 0.0)


def test_phantom_views_mirror_left_and_right():
    dorsal, _, _ = phantom_image({"spleen": 1.0}, "dorsal", {"spleen": 1.0})
    ventral, _, _ = phantom_image({"spleen": 1.0}, "ventral", {"spleen": 1.0})

    np.testing.assert_allclose(dorsal, ventral[:, ::-1], atol=1e-12 * dorsal.max())


def test_whole_body_and_apparent_vs_true_plots(dir_result, params, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = exopk.plots.plot_whole_body(dir_result, [1.0, 24.0])
    assert len(fig.axes) == 2 * 2 + 1  # two views x two times, and the colour bar
    plt.close(fig)
    with pytest.raises(exopk.InputError, match="image times must lie within"):
        exopk.plots.plot_whole_body(dir_result, [500.0])

    other = exopk.observe.simulate_label(params, exopk.IVBolus(dose_particles=DOSE_PARTICLES), dir_result.t_h, "In-111")
    fig = exopk.plots.plot_apparent_vs_true([dir_result, other], organs=("blood", "liver"))
    fig.savefig(tmp_path / "a.png")
    plt.close(fig)
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_bad_imaging_file_is_named(tmp_path):
    path = tmp_path / "img.toml"
    path.write_text('[attenuation]\nmu_eff_per_mm_at_700nm = { value = 0.3, source = "s" }\n', encoding="utf-8")
    with pytest.raises(exopk.ParameterError, match="at least two wavelengths"):
        exopk.observe.load_imaging(path)
    path.write_text('[attenuation]\nmu_at_700 = { value = 0.3, source = "s" }\n', encoding="utf-8")
    with pytest.raises(exopk.ParameterError, match="mu_eff_per_mm_at_<wavelength>nm"):
        exopk.observe.load_imaging(path)


# --- command line ----------------------------------------------------------------------------


def test_simulate_with_tracer_adds_label_rows(tmp_path, capsys):
    out = tmp_path / "sim.csv"

    status = main(["simulate", "--dose", "1e10", "--tracer", "DiR", "--t-end", "24", "--dt", "1", "--out", str(out)])

    assert status == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["time_h", "organ", "quantity", "value", "unit"]
    quantities = set(frame.quantity)
    assert {"percent_id", "label_percent_id", "label_free_percent_id", "radiance_dorsal_au"} <= quantities
    assert "label DiR" in capsys.readouterr().out


def test_simulate_without_tracer_has_no_label_rows(tmp_path):
    out = tmp_path / "sim.csv"
    main(["simulate", "--dose", "1e10", "--t-end", "2", "--dt", "1", "--out", str(out)])

    assert not pd.read_csv(out).quantity.str.startswith("label").any()


def test_image_command_writes_a_png(tmp_path, capsys):
    out = tmp_path / "img.png"

    status = main(["image", "--tracer", "DiD", "--times", "1,24", "--out", str(out)])

    assert status == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote image" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["simulate", "--dose", "1e10", "--tracer", "nope"], 2, "unknown label 'nope'"),
        (["simulate", "--dose", "1e10", "--tracer", "DiR", "--method", "ode"], 2, "needs the linear model"),
        (["image", "--tracer", "I-125", "--out", "x.png"], 2, "optical images need a dye or luciferase"),
        (["image", "--tracer", "DiR", "--times", "1,-2", "--out", "x.png"], 2, "`--times` must be finite"),
        (["image", "--tracer", "DiR"], 2, "--out"),
    ],
)
def test_bad_tracer_arguments_give_one_line(argv, status, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == status
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_bad_tracer_file_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[metadata]\nfamily = "radiolabel"\nmodality = "nuclear"\n', encoding="utf-8")

    assert main(["simulate", "--dose", "1e10", "--tracer", str(bad), "--t-end", "1"]) == 1
    assert "missing table [label]" in capsys.readouterr().err
