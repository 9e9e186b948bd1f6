"""Packaging for robstudy: every setting is read from settings.ini (nbdev's convention)."""
from configparser import ConfigParser
from pathlib import Path

import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]

requirements = cfg.get("requirements", "").split()
dev_requirements = cfg.get("dev_requirements", "").split()
pretrained_requirements = cfg.get("pretrained_requirements", "").split()   # timm:, torchvision: zoo entries
hf_requirements = cfg.get("hf_requirements", "").split()                   # hf: zoo entries (optional)
console_scripts = cfg.get("console_scripts", "").split()

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
    entry_points={"console_scripts": console_scripts, "nbdev": [f"{cfg['lib_name']}={cfg['lib_name']}._modidx:d"]},
    zip_safe=False,
)
