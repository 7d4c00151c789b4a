"""C++ deployment: CMake builds libsepconv_ops and examples/cpp's sepconv_run against libtorch;
a TorchScript network saved from Python runs there, with no Python in the process, and gives
Python's output and gradients. Also: the installed package config works for a user's project.

The CMake build (one per session, under pytest's tmp dir; set SEPCONV_CMAKE_BUILD_DIR to keep
and reuse one across sessions) takes most of this file's time.
"""

import os
import shutil
import subprocess
import sys

import pytest
import torch

import sepconv_ext as sc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [
    pytest.mark.skipif(
        shutil.which("cmake") is None,
        reason="cmake is not on PATH: the C++ deployment test configures and builds with CMake (.ci/run installs it)",
    ),
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
]

# Linkers that default to --as-needed (Ubuntu's) drop a library no symbol of which is used,
# which is what an op-registering library is; force that behaviour here so that the build
# proves SepconvExt::sepconv_ops survives it, whatever this machine's default.
AS_NEEDED = sys.platform.startswith("linux")


def _run(cmd, what, **kwargs):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stdout[-6000:]}", pytrace=False
        )
    return proc.stdout


def _configure(source, build, *defs):
    cmd = ["cmake", "-S", source, "-B", build, "-DCMAKE_BUILD_TYPE=Release"]
    if shutil.which("ninja") and not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        cmd += ["-G", "Ninja"]
    if AS_NEEDED:
        cmd.append("-DCMAKE_EXE_LINKER_FLAGS=-Wl,--as-needed")
    _run(cmd + list(defs), "cmake configure")


def _build(build, *targets):
    cmd = ["cmake", "--build", build, "--parallel", str(min(os.cpu_count() or 1, 2))]
    for target in targets:
        cmd += ["--target", target]
    _run(cmd, "cmake build")


