"""Run the numba.cuda kernel tests under numba's CUDA simulator, in a subprocess.

The simulator has to be switched on before numba is imported, so it cannot share this
process; running it from here keeps `pytest` the one command that tests everything.
"""

import os
import subprocess
import sys


def test_cuda_kernels_under_simulator(tmp_path):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", os.path.join(here, "cudasim"), "-q", "-p", "no:cacheprovider",
         "-rs"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]
