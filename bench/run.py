"""`make bench`: gas per device and devices per second, measured on a fresh local chain.

Prints, in one run:
  1. gas per device for mint calls of 1, 100 and 500 devices, for DeviceCertificate and for a
     naive baseline (OpenZeppelin ERC721 + a per-device struct in storage), with their ratio;
  2. end to end for a 10,000-device factory file (validate, documents, X.509 device
     certificates, Merkle, database, journalled mint), beside the time the chain alone takes for
     the same transactions (the journalled signed transactions replayed from a snapshot taken
     before the mint);
  3. the X.509 issuing rate alone: device certificates per second signed by the manufacturer
     root (its key in the encrypted key file), to compare with the minting rate;
  4. serving (bench/serving.py): the indexer's events per second from block 0, and the verify
     endpoint's requests per second and p99 under wrk, at 100,000 certificates.
"""

from __future__ import annotations

import os
import resource
import secrets
import tempfile
import time
from datetime import date
from pathlib import Path

import coincurve
from web3 import Web3
from web3.contract import Contract

from bench import serving
from devicemint.chain import keys
from devicemint.chain.artifacts import load_artifact
from devicemint.chain.deploy import contract
from devicemint.chain.node import LocalNode, free_port
from devicemint.chain.tx import TxSender
from devicemint.cli.chain_commands import deploy
from devicemint.cli.demo_command import onboard_sample_manufacturer
from devicemint.cli.device_commands import mint_file, release
from devicemint.config import Settings
from devicemint.db.models import ChainTx
from devicemint.devices.proof import address_of_private_key
from devicemint.devices.simulate import simulate_batch
from devicemint.licensing.registry import read_minting_licence
from devicemint.pki.authority import Authority
from devicemint.runtime import Runtime

GAS_TARGET_PER_DEVICE = 26_000
E2E_DEVICES = int(os.environ.get("DEVICEMINT_BENCH_DEVICES", "10000"))


def _random_addresses(count: int) -> list[str]:
    return [Web3.to_checksum_address(secrets.token_bytes(20)) for _ in range(count)]


def gas_per_device(runtime: Runtime, device_licence_id: int) -> list[tuple[int, float, float, float]]:
    """(devices, ours incl. openBatch, ours mint only, naive) gas per device."""
    manufacturer = TxSender(
        w3=runtime.w3, account=keys.dev_account(keys.DevRole.MANUFACTURER), chain_id=runtime.settings.chain_id
    )
    certificate = runtime.contracts.device_certificate
    design_hash = runtime.contracts.device_license.functions.licence(device_licence_id).call()[1]
    naive = _deploy_naive(runtime, manufacturer)
    rows = []
    for count in (1, 100, 500):
        devices = _random_addresses(count)
        root = secrets.token_bytes(32)
        opened = manufacturer.transact(
            certificate.functions.openBatch(device_licence_id, design_hash, root, count, runtime.batch_uri),
            what="openBatch",
        )
        batch_id = certificate.functions.batchIdOfRoot(device_licence_id, root).call()
        minted = manufacturer.transact(
            certificate.functions.mintBatch(batch_id, manufacturer.account.address, devices), what="mintBatch"
        )
        inputs = [
            (d, f"DM-AT-OBD-4G-20261101-{i:06d}", f"35693803{i:07d}", 1_761_955_200, "1.0.0")
            for i, d in enumerate(_random_addresses(count))
        ]
        naive_receipt = manufacturer.transact(
            naive.functions.mintBatch(manufacturer.account.address, inputs, device_licence_id, count),
            what="naive mintBatch",
        )
        rows.append(
            (
                count,
                (opened["gasUsed"] + minted["gasUsed"]) / count,
                minted["gasUsed"] / count,
                naive_receipt["gasUsed"] / count,
            )
        )
    return rows


def _deploy_naive(runtime: Runtime, sender: TxSender) -> Contract:
    artifact = load_artifact("NaiveCertificate")
    factory = runtime.w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
    receipt = sender.transact(factory.constructor(sender.account.address), what="deploying the baseline")
    return contract(runtime.w3, "NaiveCertificate", receipt["contractAddress"])


