"""`auditlake dashboard`: CLI wiring of the auditor dashboard.

Registered on the `cli` group by auditlake.cli. The dashboard itself lives in
`dashboards/` and runs under Streamlit's own server; this module checks what can be
checked before that server starts (the lake opens, a signing key exists for the read
audit, Streamlit is installed) so a mistake is a one-line error rather than a broken
page, then hands the process over to Streamlit. People sign in with tokens that
`auditlake access token` prints (lake/secrets/_signin.py keeps only their hashes).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import click

from auditlake.cli.context import Ctx, handle_errors, pass_ctx
from auditlake.cli.options import listen_options
from auditlake.cli.output import fail, note
from lake.secrets import SigninStore

APP = Path(__file__).resolve().parents[3] / "dashboards" / "app.py"
# Streamlit settings for a server that must work offline and stay quiet: no browser to
# open, no usage statistics sent, no file watcher (the code does not change under it).
STREAMLIT_FLAGS = (
    "--server.headless=true",
    "--browser.gatherUsageStats=false",
    "--server.fileWatcherType=none",
    "--server.runOnSave=false",
    "--global.developmentMode=false",
    "--client.toolbarMode=viewer",
)


def streamlit_argv(app: Path, host: str, port: int) -> list[str]:
    """The command line that serves `app` with Streamlit on host:port."""
    # -P: the working directory stays off sys.path, so a folder there named like one of
    # our packages (a lake directory called `lake`, say) cannot shadow it.
    return [
        sys.executable,
        "-P",
        "-m",
        "streamlit",
        "run",
        str(app),
        *STREAMLIT_FLAGS,
        f"--server.address={host}",
        f"--server.port={port}",
    ]


@click.command()
@listen_options(8501)
@pass_ctx
@handle_errors
def dashboard(ctx: Ctx, host: str, port: int) -> None:
    """Serve the auditor dashboard (Streamlit) on the lake until interrupted.

    Pages: Overview, Integrity, Alerts, Search, Compliance. People sign in with a token
    from `auditlake access token PRINCIPAL` and see only that principal's tenants; every
    query is recorded in the read audit, like the CLI's.

    \b
      auditlake access token alice        # give the printed token to alice
      auditlake dashboard --port 8501     # then open http://127.0.0.1:8501
    """
    if importlib.util.find_spec("streamlit") is None:
        fail("the dashboard needs Streamlit: pip install 'auditlake[dashboard]'")
    lake = ctx.open()
    ctx.keys().active()  # the read audit is signed: fail now, not on the first page
    if not SigninStore(ctx.home).list():
        note("no sign-in tokens yet: run `auditlake access token PRINCIPAL` to make one")
    env = dict(os.environ)
    env["AUDITLAKE_LAKE"] = lake.root
    env["AUDITLAKE_HOME"] = str(ctx.home)
    note(f"auditlake dashboard for lake {lake.name!r} on http://{host}:{port} (Ctrl-C stops it)")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # Streamlit becomes this process: signals and the exit code are its own, with no
    # idle parent left to forward them.
    os.execve(sys.executable, streamlit_argv(APP, host, port), env)
