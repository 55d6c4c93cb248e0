"""Entry point of the `pbg` command.

Each sub-command lives in its own module of this package and is registered in
``_COMMANDS``; a module is imported only when its command runs, so ``pbg --help``
and ``pbg import`` never pay for the training engine's import.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from ember.errors import UserError

# command name -> (module, attribute). Modules are imported lazily.
_COMMANDS: dict[str, tuple[str, str]] = {
    "import": ("ember.cli.import_cmd", "import_cmd"),
    "generate": ("ember.cli.generate_cmd", "generate_cmd"),
    "train": ("ember.cli.train_cmd", "train_cmd"),
    "eval": ("ember.cli.eval_cmd", "eval_cmd"),
    "export": ("ember.cli.export_cmd", "export_cmd"),
    "predict": ("ember.cli.predict_cmd", "predict_cmd"),
    "neighbors": ("ember.cli.predict_cmd", "neighbors_cmd"),
    "index": ("ember.cli.index_cmd", "index_cmd"),
    "report": ("ember.cli.report_cmd", "report_cmd"),
    "quickstart": ("ember.cli.quickstart_cmd", "quickstart_cmd"),
    "checkpoint": ("ember.cli.checkpoint_cmd", "checkpoint_cmd"),
    "config": ("ember.cli.config_cmd", "config_cmd"),
}


def _available(name: str) -> bool:
    module, _ = _COMMANDS[name]
    return importlib.util.find_spec(module) is not None


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [n for n in _COMMANDS if _available(n)]

    def get_command(self, ctx, name):
        if name not in _COMMANDS or not _available(name):
            return None
        module, attr = _COMMANDS[name]
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.version_option(package_name="ember", prog_name="pbg")
@click.pass_context
def cli(ctx, debug):
    """Embeddings of very large graphs, PyTorch-BigGraph style.

    \b
    pbg import edges.tsv          # stream an edge list into a partitioned workspace
    pbg train WORKSPACE/config.toml
    pbg eval WORKSPACE/config.toml
    pbg export WORKSPACE/config.toml --format tsv
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv=None) -> int:
    """Run `pbg`; a `UserError` becomes one ``error:`` line and exit status 2."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    if "numpy" not in sys.modules:
        # OpenBLAS's idle threads spin for ~0.1 s after each product before they sleep:
        # between eval's products (its counting, its reads) the second core only spun.
        # Sleeping at once costs a wake-up per product (microseconds against its
        # milliseconds): 10^7 edges, 2,000 sampled queries, eval's CPU 13.3 -> 11.5 s at
        # the same wall time. The user's setting wins.
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    try:
        rv = cli.main(args=argv, prog_name="pbg", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):  # a command's ctx.exit(code)
            return rv
    except UserError as e:
        if debug:
            raise
        click.echo(f"error: {e}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return 2 if e.exit_code != 0 else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except OSError as e:
        # the environment said no (a full disk, a read-only or missing folder, a
        # permission): what and where, in one line; a bug still shows its traceback
        if debug or e.errno is None:
            raise
        click.echo(f"error: {_os_error(e)}", err=True)
        return 2
    return 0


def _os_error(e: OSError) -> str:
    import errno

    why = {errno.ENOSPC: "no space left on device"}.get(e.errno, e.strerror or str(e))
    where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    hint = "; free space and run again" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{where}: {why}{hint}" if where else f"{why}{hint}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
