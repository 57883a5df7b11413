"""Installing as users do: the wheel that `pip install .` builds, in a fresh
virtual environment (no -e, not run from the source tree), compiles a
model and matches eager PyTorch. The wheel carries the kernel library built
for this machine (setup.py), so the first compile builds nothing."""

import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import sys, time, torch, mlirc
    assert "{venv}" in mlirc.__file__, mlirc.__file__
    started = time.perf_counter()
    sys.path.insert(0, "{examples}")
    import mlp
    model, inputs = mlp.model(), mlp.example_inputs()
    compiled = mlirc.compile(model, inputs)
    report = compiled.verify(*inputs, rtol=1e-4, atol=1e-5)
    assert report.passed, report
    print(f"first compile: {{time.perf_counter() - started:.1f}} s")
    print("kernels:", sorted(set(__import__("re").findall(r'mlirc.kernel = "(\\\\w+)"',
                                                          compiled.ir["blas"]))))
""")


def test_wheel_installs_and_compiles_a_model(tmp_path):
    # A copy of the source tree, without what a checkout does not have
    # (the venv, builds, the kernels prebuilt in place), so the wheel is
    # built as on a fresh clone and nothing is left in the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "prebuilt", "__pycache__", "*.egg-info", "out"))
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "--quiet", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(wheels.glob("mlirc-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The pinned dependencies come from this environment (a .pth file adds
    # its site-packages after the new one's): mlirc itself only from the wheel.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    (Path(site.stdout.strip()) / "pinned_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--quiet",
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    script = SCRIPT.format(venv=venv, examples=ROOT / "examples")
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, env={"PATH": "/usr/bin:/bin",
                                            "MLIRC_CACHE_DIR": str(tmp_path / "cache"),
                                            "HOME": str(tmp_path)}, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "kernels:" in run.stdout
    assert "mlirc: building" not in run.stderr, run.stderr[-2000:]  # prebuilt in the wheel
