"""The ``tflite-studio`` group, its base commands (presets, convert, inspect,
serve) and ``main``, which turns every failure into one ``error:`` line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from core.cli.options import convert_options, options_from_kw, run_context
from core.errors import OptionsError, StudioError
from core.options import PRESETS

if TYPE_CHECKING:
    from core.pipeline.isolation import RunContext

__all__ = ["main", "cli"]


def _write_text(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text)


# command name -> the module whose COMMANDS holds it: imported only when that
# command runs (or --help lists them), so `inspect` does not pay for the client
LAZY_COMMANDS = {
    **dict.fromkeys(("worker", "cleanup"), "core.cli.server"),
    **dict.fromkeys(("submit", "status", "fetch"), "core.cli.client"),
    **dict.fromkeys(("benchmark", "evaluate", "layers", "sweep", "diff"), "core.cli.evaluate"),
    **dict.fromkeys(("recipes", "optimize", "optimize-sweep", "deploy"), "core.cli.optimize"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        import importlib

        module = importlib.import_module(LAZY_COMMANDS[cmd_name])
        return next((c for c in module.COMMANDS if c.name == cmd_name), None)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tflite-studio")
def cli() -> None:
    """Convert TensorFlow models to TensorFlow Lite (LiteRT), inspect them and
    check what the conversion cost."""


@cli.command("presets")
def presets_cmd() -> None:
    """List the quantization presets."""
    for p, info in PRESETS.items():
        cal = " (needs calibration data)" if info.needs_calibration else ""
        click.echo(f"{p.value:<14} {info.title}{cal}\n{'':<14} {info.summary}")


@cli.command("convert")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write the .tflite file.",
)
@convert_options
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write a JSON report here.",
)
@click.option(
    "--timeout", type=float, default=None, help="Seconds before the conversion is stopped."
)
def convert_cmd(
    model: Path, output: Path, report_path: Path | None, timeout: float | None, **kw: Any
) -> None:
    """Convert MODEL (SavedModel dir/.zip/.tar.gz, .keras, .h5) to OUTPUT.tflite."""
    from core.pipeline.convert import convert_model

    opts = options_from_kw(kw)
    output.unlink(missing_ok=True)
    ctx = run_context(timeout)
    result = convert_model(model, output, opts, ctx=ctx)
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    ratio = result.output_size / result.input_size if result.input_size else 0
    click.echo(
        f"wrote {output} ({result.output_size:,} bytes, {ratio:.1%} of the input, "
        f"preset {result.preset}, {result.seconds:.1f} s)",
        err=True,
    )
    if report_path:
        try:
            report = _conversion_report(result, output, ctx.quiet())
            report_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        except BaseException:
            output.unlink(missing_ok=True)
            raise


def _conversion_report(result: Any, output: Path, ctx: RunContext) -> dict[str, Any]:
    d = result.to_dict()
    report: dict[str, Any] = {
        "schema_version": 1,
        "tool": "tflite-studio",
        "preset": d["preset"],
        "options": d["options"],
        "input": {"name": d["input_name"], "kind": d["input_kind"], "size_bytes": d["input_size"]},
        "output": {
            "path": str(output),
            "size_bytes": d["output_size"],
            "sha256": d["output_sha256"],
        },
        "size_ratio": d["output_size"] / d["input_size"] if d["input_size"] else None,
        "conversion_seconds": d["seconds"],
        "signature": {
            "key": d["signature_key"],
            "available": d["signature_keys"],
            "inputs": d["inputs"],
        },
        "tf_version": d["tf_version"],
        "warnings": d["warnings"],
    }
    import tempfile

    from core.pipeline.inspect import inspect_file

    with tempfile.TemporaryDirectory(prefix="tflite-report-") as tmp:
        done = inspect_file(
            output, out_dir=tmp, source_kind=d["input_kind"], source_size=d["input_size"], ctx=ctx
        )
        report["model"] = json.loads(done.json_path.read_text(encoding="utf-8"))
    return report


@cli.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["json", "md", "html"]), default="json", show_default=True
)
@click.option("-o", "--output", default=None, help="Write here instead of stdout.")
@click.option("--no-micro", is_flag=True, help="Skip the TFLite Micro run.")
@click.option(
    "--no-runs",
    is_flag=True,
    help="Do not run the model: every verdict then comes from the rule tables alone.",
)
def inspect_cmd(file: Path, fmt: str, output: str | None, no_micro: bool, no_runs: bool) -> None:
    """Report what is inside FILE.tflite: ops, tensors, sizes, validation, and
    where it runs. The LiteRT and TFLite Micro verdicts come from running the
    model here, in the sandbox; GPU and Edge TPU ones from rules."""
    import tempfile

    from core.pipeline.inspect import inspect_file

    with tempfile.TemporaryDirectory(prefix="tflite-report-") as tmp:
        done = inspect_file(
            file,
            out_dir=tmp,
            micro=not no_micro,
            runs=not no_runs,
            formats=(fmt,),
            ctx=run_context(quiet=True),
        )
        _write_text(done.path(fmt).read_text(encoding="utf-8"), output)


@cli.command("serve")
@click.option("--port", type=int, default=8501, show_default=True)
@click.option(
    "--host",
    default=None,
    help="Address to bind (default: 127.0.0.1 without a password, 0.0.0.0 with one).",
)
def serve_cmd(port: int, host: str | None) -> None:
    """Start the web app (and its workers) on one port."""
    from core.server.settings import load_settings, require_sandbox, sandbox_warning

    settings = load_settings()
    require_sandbox(settings)  # a shared server never runs models unsandboxed
    warning = sandbox_warning(settings)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    root = Path(__file__).resolve().parent.parent.parent
    if not (root / "app.py").is_file() or not (root / "pages").is_dir():
        raise OptionsError(
            "tflite-studio serve runs from a checkout of TFLite Studio: the web pages "
            "(app.py, studio.py, pages/, ui/) are not part of the installed package.",
            "Clone the repository and run `make run` there; convert, inspect and the other "
            "commands work from the installed package.",
        )
    has_login = settings.login_required
    if host is None:
        host = "0.0.0.0" if has_login else "127.0.0.1"
    if not has_login and host not in ("127.0.0.1", "localhost", "::1"):
        raise OptionsError(
            f"No login is configured, so the app will not listen on {host}.",
            "Set TFLITE_STUDIO_PASSWORD (or a password in .streamlit/secrets.toml), or "
            "leave --host out to serve on this machine only.",
        )
    if not has_login:
        click.echo(
            "No login configured: serving on this machine only "
            f"(http://127.0.0.1:{port}). Set TFLITE_STUDIO_PASSWORD to share it with a team.",
            err=True,
        )
    args = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(root / "app.py"),
        "--server.port",
        str(port),
        "--server.address",
        host,
    ]
    os.chdir(root)
    os.execv(sys.executable, args)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure is one ``error: …`` line on stderr."""
    try:
        cli.main(args=argv, prog_name="tflite-studio", standalone_mode=False)
        return 0
    except StudioError as e:
        click.echo(f"error: [{e.phase.value}] {e.message}", err=True)
        if e.hint:
            click.echo(f"  fix: {e.hint}", err=True)
        return 1
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        return 2
    except click.Abort:
        click.echo("error: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except Exception as e:  # the command's boundary: one line, never a traceback
        if os.environ.get("TFLITE_STUDIO_DEBUG"):
            raise
        click.echo(f"error: unexpected {type(e).__name__}: {e}", err=True)
        return 1
