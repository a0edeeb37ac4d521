"""Maps the top-level folders onto the ``shearlab.<folder>`` packages.

pyproject.toml holds the metadata; only the folder mapping lives here because setuptools
cannot express "every sub-package below these folders, under another prefix" declaratively.
"""

from setuptools import find_namespace_packages, setup

TOP_LEVEL = ("devices", "protocols", "orchestrator", "datasets", "training")

packages: list[str] = []
package_dir: dict[str, str] = {}
for top in TOP_LEVEL:
    packages.append(f"shearlab.{top}")
    package_dir[f"shearlab.{top}"] = top
    # Namespace discovery also counts data folders (the twin's worlds/) as packages, so their files ship.
    packages.extend(f"shearlab.{top}.{sub}" for sub in find_namespace_packages(top, exclude=["*__pycache__*"]))

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={f"shearlab.{top}": ["**/*.toml", "**/*.md", "**/*.json"] for top in TOP_LEVEL},
)