def end_to_end(runtime: Runtime, device_licence_id: int, workdir: Path) -> dict[str, float]:
    batch = workdir / "bench-batch.csv"
    started = time.perf_counter()
    simulate_batch(
        count=E2E_DEVICES,
        out=batch,
        keystore=workdir / "bench.keys.json",
        passphrase="bench",
        domain=runtime.domain,
        device_licence_id=device_licence_id,
        today=date.today(),
        seed=7,
        firmware=release(runtime, device_licence_id, None),
    )
    simulate_seconds = time.perf_counter() - started

    snapshot = runtime.w3.provider.make_request("evm_snapshot", [])["result"]
    started = time.perf_counter()
    report = mint_file(runtime, batch, device_licence_id, dry_run=False)
    total_seconds = time.perf_counter() - started
    assert report is not None and report.minted_now == E2E_DEVICES
    intake_seconds = total_seconds - report.seconds

    # The chain's own time: the very same signed transactions, replayed from before the mint.
    with runtime.sessions() as session:
        raws = [bytes(tx.raw) for tx in session.query(ChainTx).order_by(ChainTx.nonce)]
    runtime.w3.provider.make_request("evm_revert", [snapshot])
    started = time.perf_counter()
    # Receipts are read the same raw way as the minter does, so only the chain is measured.
    reader = TxSender(w3=runtime.w3, account=keys.dev_account(keys.DevRole.MANUFACTURER), chain_id=31337)
    hashes = [runtime.w3.eth.send_raw_transaction(raw).to_0x_hex() for raw in raws]
    for tx_hash in hashes:
        assert reader.wait_outcome(tx_hash).ok
    chain_seconds = time.perf_counter() - started
    return {
        "devices": E2E_DEVICES,
        "simulate_s": simulate_seconds,
        "intake_s": intake_seconds,
        "total_s": total_seconds,
        "mint_s": total_seconds - intake_seconds,
        "chain_s": chain_seconds,
        "gas_per_device": report.gas_used / max(report.minted_now, 1),
        "transactions": len(raws),
    }


def issuing_rate(runtime: Runtime, device_licence_id: int, count: int = 10_000) -> float:
    """Device certificates per second, as intake issues them (keys made beforehand)."""
    licence = read_minting_licence(runtime.contracts, device_licence_id).manufacturer
    issuer = Authority.of(runtime.settings, runtime.sessions).device_issuer(
        holder=licence.holder, root_fingerprint=licence.root_cert_fingerprint
    )
    devices = []
    for _ in range(count):
        key = coincurve.PrivateKey()
        public = key.public_key.format(compressed=False)
        devices.append((address_of_private_key(key.secret), public))
    started = time.perf_counter()
    for i, (address, public) in enumerate(devices):
        issuer.issue(
            serial_number=f"BENCH-{i:08d}",
            imei=f"35693803{i:06d}0",
            address=address,
            public_key=public,
            provisioning_date=date.today(),
        )
    return count / (time.perf_counter() - started)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="devicemint-bench-") as tmp:
        workdir = Path(tmp)
        # The naive baseline needs ~82M gas for 500 devices, more than any real block holds;
        # the bench node allows it so the comparison can be made at all.
        node = LocalNode(
            state_dir=workdir / "node", port=free_port(), persist=False, block_gas_limit=1_000_000_000
        )
        node.start()
        try:
            settings = Settings(home=workdir, node_port=node.port)
            deploy(settings)
            runtime = Runtime.open(settings)
            _, device_licence_id = onboard_sample_manufacturer(runtime)
            print("\n== gas per device (DeviceCertificate vs naive OpenZeppelin ERC721 + struct) ==")
            print(f"{'devices':>8} {'ours+open':>10} {'ours mint':>10} {'naive':>10} {'naive/ours':>10}")
            for count, with_open, mint_only, naive in gas_per_device(runtime, device_licence_id):
                print(
                    f"{count:>8} {with_open:>10,.0f} {mint_only:>10,.0f} {naive:>10,.0f} {naive / with_open:>10.1f}x"
                )
            print(f"target: <= {GAS_TARGET_PER_DEVICE:,} gas per device at 500 (ours+open)")

            figures = end_to_end(runtime, device_licence_id, workdir)
            print(
                f"\n== end to end, {figures['devices']:,} devices (file simulated in {figures['simulate_s']:.1f}s) =="
            )
            print(f"intake (validate, sign-check, documents, Merkle, DB): {figures['intake_s']:.2f}s")
            print(
                f"mint (journalled, {figures['transactions']} transactions):       {figures['mint_s']:.2f}s"
            )
            print(
                f"total: {figures['total_s']:.2f}s = {figures['devices'] / figures['total_s']:,.0f} devices/s"
            )
            print(
                f"chain alone (same signed txs replayed): {figures['chain_s']:.2f}s = "
                f"{figures['devices'] / figures['chain_s']:,.0f} devices/s"
            )
            rate = issuing_rate(runtime, device_licence_id)
            print(
                f"X.509 device certificates issued alone: {rate:,.0f} per second "
                f"(minting end to end: {figures['devices'] / figures['total_s']:,.0f} devices/s)"
            )
            serving.report(runtime, device_licence_id, workdir)
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak resident memory of the bench process: {peak_mb:,.0f} MB")
            print(
                f"end to end / chain alone: {figures['total_s'] / figures['chain_s']:.2f}x (target <= 2x); "
                f"{figures['gas_per_device']:,.0f} gas per device"
            )
        finally:
            node.stop()


if __name__ == "__main__":
    main()
