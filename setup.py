"""Packaging for robstudy: every setting is read from settings.ini (nbdev's convention)."""
import shutil
from configparser import ConfigParser
from pathlib import Path

import setuptools
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

requirements = cfg.get("requirements", "").split()
dev_requirements = cfg.get("dev_requirements", "").split()
pretrained_requirements = cfg.get("pretrained_requirements", "").split()   # timm:, torchvision: zoo entries
hf_requirements = cfg.get("hf_requirements", "").split()                   # hf: zoo entries (optional)
console_scripts = cfg.get("console_scripts", "").split()

# the report notebooks and the course's lessons are run by `robstudy report` and `robstudy course`: a wheel carries
# copies of nbs/<kind>/*.ipynb as robstudy/notebooks/<kind>/ (robstudy.reports.notebooks_dir finds them there); the
# notebooks themselves stay in nbs/, and an editable install reads them from there
SHIPPED_NOTEBOOKS = ("reports", "course")


class BuildPyWithNotebooks(build_py):
    "build_py that also copies the report and course notebooks into the package it builds."

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False): return
        for kind in SHIPPED_NOTEBOOKS:
            notebooks = sorted((Path("nbs") / kind).glob("*.ipynb"))
            if not notebooks:
                raise SystemExit(f"nbs/{kind}/ has no notebooks to ship: build robstudy from a checkout or from its sdist")
            dest = Path(self.build_lib) / "robstudy" / "notebooks" / kind
            if dest.exists(): self.execute(shutil.rmtree, (str(dest),), f"removing {dest}")   # no stale copies
            self.mkpath(str(dest))
            for nb in notebooks: self.copy_file(str(nb), str(dest / nb.name))

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    license="Apache-2.0",
    python_requires=">=" + cfg["min_python"],
    packages=setuptools.find_packages(include=["robstudy", "robstudy.*"]),
    include_package_data=True,
    package_data={"robstudy": ["conf/**/*.yaml", "conf/*.yaml", "templates/**/*", "published_tables/*/*"]},
    install_requires=requirements,
    extras_require={"pretrained": pretrained_requirements, "hf": hf_requirements,
                    "dev": dev_requirements + pretrained_requirements},
    cmdclass={"build_py": BuildPyWithNotebooks},
    entry_points={"console_scripts": console_scripts, "nbdev": [f"{cfg['lib_name']}={cfg['lib_name']}._modidx:d"]},
    zip_safe=False,
)
