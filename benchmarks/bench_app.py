"""Response times of the web page's server (`exopk app`), against the bare library call in the same process.

Times each request end to end over HTTP on 127.0.0.1 (JSON encoding, tables, reproduction code),
median and worst of several repeats, beside ``exopk.simulate`` / ``exopk.observe.simulate_label`` for the
same run. Target (issue 16): a single simulation answered within 1 s.

    python benchmarks/bench_app.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request

import numpy as np

import exopk
from exopk.app import start_in_thread


def _post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def _timed(call, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    repeats = 3 if parser.parse_args().quick else 10

    server, thread = start_in_thread(port=0)
    base = server.url.rstrip("/")
    params = exopk.load_parameters()
    t_h = np.linspace(0, 48, 961)  # the page's default grid: 0-48 h every 0.05 h
    cases = [
        ("IV bolus, intact EVs", {"dose": "1e10"},
         lambda: exopk.simulate(params, exopk.IVBolus(dose_particles=1e10), t_h)),
        ("IV bolus, DiR label", {"dose": "1e10", "label": "DiR"},
         lambda: exopk.observe.simulate_label(params, exopk.IVBolus(dose_particles=1e10), t_h, "DiR")),
        ("IV + intranasal, DiR, comparison", {"dose": "1e10", "label": "DiR", "routes": "iv_bolus,intranasal"},
         lambda: [exopk.observe.simulate_label(params, d(dose_particles=1e10), t_h, "DiR")
                  for d in (exopk.IVBolus, exopk.Intranasal)]),
    ]  # fmt: skip
    _post(base + "/api/run", {"form": {"dose": "1e10"}})  # first call: imports
    print(f"exopk app response times, {repeats} repeats (median / worst), 961 output times; target: single run < 1 s")
    print(f"{'case':36s}{'POST /api/run':>18s}{'library call':>16s}{'model (server)':>16s}")
    answer = {}
    for name, form, direct in cases:
        run = lambda form=form: answer.update(json.loads(_post(base + "/api/run", {"form": form})))  # noqa: E731
        median, worst = _timed(run, repeats)
        lib, _ = _timed(direct, repeats)
        print(
            f"{name:36s}{median * 1e3:9.0f} /{worst * 1e3:5.0f} ms{lib * 1e3:13.0f} ms{answer['elapsed_ms']:13.0f} ms"
        )
    result = answer["base"]
    print(f"{'figure / download (last case)':36s}{'GET':>18s}")
    for name in ("curves.png", "curves.svg", "image.png", "comparison.png", "result.csv", "reproduce.py"):
        median, worst = _timed(lambda name=name: _get(base + result + name), max(2, repeats // 3))
        size = len(_get(base + result + name))
        print(f"  {name:34s}{median * 1e3:9.0f} /{worst * 1e3:5.0f} ms   {size / 1e3:8.0f} kB")
    server.shutdown()
    server.server_close()
    thread.join(5)


if __name__ == "__main__":
    main()
