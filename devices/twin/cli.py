"""The twin's command line, its one entry point: ``python -m shearlab.devices.twin``, mounted as
``shearlab twin`` by the ``shearlab`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The digital twin of the rig.", no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
_ALLOW_REMOTE_HELP = ("Serve a non-loopback HOST: its ports can unlock a protective stop and inject faults, so the twin "
                      "then requires the token it prints with its endpoints.")
_TOKEN_HELP = ("Require this token (16+ characters) of control requests and dashboard unlocks, on loopback too "
               "(a machine shared by several people); a networked twin makes one when none is given.")


def _check_host(host: str, allow_remote: bool, token: str | None) -> None:
    """Refuse, before anything starts, a host the twin may not serve, or a token too short."""
    from shearlab.devices.twin.serve import RemoteHostError, twin_token

    try:
        twin_token(host, allow_remote=allow_remote, given=token)
    except RemoteHostError as exc:
        raise typer.BadParameter(str(exc), param_hint="--host") from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--token") from None


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Loopback address to serve every device on (127.0.0.x).")] = "127.0.0.5",
    speed: Annotated[float, typer.Option(help="Virtual seconds per wall second.", min=0.001, max=1000)] = 1.0,
    world: Annotated[Path | None, typer.Option(help="World file (TOML); default: the shipped world.")] = None,
    endpoints: Annotated[Path | None, typer.Option(help="Also write the endpoints JSON line here.")] = None,
    parent_pid: Annotated[int | None, typer.Option(help="Exit when this process is gone.", hidden=True)] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help=_ALLOW_REMOTE_HELP)] = False,
    token: Annotated[str | None, typer.Option(help=_TOKEN_HELP, envvar="SHEARLAB_TWIN_TOKEN")] = None,
) -> None:
    """Serve every device of the rig on HOST; prints one JSON line of endpoints when ready."""
    from shearlab.devices.twin.serve import serve as serve_twin

    _check_host(host, allow_remote, token)
    serve_twin(host, speed=speed, world_path=world, endpoints_path=endpoints, parent_pid=parent_pid, allow_remote=allow_remote,
               token=token)


@app.command("ur-floor")
def ur_floor(
    host: Annotated[str, typer.Option(help="Loopback address of the controller (127.0.0.x).")] = "127.0.0.21",
    speed: Annotated[float, typer.Option(help="Virtual seconds per wall second.", min=0.001, max=1000)] = 1.0,
    floor_z_m: Annotated[float, typer.Option(help="Height of the floor, m.")] = 0.10,
    stiffness_n_per_m: Annotated[float, typer.Option(help="Floor stiffness, N/m.")] = 2000.0,
    force_limit_n: Annotated[float, typer.Option(help="Protective-stop force, N.", min=0.01, max=1000)] = 5.0,
    parent_pid: Annotated[int | None, typer.Option(help="Exit when this process is gone.", hidden=True)] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help=_ALLOW_REMOTE_HELP)] = False,
    token: Annotated[str | None, typer.Option(help=_TOKEN_HELP, envvar="SHEARLAB_TWIN_TOKEN")] = None,
) -> None:
    """Serve one UR controller whose probe meets a flat floor (the UR driver's test bed); prints one
    JSON line with its control port."""
    from shearlab.devices.twin.serve import serve_ur_floor

    _check_host(host, allow_remote, token)
    serve_ur_floor(host, speed=speed, floor_z_m=floor_z_m, stiffness_n_per_m=stiffness_n_per_m,
                   force_limit_n=force_limit_n, parent_pid=parent_pid, allow_remote=allow_remote, token=token)


@app.command("preview")
def preview(
    phantom: Annotated[str, typer.Option(help="Block name in the world file, e.g. block_10p0 or inclusion_circular.")],
    push: Annotated[int, typer.Option(help="Push 1..7 (paper positions -12..+12 mm).", min=1, max=7)] = 4,
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("preview.png"),
    world: Annotated[Path | None, typer.Option(help="World file (TOML); default: the shipped world.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
) -> None:
    """Render the true displacement of one push in a phantom: frames and a space-time plot."""
    from shearlab.devices.twin.physics.displacement import simulate_displacement
    from shearlab.devices.twin.physics.medium import image_plane_medium
    from shearlab.devices.twin.physics.preview import render_preview
    from shearlab.devices.twin.world import World
    from shearlab.devices.twin.world_config import load_world
    from shearlab.protocols.output_files import atomic_output, check_output
    from shearlab.protocols.sequences import PAPER_PUSH_LATERAL_MM, PushSpec, SequenceSpec

    check_output(out, inputs=[world] if world is not None else [], force=force)
    state = World(load_world(world))
    blocks = {b.name: b for b in state.config.blocks}
    if phantom not in blocks:
        raise typer.BadParameter(f"no phantom {phantom!r} in the world; known: {', '.join(blocks)}", param_hint="--phantom")
    block = blocks[phantom]
    sequence = SequenceSpec(push=PushSpec(lateral_mm=PAPER_PUSH_LATERAL_MM[push - 1]))
    medium = image_plane_medium(block, state.truths, block.x_mm, block.y_mm, sequence.grid)
    displacement = simulate_displacement(medium, sequence)
    with atomic_output(out) as tmp:
        render_preview(displacement, sequence.grid, tmp, push_lateral_mm=sequence.push.lateral_mm)
    typer.echo(f"wrote {out}")
