"""`python -m sepconv_ext` (self-check / info entry point) runs and exits 0."""

import subprocess
import sys

from conftest import subprocess_env


def test_main_quick(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "sepconv_ext", "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        env=subprocess_env(),
        cwd=str(tmp_path),
    )
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    assert p.stdout.strip(), "python -m sepconv_ext --quick printed nothing"
    assert "Whole network: mobilenet_v2" in p.stdout, p.stdout[-3000:]
    assert "sc.convert(mobilenet_v2): inference" in p.stdout, p.stdout[-3000:]
