"""Builds the extension cellc._cellc with the project's CMake (the repository root is ..).

The build folder is $CELLC_BUILD_DIR, default ../build (the README's build: incremental when it
exists). A fresh one is configured for the Python running pip.
"""
import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = pathlib.Path(os.environ.get("CELLC_BUILD_DIR", ROOT / "build")).resolve()
        if not (build / "CMakeCache.txt").exists():
            subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
                            "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                            f"-DPython3_EXECUTABLE={sys.executable}"], check=True)
        subprocess.run(["cmake", "--build", str(build), "--target", "_cellc", "-j",
                        os.environ.get("CELLC_JOBS", "2")], check=True)
        built = sorted((build / "python" / "cellc").glob("_cellc*.so"))
        if not built:
            raise RuntimeError(f"the CMake build left no _cellc*.so in {build}/python/cellc")
        dest = pathlib.Path(self.get_ext_fullpath(ext.name))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[-1], dest)


setup(ext_modules=[Extension("cellc._cellc", sources=[])], cmdclass={"build_ext": CMakeBuild})
