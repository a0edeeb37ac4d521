"""Dependencies flow one way, and only the simulation and the command line know the twin.

::

    protocols  <-  devices  <-  orchestrator
        ^                           |
        +------  datasets  <-  training  <-+

``protocols`` (the experiment as data) imports nothing of shearlab; ``devices`` and ``datasets`` build on
it; ``training`` on ``datasets``; ``orchestrator`` on everything. ``shearlab.devices.twin`` is imported
only by itself, by the simulated devices (``devices.sim``, built on the twin's models) and by the
entry layer, which runs the whole stack on the twin (``orchestrator.cli`` mounts the twin's commands,
``orchestrator.demo``, its ``estimate`` and ``orchestrator.realism`` read its world). The data layer and the experiment
definitions import no torch, and no Prefect below the flows.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS: dict[str, set[str]] = {
    "protocols": {"protocols"},
    "devices": {"devices", "protocols"},
    "datasets": {"datasets", "protocols"},
    "training": {"training", "datasets", "protocols"},
    "orchestrator": {"orchestrator", "training", "datasets", "devices", "protocols"},
}
TWIN = "shearlab.devices.twin"
# The entry layer runs the whole stack on the twin: the command line, the demo (and its estimate) and the
# realism report.
TWIN_USERS = ("shearlab.devices.twin", "shearlab.devices.sim", "shearlab.orchestrator.cli", "shearlab.orchestrator.demo",
              "shearlab.orchestrator.estimate", "shearlab.orchestrator.realism")
FORBIDDEN_LIBRARIES: dict[str, set[str]] = {
    "protocols": {"torch", "prefect"},
    "devices": {"torch", "prefect"},
    "datasets": {"torch", "prefect"},
    "training": {"prefect"},
}


def package_sources() -> dict[str, str]:
    """``{shearlab module name: source}`` for every module of the five top-level folders; a package's
    ``__init__`` is named ``package.__init__`` so that relative imports resolve from the package."""
    sources = {}
    for top in LAYERS:
        for path in sorted((ROOT / top).rglob("*.py")):
            sources[".".join(("shearlab", *path.relative_to(ROOT).with_suffix("").parts))] = path.read_text()
    return sources


def imported_modules(module: str, source: str) -> set[str]:
    """Every module ``module`` imports, anywhere in its body (deferred imports included)."""
    found: set[str] = set()
    package = module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            anchor = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def violations(sources: dict[str, str]) -> list[str]:
    """One line per module and broken rule, naming the first offending import."""
    problems: dict[tuple[str, str], str] = {}
    for module, source in sources.items():
        layer = module.split(".")[1]
        for target in sorted(imported_modules(module, source)):
            rules = []
            if target.startswith("shearlab."):
                target_layer = target.split(".")[1]
                if target_layer in LAYERS and target_layer not in LAYERS[layer]:
                    rules.append(f"{layer} may not depend on {target_layer}")
                if (target == TWIN or target.startswith(TWIN + ".")) and not module.startswith(TWIN_USERS):
                    rules.append("only the simulation and the command line may import the twin")
            elif target.split(".")[0] in FORBIDDEN_LIBRARIES.get(layer, set()):
                rules.append(f"{layer} stays free of {target.split('.')[0]}")
            for rule in rules:
                problems.setdefault((module, rule), f"{module} imports {target}: {rule}")
    return sorted(problems.values())


def test_every_import_follows_the_layers() -> None:
    sources = package_sources()
    assert len(sources) > 100
    assert violations(sources) == []


def test_the_check_catches_an_import_against_the_direction() -> None:
    upward = {"shearlab.protocols.rig": "from shearlab.devices.clock import Clock\n",
              "shearlab.datasets.reader": "def f():\n    import torch\n",
              "shearlab.devices.connect": "from shearlab.devices.twin.serve import build_twin\n",
              "shearlab.orchestrator.flows.acquisition": "import shearlab.devices.twin.world\n"}
    problems = violations(upward)
    assert len(problems) == 4, problems
    assert any("protocols may not depend on devices" in p for p in problems)
    assert any("datasets stays free of torch" in p for p in problems)
    assert sum("may import the twin" in p for p in problems) == 2
