"""Builds the kernel library for this machine into the wheel (prebuilt/), so
that an installed mlirc compiles its first model without waiting for the C
compiler. Everything else is in pyproject.toml. The build is loaded from
mlirc/kernels/buildspec.py by path: mlirc itself (and torch) cannot be
imported while pip builds the wheel. A machine without a C compiler gets a
wheel without the prebuilt library; mlirc then says what it needs at the
first compile that calls a kernel."""

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


def _buildspec():
    path = Path(__file__).resolve().parent / "mlirc" / "kernels" / "buildspec.py"
    spec = importlib.util.spec_from_file_location("mlirc_kernels_buildspec", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class BuildPyWithKernels(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return  # an editable install uses the source tree (`make` builds there)
        buildspec = _buildspec()
        target = Path(self.build_lib) / "mlirc" / "kernels" / "prebuilt"
        print(f"building the kernel library into {target}", file=sys.stderr)
        try:
            buildspec.build_all(target)
        except buildspec.BuildFailed as error:
            print(f"warning: the kernel library was not prebuilt: {error}", file=sys.stderr)


setup(cmdclass={"build_py": BuildPyWithKernels})
