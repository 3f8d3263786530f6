"""The benchmarks replace a recorded table in RESULTS.md only after a run of the whole module.

A run of some of a module's tests (a node id, ``--deselect``, ``-k``) measured only those rows,
and once wrote them over the whole table recorded before; these runs must leave it alone.
"""

import os

import pytest

pytest_plugins = "pytester"

CONFTEST = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "conftest.py")

# A benchmark module as the real ones are: parametrized tests and a module fixture whose
# teardown writes the table only when module_ran_whole says so (here: a marker file).
MODULE = """
import pytest
from conftest import module_ran_whole

@pytest.fixture(scope="module")
def record(request):
    yield
    with open("verdict.txt", "w") as f:
        f.write(str(module_ran_whole(request)))

@pytest.mark.parametrize("index", range(3))
def test_pair(index, record):
    assert FAIL_AT != index

class TestMore:
    def test_other(self, record):
        pass
"""


@pytest.fixture
def bench(pytester):
    with open(CONFTEST) as f:
        pytester.makeconftest(f.read())
    return pytester


def _verdict(pytester, *args, fail_at=-1):
    pytester.makepyfile(test_bench=MODULE.replace("FAIL_AT", str(fail_at)))
    pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)
    return (pytester.path / "verdict.txt").read_text()


def test_whole_module_counts_as_whole(bench):
    assert _verdict(bench) == "True"
    assert _verdict(bench, "test_bench.py") == "True"


@pytest.mark.parametrize("args", [
    ("test_bench.py::test_pair[1]",),
    ("test_bench.py::test_pair[0]", "test_bench.py::test_pair[2]", "test_bench.py::TestMore"),
    ("test_bench.py", "--deselect", "test_bench.py::test_pair[2]"),
    ("-k", "pair"),
    ("test_bench.py::test_pair",),
], ids=["one-node-id", "some-node-ids", "deselect", "keyword", "one-function"])
def test_part_of_the_module_is_not_whole(bench, args):
    assert _verdict(bench, *args) == "False"


def test_a_failure_is_not_whole(bench):
    assert _verdict(bench, fail_at=0) == "False"


SPEED_MODULE = """
import pytest

@pytest.mark.parametrize("case", ["a", "b"])
def test_speed(case, report):
    report(case, 1.0, 2.0, "same")
"""


@pytest.mark.parametrize("args, written", [((), True), (("--deselect", "test_speed.py::test_speed[b]"), False),
                                           (("-k", "a"), False)], ids=["whole", "deselect", "keyword"])
def test_speed_table_written_only_by_a_whole_run(bench, args, written):
    bench.makepyfile(test_speed=SPEED_MODULE)
    bench.runpytest_inprocess("-p", "no:cacheprovider", str(bench.path), *args)
    assert (bench.path / "RESULTS.md").exists() == written


# The quality table from made-up rows (benchmarks/test_quality.py imported in its own process,
# beside its conftest): two seeds per row, pair 0 within 0.02 of the reference, pair 1 not.
QUALITY_TABLE = """
import test_quality as q
rows = {"reference": [(0.50, 0.80, 100.0), (0.60, 0.90, 120.0)],
        "optimize": [(0.40, 0.85, 20.0), (0.66, 0.85, 24.0)]}
for index, (style_shift, content_shift) in enumerate([(0.0, 0.0), (-0.1, 0.0)]):
    for method, runs in rows.items():
        for seed, (style, content, seconds) in zip(q.SEEDS, runs):
            if method == "optimize":
                style, content = style + style_shift, content + content_shift
            q._rows[(index, method, seed)] = dict(style=style, content=content, phase=-15.0, seconds=seconds)
print(q._table())
"""


def _quality_table(seeds):
    import subprocess
    import sys
    here = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks")
    return subprocess.run([sys.executable, "-c", QUALITY_TABLE], cwd=here, capture_output=True, text=True,
                          env=dict(os.environ, NSTAUDIO_QUALITY_SEEDS=seeds))


def test_quality_table_averages_the_seeds_and_compares_the_means():
    result = _quality_table("3,7")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "| piano<-violin | reference | 0.55 (0.50, 0.60) | 0.85 (0.80, 0.90) | -15.0 | 110.0 |  |" in lines
    assert "| piano<-violin | optimize | 0.53 (0.40, 0.66) | 0.85 (0.85, 0.85) | -15.0 | 22.0 | 0.20 |" in lines
    assert "- reference: 2 pairs; largest spread over the seeds: style 0.10, content 0.10" in lines
    assert ("- optimize: 2 pairs; lowest style 0.43, lowest content 0.85; against the reference, style -0.12 and "
            "content +0.00 at worst, within 0.02 on both on 1 of 2, time 0.20 of it at most; largest spread over "
            "the seeds: style 0.26, content 0.00") in lines


def test_quality_table_of_one_seed_has_no_spread():
    result = _quality_table("0")
    assert result.returncode == 0, result.stderr
    assert "| piano<-violin | optimize | 0.40 | 0.85 | -15.0 | 20.0 | 0.20 |" in result.stdout.splitlines()
    assert "spread" not in result.stdout and "- reference" not in result.stdout


@pytest.mark.parametrize("seeds", ["", "1,1", "-1", "a"])
def test_quality_seeds_must_be_distinct_non_negative_integers(seeds):
    result = _quality_table(seeds)
    assert result.returncode != 0 and "NSTAUDIO_QUALITY_SEEDS must be distinct non-negative integers" in result.stderr
