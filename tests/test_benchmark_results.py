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
