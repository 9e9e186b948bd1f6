"""The kernels robstudy starts for reports keep their own log lines off the user's terminal (jupyter_client interrupts
every kernel it shuts down; one caught inside a message handler logged "[IPKernelApp] ERROR | KeyboardInterrupt caught
in kernel." into `robstudy report`'s output, now and then)."""
import subprocess
import sys

import nbformat

RUN = """
import sys, papermill as pm
from robstudy.reports import KERNEL_ARGUMENTS, kernel_config
extra = KERNEL_ARGUMENTS if sys.argv[3] == "robstudy" else []
out = pm.execute_notebook(sys.argv[1], sys.argv[2], kernel_name="python3", progress_bar=False, execution_timeout=120,
                          config=kernel_config(), extra_arguments=extra)
print(out.cells[0].outputs[0]["text"].strip())
"""


def test_kernel_log_lines_stay_off_the_terminal(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('get_ipython().kernel.log.error("a kernel log line"); print("cell ran")')]
    nbformat.write(nb, tmp_path / "k.ipynb")
    seen = {}
    for how in ("plain", "robstudy"):
        r = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "k.ipynb"), str(tmp_path / f"{how}.ipynb"), how],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and r.stdout.strip().endswith("cell ran"), (r.stdout, r.stderr)
        seen[how] = r.stderr
    assert "[IPKernelApp] ERROR | a kernel log line" in seen["plain"], seen["plain"]   # what a kernel's log does by default
    assert "IPKernelApp" not in seen["robstudy"], seen["robstudy"]
