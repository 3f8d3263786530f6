"""`pytest benchmarks`: nstaudio against torch references, side by side in one process.

Every benchmark appends a row to the session's report; at the end the table is printed
and written into ``benchmarks/RESULTS.md`` (the section of this machine kind: cpu or
cuda), with the machine, library versions and date. Benchmarks assert that both sides
compute the same thing; they never assert speed.
"""

import datetime
import os
import platform
import re
import statistics
import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pytest

RESULTS = os.path.join(os.path.dirname(__file__), "RESULTS.md")
_rows = []
_deselected = []  # items dropped by --deselect or --lf: the run is then not whole


def pytest_deselected(items):
    _deselected.extend(items)


@pytest.fixture(scope="session")
def torch():
    torch = pytest.importorskip("torch", reason="torch is not installed: pip install 'nstaudio[bench]'")
    torch.set_num_threads(os.cpu_count())  # the same cores nstaudio's BLAS and numba use
    return torch


@pytest.fixture(scope="session")
def report():
    """``report(case, nstaudio_s, torch_s, agreement, section="cpu")``: one row of the table."""
    def add(case, ours, theirs, agreement, section="cpu"):
        ratio = theirs / ours if ours and theirs else float("nan")
        _rows.append({"section": section, "case": case, "nstaudio": ours, "torch": theirs, "ratio": ratio,
                      "agreement": agreement, "torch_version": _torch_version() if theirs else None})
    return add


def alternate(first, second, repeats=3):
    """Run two callables alternately (after one warm-up each); median seconds of each.

    Returns
    -------
    (float, float, object, object)
        Median time of ``first``, of ``second``, and the last result of each.
    """
    result_a, result_b = first(), second()
    times_a, times_b = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result_a = first()
        times_a.append(time.perf_counter() - start)
        start = time.perf_counter()
        result_b = second()
        times_b.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b), result_a, result_b


def gemm_rate(xp=np, n=4096, repeats=3, sync=lambda: None):
    """Measured float32 GEMM rate (FLOP/s) of ``xp.matmul`` on n x n matrices."""
    a = xp.ones((n, n), dtype=xp.float32)
    b = xp.ones((n, n), dtype=xp.float32)
    a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def machine_description():
    """CPU model, cores, and the versions that matter for the numbers."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        found = re.search(r"model name\s*:\s*(.+)", info)
        model = found.group(1).strip() if found else model
        # two machines of one model name ("AMD EPYC") ran 2.5x apart: the vector width tells them apart
        flags_line = re.search(r"flags\s*:\s*(.+)", info)
        flags = set(flags_line.group(1).split()) if flags_line else set()
        simd = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags), None)
        model += f" ({simd})" if simd else ""
    except OSError:
        pass
    versions = []
    for package in ("nstaudio", "numpy", "scipy", "numba", "torch", "cupy-cuda12x"):
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    blas = ""
    try:
        config = np.show_config(mode="dicts")
        blas = f", BLAS {config['Build Dependencies']['blas']['name']} {config['Build Dependencies']['blas']['version']}"
    except Exception:  # the layout of show_config differs between numpy versions
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}; {', '.join(versions)}{blas}"


def _torch_version():
    """The torch a row was measured against: its speed changes between releases (2.15's CPU autograd is faster)."""
    try:
        return version("torch")
    except PackageNotFoundError:
        return None


def _fmt(seconds):
    return "n/a" if seconds is None or seconds != seconds else f"{seconds:.3f} s"


def _table(rows):
    lines = ["| case | nstaudio | torch (version) | ratio (torch / nstaudio) | agreement |", "|---|---|---|---|---|"]
    for r in rows:
        ratio = "n/a" if r["ratio"] != r["ratio"] else f"{r['ratio']:.2f}x"
        torch = _fmt(r["torch"]) + (f" ({r['torch_version']})" if r.get("torch_version") else "")
        lines.append(f"| {r['case']} | {_fmt(r['nstaudio'])} | {torch} | {ratio} | {r['agreement']} |")
    return "\n".join(lines)


def _write_results(section, rows, header):
    """Replace this section of RESULTS.md (other sections, e.g. another device's, stay)."""
    write_section(section, header, _table(rows))


def write_section(section, header, body):
    """Replace the section ``section`` of RESULTS.md with ``header`` and ``body``, or append it."""
    begin, end = f"<!-- begin {section} -->", f"<!-- end {section} -->"
    text = open(RESULTS).read() if os.path.exists(RESULTS) else "# nstaudio benchmark results\n\n" \
        "Written by `pytest benchmarks`; each section is the latest full run on that kind of machine.\n"
    block = f"{begin}\n## {section}\n\n{header}\n\n{body}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    with open(RESULTS, "w") as f:
        f.write(text)


def module_ran_whole(request):
    """A module-scoped fixture's teardown: every test so far passed and every test of the module was selected.

    A selection by node id (``test_quality.py::test_method[...]``), ``--deselect``, ``--lf`` or
    ``-k``/``-m`` runs part of the module, and its table must not replace the whole one recorded.
    """
    config = request.config
    if request.session.testsfailed or config.getoption("keyword") or config.getoption("markexpr"):
        return False
    module = request.node
    selected = sum(1 for item in request.session.items if item.path == module.path)
    return selected == sum(1 for _ in _items(module))


def _items(collector):
    """Every test item under ``collector``, collected afresh (whatever the command line selected)."""
    for node in collector.collect():
        if isinstance(node, pytest.Item):
            yield node
        else:
            yield from _items(node)


def _complete_run(config, exitstatus):
    """Only `pytest benchmarks` as a whole, passing, replaces the recorded results."""
    here = os.path.abspath(os.path.dirname(__file__))
    whole = all(os.path.abspath(str(arg)) == here for arg in config.args)
    return (exitstatus == 0 and whole and not _deselected and not config.getoption("keyword")
            and not config.getoption("markexpr"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _rows:
        return
    sections = sorted({r["section"] for r in _rows})
    when = datetime.date.today().isoformat()
    for section in sections:
        rows = [r for r in _rows if r["section"] == section]
        header = f"Machine: {machine_description()}. Date: {when}."
        terminalreporter.write_sep("=", f"nstaudio vs torch ({section})")
        terminalreporter.write_line(header)
        terminalreporter.write_line(_table(rows))
        if _complete_run(config, exitstatus):
            _write_results(section, rows, header)
        else:
            terminalreporter.write_line(f"(partial or failing run: {os.path.relpath(RESULTS)} left as it was)")
