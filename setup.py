"""Maps the top-level folders onto the ``shearlab.<folder>`` packages.

pyproject.toml holds the metadata; only the folder mapping lives here because setuptools
cannot express "every sub-package below these folders, under another prefix" declaratively.
"""

from setuptools import find_namespace_packages, setup

TOP_LEVEL = ("devices", "protocols", "orchestrator", "datasets", "training")
# Folders of files a lab edits (rig files, plans): shipped as data beside the code, so that an installed
# wheel finds them where a checkout has them, one level above each package (protocols/shipped.py).
DATA_FOLDERS = ("rigs", "plans")

# ``shearlab/`` holds only the package's own ``__init__`` (version, public API).
packages: list[str] = ["shearlab"]
package_dir: dict[str, str] = {"shearlab": "shearlab"}
for top in TOP_LEVEL:
    packages.append(f"shearlab.{top}")
    package_dir[f"shearlab.{top}"] = top
    # Namespace discovery also counts data folders (the twin's worlds/) as packages, so their files ship.
    packages.extend(f"shearlab.{top}.{sub}" for sub in find_namespace_packages(top, exclude=["*__pycache__*"]))
for folder in DATA_FOLDERS:
    packages.append(f"shearlab.{folder}")
    package_dir[f"shearlab.{folder}"] = folder

package_data = {f"shearlab.{top}": ["**/*.toml", "**/*.md", "**/*.json", "**/*.j2"] for top in TOP_LEVEL}
package_data.update({f"shearlab.{folder}": ["*.toml"] for folder in DATA_FOLDERS})
package_data["shearlab"] = ["py.typed"]

setup(packages=packages, package_dir=package_dir, package_data=package_data)
