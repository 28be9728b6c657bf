"""`devicemint node start|stop|status` and `devicemint deploy`."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from devicemint.chain import keys
from devicemint.chain.client import connect
from devicemint.chain.deploy import Deployment, DeploymentParams
from devicemint.chain.deployments import ensure_deployed
from devicemint.chain.node import LocalNode
from devicemint.config import Settings
from devicemint.errors import ConfigError

console = Console()
node_app = typer.Typer(
    help="Run the embedded local chain (anvil), state kept under the data directory.", no_args_is_help=True
)


def local_node(settings: Settings) -> LocalNode:
    if not settings.is_local_chain:
        raise ConfigError(
            f"the embedded node is a development chain (id 31337); the settings name chain {settings.chain_id}"
        )
    return LocalNode(
        state_dir=settings.home / "node",
        host=settings.node_host,
        port=settings.node_port,
        anvil=settings.anvil,
    )


@node_app.command("start")
def node_start(ctx: typer.Context) -> None:
    """Start the local node in the background (idempotent)."""
    status = local_node(ctx.obj).start()
    console.print(f"node running at {status.rpc_url} (pid {status.pid}, block {status.block_number})")


@node_app.command("stop")
def node_stop(ctx: typer.Context) -> None:
    """Stop the local node, writing its state to disk first."""
    stopped = local_node(ctx.obj).stop()
    console.print("node stopped; state saved" if stopped else "node was not running")


@node_app.command("status")
def node_status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Is the local node running, and at which block?"""
    status = local_node(ctx.obj).status()
    if as_json:
        print(json.dumps(status.__dict__))
    elif status.running:
        console.print(
            f"running at {status.rpc_url}, pid {status.pid}, chain {status.chain_id}, "
            f"block {status.block_number}"
        )
    else:
        console.print(f"not running ({status.rpc_url})")
    raise typer.Exit(0 if status.running else 1)


def deployment_params(settings: Settings) -> DeploymentParams:
    """On the dev chain the sample committee and treasury are dev accounts; elsewhere configured."""
    if settings.is_local_chain:
        return DeploymentParams(
            foundation=keys.dev_account(keys.DevRole.FOUNDATION).address,
            treasury=keys.dev_account(keys.DevRole.TREASURY).address,
            committee=tuple(
                keys.dev_account(r).address
                for r in (keys.DevRole.COMMITTEE_1, keys.DevRole.COMMITTEE_2, keys.DevRole.COMMITTEE_3)
            ),
            quorum=settings.quorum,
        )
    committee = tuple(a.strip() for a in settings.committee.split(",") if a.strip())
    missing = [
        name
        for name, value in (
            ("staking_token", settings.staking_token),
            ("foundation", settings.foundation),
            ("treasury", settings.treasury),
            ("committee", committee),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"deploying to chain {settings.chain_id} needs these settings: {', '.join(missing)} "
            "(DEVICEMINT_<NAME> or devicemint.toml)"
        )
    return DeploymentParams(
        foundation=str(settings.foundation),
        treasury=str(settings.treasury),
        committee=committee,
        quorum=settings.quorum,
        staking_token=settings.staking_token,
    )


def deploy(settings: Settings) -> tuple[Deployment, bool]:
    w3 = connect(settings)
    deployer = keys.load_signer(settings, keys.DevRole.FOUNDATION, chain_id=settings.chain_id)
    return ensure_deployed(settings=settings, w3=w3, deployer=deployer, params=deployment_params(settings))


def deploy_command(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Deploy the contracts (once per chain; later runs reuse the recorded addresses)."""
    deployment, is_new = deploy(ctx.obj)
    if as_json:
        print(deployment.to_json())
        return
    console.print(("deployed" if is_new else "already deployed") + f" on chain {ctx.obj.chain_id}:")
    for name, value in json.loads(deployment.to_json()).items():
        console.print(f"  {name}: {value}")


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")
    app.command("deploy")(deploy_command)
