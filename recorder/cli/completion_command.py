"""`recorder completion SHELL`: the shell completion script, for packaging or a dotfile."""

from typing import Annotated

import typer

from recorder.cli.app import app
from recorder.cli.render import examples
from recorder.errors import UsageError

SHELLS = ("bash", "zsh", "fish")


@app.command(
    epilog=examples(
        "recorder completion bash > /etc/bash_completion.d/recorder",
        'recorder completion zsh > "${fpath[1]}/_recorder"',
        "recorder completion fish > ~/.config/fish/completions/recorder.fish",
    )
)
def completion(
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print the completion script for bash, zsh or fish (--install-completion installs it)."""
    if shell not in SHELLS:
        raise UsageError(f"SHELL: must be one of {', '.join(SHELLS)}, got {shell!r}")
    # typer's own scripts: the ones --install-completion writes, for a shell named explicitly.
    from typer._completion_shared import get_completion_script

    script = get_completion_script(
        prog_name="recorder", complete_var="_RECORDER_COMPLETE", shell=shell
    )
    typer.echo(script)