def _clean_env(tmp_path):
    """No Python anywhere: no PYTHON* variables, no LD_LIBRARY_PATH/LD_PRELOAD, a system PATH.
    The program finds libtorch and libsepconv_ops through its RUNPATH alone."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def cmake_build(tmp_path_factory):
    build = os.environ.get("SEPCONV_CMAKE_BUILD_DIR") or str(tmp_path_factory.mktemp("cmake-build"))
    _configure(
        REPO_ROOT,
        build,
        f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
        "-DSEPCONV_BUILD_EXAMPLES=ON",
        "-DSEPCONV_BUILD_TESTS=OFF",
    )
    _build(build, "sepconv_run")  # builds sepconv_ops with it, and nothing else
    exe = os.path.join(build, "examples", "cpp", "sepconv_run")
    assert os.access(exe, os.X_OK), exe
    return build


class Net(torch.nn.Module):
    """All three modules; stride 2 with (TensorFlow) 'same', a depth multiplier, padding modes."""

    def __init__(self, dtype):
        super().__init__()
        self.sep = sc.SeparableConv2d(4, 8, 3, stride=2, padding="same", dtype=dtype)
        self.dw = sc.DepthwiseConv2d(8, 5, padding="same", depth_multiplier=2, dtype=dtype)
        self.dw2 = sc.DepthwiseConv2d(16, (3, 2), padding=1, padding_mode="reflect", bias=False, dtype=dtype)
        self.pw = sc.PointwiseConv2d(16, 6, dtype=dtype)

    def forward(self, x):
        return self.pw(torch.relu(self.dw2(torch.relu(self.dw(self.sep(x))))))


def _run_cpp(exe, model, x, tmp_path):
    """Saves the scripted model and input, runs sepconv_run in a Python-free process and returns
    (output, input gradient, {parameter name: gradient}) read back with torch.load."""
    paths = {name: str(tmp_path / f"{name}.pt") for name in ("model", "input", "output", "input_grad", "param_grads")}
    torch.jit.script(model).save(paths["model"])
    torch.save(x, paths["input"])
    _run(
        [exe, paths["model"], paths["input"], paths["output"], paths["input_grad"], paths["param_grads"]],
        "sepconv_run",
        env=_clean_env(tmp_path),
        cwd=str(tmp_path),
        timeout=300,
    )
    return (torch.load(paths["output"]), torch.load(paths["input_grad"]), dict(torch.load(paths["param_grads"])))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cpp_program_matches_python(cmake_build, tmp_path, dtype):
    exe = os.path.join(cmake_build, "examples", "cpp", "sepconv_run")
    model = Net(dtype)
    x = torch.randn(2, 4, 11, 13, dtype=dtype).to(memory_format=torch.channels_last)

    out_cpp, grad_cpp, param_grads_cpp = _run_cpp(exe, model, x, tmp_path)

    xr = x.clone().requires_grad_(True)
    out = model(xr)
    out.sum().backward()
    # stride 2 'same': ceil(11/2) x ceil(13/2) = 6 x 7; then kernel (3, 2), padding 1: 6 x 8
    assert out.shape == (2, 6, 6, 8)
    torch.testing.assert_close(out_cpp, out.detach())
    torch.testing.assert_close(grad_cpp, xr.grad)
    assert set(param_grads_cpp) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        torch.testing.assert_close(param_grads_cpp[name], p.grad, msg=lambda m: f"{name}: {m}")
    # The input reached C++ as channels_last (torch.save keeps strides) and our ops kept it so.
    assert out_cpp.is_contiguous(memory_format=torch.channels_last)
    assert grad_cpp.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd")
def test_cpp_program_links_no_python_and_keeps_the_ops_library(cmake_build, tmp_path):
    exe = os.path.join(cmake_build, "examples", "cpp", "sepconv_run")
    libs = _run(["ldd", exe], "ldd", env=_clean_env(tmp_path))
    assert "libsepconv_ops" in libs, libs  # a DT_NEEDED entry, even under --as-needed
    assert "not found" not in libs, libs
    assert "libpython" not in libs and "libtorch_python" not in libs, libs


def test_installed_package_config(cmake_build, tmp_path):
    """cmake --install, then a user's project: find_package(SepconvExt) with only the install
    prefix given (Torch is found through the hint the package config carries), link
    SepconvExt::sepconv_ops into a program that calls nothing of it; the library must still be
    loaded, from the install tree. The installed sepconv_run runs too (install RUNPATH)."""
    prefix = tmp_path / "install"
    _run(["cmake", "--install", cmake_build, "--prefix", str(prefix)], "cmake --install")
    for rel in (
        "lib/cmake/SepconvExt/SepconvExtConfig.cmake",
        "lib/cmake/SepconvExt/SepconvExtConfigVersion.cmake",
        "lib/cmake/SepconvExt/SepconvExtTargets.cmake",
        "bin/sepconv_run",
    ):
        assert (prefix / rel).exists(), rel

    project = tmp_path / "user_project"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.18)\n"
        "project(user_project LANGUAGES CXX)\n"
        "find_package(SepconvExt 0.1 REQUIRED)\n"
        "add_executable(user_app main.cpp)\n"
        "target_link_libraries(user_app PRIVATE SepconvExt::sepconv_ops)\n"
    )
    (project / "main.cpp").write_text("int main() { return 0; }\n")
    build = str(tmp_path / "user_build")
    _configure(str(project), build, f"-DCMAKE_PREFIX_PATH={prefix}")
    _build(build)
    app = os.path.join(build, "user_app")
    _run([app], "user_app", env=_clean_env(tmp_path))
    if shutil.which("ldd"):
        libs = _run(["ldd", app], "ldd", env=_clean_env(tmp_path))
        ops_line = [line for line in libs.splitlines() if "libsepconv_ops" in line]
        assert ops_line and str(prefix) in ops_line[0], libs

    model = Net(torch.float64)
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    out_cpp, _, _ = _run_cpp(str(prefix / "bin" / "sepconv_run"), model, x, tmp_path)
    torch.testing.assert_close(out_cpp, model(x).detach())
