"""DeviceCertificate: batches, minting under licences, delegated minters, views, and rebuilding
every certificate from events alone."""

from __future__ import annotations

from contracts_support import DESIGN, Chain
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError

from devicemint.chain.artifacts import decode_custom_error

ROOT = Web3.keccak(text="batch 1 merkle root")
ROOT2 = Web3.keccak(text="batch 2 merkle root")
URI = "https://certs.example.org/batches/1/"
REASON = Web3.keccak(text="reason")
ZERO32 = b"\x00" * 32
ZERO_ADDRESS = "0x" + "00" * 20
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")


def device_addresses(count: int, salt: str = "dev") -> list[str]:
    return [Web3.to_checksum_address(Web3.keccak(text=f"{salt}-{i}")[12:]) for i in range(count)]


def open_batch(chain: Chain, count: int = 10, root: bytes = ROOT, sender: LocalAccount | None = None) -> int:
    sender = sender or chain.accounts.manufacturer
    chain.send(chain.dc.functions.openBatch(1, DESIGN, root, count, URI), sender)
    return int(chain.dc.functions.batchIdOfRoot(1, root).call())


def revoke_device_licence(chain: Chain, licence_id: int = 1) -> None:
    a = chain.accounts
    dl = chain.dl.functions
    chain.send(dl.proposeRevoke(licence_id, REASON), a.member1)
    pid = dl.proposalCount().call()
    chain.send(dl.vote(pid, True), a.member1)
    chain.send(dl.vote(pid, True), a.member2)


def test_metadata(chain: Chain) -> None:
    dc = chain.dc.functions
    assert (dc.name().call(), dc.symbol().call()) == ("Device Minting Certificate", "DMC")
    assert dc.deviceLicense().call() == chain.dl.address
    assert dc.manufacturerLicense().call() == chain.ml.address
    assert dc.supportsInterface(bytes.fromhex("80ac58cd")).call() is True
    assert dc.supportsInterface(bytes.fromhex("5b5e139f")).call() is True  # metadata
    assert dc.batchCount().call() == 0


def test_open_batch_records_everything(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    receipt = chain.send(dc.openBatch(1, DESIGN, ROOT, 10, URI), a.manufacturer)
    assert dict(chain.events(receipt, chain.dc, "BatchOpened")[0]["args"]) == {
        "batchId": 1,
        "deviceLicenceId": 1,
        "merkleRoot": ROOT,
        "deviceCount": 10,
        "uri": URI,
    }
    assert dc.batch(1).call() == (1, 10, 0, ROOT, URI, a.manufacturer.address)
    assert dc.batchIdOfRoot(1, ROOT).call() == 1
    assert dc.batchIdOfRoot(1, ROOT2).call() == 0
    assert dc.batchIdOfRoot(2, ROOT).call() == 0  # roots are per licence
    assert dc.batchCount().call() == 1
    assert open_batch(chain, 5, ROOT2) == 2  # sequential
    assert dc.batchCount().call() == 2


def test_open_batch_refusals(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m = a.manufacturer
    other = Web3.keccak(text="some other design")
    chain.reverts(dc.openBatch(1, DESIGN, ROOT, 10, URI), a.outsider, "NotMinter", 1, a.outsider.address)
    chain.reverts(dc.openBatch(1, DESIGN, ROOT, 10, URI), a.foundation, "NotMinter", 1, a.foundation.address)
    chain.reverts(dc.openBatch(1, other, ROOT, 10, URI), m, "DesignMismatch", 1, other, DESIGN)
    chain.reverts(dc.openBatch(1, DESIGN, ZERO32, 10, URI), m, "ZeroMerkleRoot")
    chain.reverts(dc.openBatch(1, DESIGN, ROOT, 0, URI), m, "ZeroDeviceCount")
    chain.reverts(dc.openBatch(2, DESIGN, ROOT, 10, URI), m, "DeviceLicenceNotActive", 2)
    open_batch(chain)
    chain.reverts(dc.openBatch(1, DESIGN, ROOT, 10, URI), m, "MerkleRootAlreadyUsed", ROOT, 1)


def test_open_batch_refused_for_suspended_revoked_or_renounced_manufacturer(chain: Chain) -> None:
    a = chain.accounts
    m = a.manufacturer
    opening = chain.dc.functions.openBatch(1, DESIGN, ROOT, 10, URI)
    chain.send(chain.ml.functions.suspend(1, REASON), a.foundation)
    chain.reverts(opening, m, "ManufacturerNotActive", m.address)
    chain.send(chain.ml.functions.reinstate(1), a.foundation)
    chain.send(opening, m)  # works again once reinstated
    opening2 = chain.dc.functions.openBatch(1, DESIGN, ROOT2, 10, URI)
    chain.send(chain.ml.functions.beginWithdrawal(), m)
    chain.reverts(opening2, m, "ManufacturerNotActive", m.address)
    chain.send(chain.ml.functions.revoke(1, REASON), a.foundation)
    chain.reverts(opening2, m, "ManufacturerNotActive", m.address)


def test_open_batch_refused_for_revoked_device_licence(chain: Chain) -> None:
    revoke_device_licence(chain)
    chain.reverts(
        chain.dc.functions.openBatch(1, DESIGN, ROOT, 10, URI),
        chain.accounts.manufacturer,
        "DeviceLicenceNotActive",
        1,
    )


def test_mint_batch_mints_and_records(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    batch_id = open_batch(chain, 10)
    devices = device_addresses(4)
    receipt = chain.send(dc.mintBatch(batch_id, a.manufacturer.address, devices), a.manufacturer)

    (minted,) = chain.events(receipt, chain.dc, "DevicesMinted")
    assert dict(minted["args"]) == {"batchId": batch_id, "count": 4}
    transfers = chain.events(receipt, chain.dc, "Transfer")
    assert [(t["args"]["from"], t["args"]["to"], t["args"]["id"]) for t in transfers] == [
        (ZERO_ADDRESS, a.manufacturer.address, int(d, 16)) for d in devices
    ]
    # DevicesMinted comes immediately before its Transfer events.
    assert [t["logIndex"] for t in transfers] == [minted["logIndex"] + 1 + i for i in range(4)]

    assert dc.batch(batch_id).call()[2] == 4
    assert dc.balanceOf(a.manufacturer.address).call() == 4
    for device in devices:
        token_id = int(device, 16)
        assert dc.ownerOf(token_id).call() == a.manufacturer.address
        assert dc.exists(token_id).call() is True
        assert dc.batchOf(token_id).call() == batch_id
        assert tuple(dc.certificate(token_id).call()) == (a.manufacturer.address, batch_id, 1, ROOT)
        assert dc.tokenURI(token_id).call() == URI + device.lower()


def test_mint_in_several_calls_up_to_device_count(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m = a.manufacturer
    batch_id = open_batch(chain, 5)
    devices = device_addresses(6)
    chain.send(dc.mintBatch(batch_id, m.address, devices[:3]), m)
    chain.reverts(dc.mintBatch(batch_id, m.address, devices[3:6]), m, "BatchOverflow", batch_id, 5, 3, 3)
    chain.send(dc.mintBatch(batch_id, a.buyer.address, devices[3:5]), m)  # any recipient
    assert tuple(dc.batch(batch_id).call())[1:3] == (5, 5)
    assert dc.balanceOf(m.address).call() == 3
    assert dc.balanceOf(a.buyer.address).call() == 2
    chain.reverts(dc.mintBatch(batch_id, m.address, devices[5:]), m, "BatchOverflow", batch_id, 5, 5, 1)
    assert dc.exists(int(devices[5], 16)).call() is False


def test_duplicate_device_reverts_whole_call(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m = a.manufacturer
    batch_id = open_batch(chain, 10)
    devices = device_addresses(3)
    chain.reverts(
        dc.mintBatch(batch_id, m.address, [devices[0], devices[1], devices[0]]),
        m,
        "DeviceAlreadyMinted",
        2,
        devices[0],
    )
    assert dc.exists(int(devices[0], 16)).call() is False
    assert dc.batch(batch_id).call()[2] == 0
    chain.send(dc.mintBatch(batch_id, m.address, devices[:2]), m)
    # Already certified in an earlier call (or another batch): refused, nothing minted.
    other = open_batch(chain, 10, ROOT2)
    chain.reverts(
        dc.mintBatch(other, m.address, [devices[2], devices[1]]), m, "DeviceAlreadyMinted", 1, devices[1]
    )
    assert dc.exists(int(devices[2], 16)).call() is False
    assert dc.balanceOf(m.address).call() == 2


def test_mint_batch_argument_refusals(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m = a.manufacturer
    batch_id = open_batch(chain, 10)
    devices = device_addresses(2)
    chain.reverts(dc.mintBatch(batch_id, m.address, [devices[0], ZERO_ADDRESS]), m, "InvalidDeviceAddress", 1)
    chain.reverts(dc.mintBatch(batch_id, ZERO_ADDRESS, devices), m, "TransferToZeroAddress")
    chain.reverts(dc.mintBatch(batch_id, m.address, []), m, "NoDevices")
    chain.reverts(dc.mintBatch(7, m.address, devices), m, "UnknownBatch", 7)
    chain.reverts(dc.batch(7), a.outsider, "UnknownBatch", 7)


def test_mint_batch_refuses_address_with_dirty_upper_bits(chain: Chain) -> None:
    a = chain.accounts
    batch_id = open_batch(chain, 10)
    devices = device_addresses(2)
    data = bytearray(
        Web3.to_bytes(
            hexstr=chain.dc.encode_abi("mintBatch", args=[batch_id, a.manufacturer.address, devices])
        )
    )
    # Layout: selector, batchId, to, offset, length, devices[0], devices[1]; dirty devices[1].
    data[4 + 5 * 32] = 0x01
    try:
        chain.w3.eth.call({"from": a.manufacturer.address, "to": chain.dc.address, "data": bytes(data)})
    except ContractCustomError as exc:
        decoded = decode_custom_error(exc.data)
    else:
        raise AssertionError("a device address with dirty upper bits was accepted")
    assert decoded is not None and (decoded.name, decoded.args) == ("InvalidDeviceAddress", (1,))


def test_mint_batch_refusals_by_caller_and_licence_state(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m = a.manufacturer
    batch_id = open_batch(chain, 10)
    mint = dc.mintBatch(batch_id, m.address, device_addresses(1))
    chain.reverts(mint, a.outsider, "NotMinter", 1, a.outsider.address)
    chain.reverts(mint, a.foundation, "NotMinter", 1, a.foundation.address)
    chain.send(chain.ml.functions.suspend(1, REASON), a.foundation)
    chain.reverts(mint, m, "ManufacturerNotActive", m.address)
    chain.send(chain.ml.functions.reinstate(1), a.foundation)
    chain.send(mint, m)
    mint2 = dc.mintBatch(batch_id, m.address, device_addresses(1, "second"))
    chain.send(chain.ml.functions.revoke(1, REASON), a.foundation)
    chain.reverts(mint2, m, "ManufacturerNotActive", m.address)


def test_revoke_by_vote_stops_minting(chain: Chain) -> None:
    m = chain.accounts.manufacturer
    batch_id = open_batch(chain, 10)
    chain.send(chain.dc.functions.mintBatch(batch_id, m.address, device_addresses(2)), m)
    revoke_device_licence(chain)
    chain.reverts(
        chain.dc.functions.mintBatch(batch_id, m.address, device_addresses(2, "after")),
        m,
        "DeviceLicenceNotActive",
        1,
    )
    # Certificates already minted stay (their standing is judged off chain from the licence).
    assert chain.dc.functions.balanceOf(m.address).call() == 2


def test_delegated_minter(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m, line = a.manufacturer, a.minter
    assert dc.isMinter(1, line.address).call() is False
    receipt = chain.send(dc.setMinter(1, line.address, True), m)
    assert dict(chain.events(receipt, chain.dc, "MinterSet")[0]["args"]) == {
        "deviceLicenceId": 1,
        "minter": line.address,
        "allowed": True,
    }
    assert dc.isMinter(1, line.address).call() is True
    batch_id = open_batch(chain, 10, sender=line)
    assert dc.batch(batch_id).call()[5] == line.address
    devices = device_addresses(2)
    chain.send(dc.mintBatch(batch_id, m.address, devices[:1]), line)
    assert dc.ownerOf(int(devices[0], 16)).call() == m.address
    # The holder can mint into a batch its minter opened, and vice versa.
    chain.send(dc.mintBatch(batch_id, m.address, devices[1:]), m)

    chain.send(dc.setMinter(1, line.address, False), m)
    assert dc.isMinter(1, line.address).call() is False
    chain.reverts(
        dc.mintBatch(batch_id, m.address, device_addresses(1, "x")), line, "NotMinter", 1, line.address
    )
    chain.reverts(dc.openBatch(1, DESIGN, ROOT2, 1, URI), line, "NotMinter", 1, line.address)


def test_delegated_minter_still_bound_by_licences(chain: Chain) -> None:
    a = chain.accounts
    chain.send(chain.dc.functions.setMinter(1, a.minter.address, True), a.manufacturer)
    chain.send(chain.ml.functions.suspend(1, REASON), a.foundation)
    chain.reverts(
        chain.dc.functions.openBatch(1, DESIGN, ROOT, 1, URI),
        a.minter,
        "ManufacturerNotActive",
        a.manufacturer.address,
    )


def test_set_minter_refusals(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    chain.reverts(
        dc.setMinter(1, a.outsider.address, True), a.outsider, "NotLicenceHolder", 1, a.outsider.address
    )
    chain.reverts(
        dc.setMinter(1, a.outsider.address, True), a.foundation, "NotLicenceHolder", 1, a.foundation.address
    )
    chain.send(dc.setMinter(1, a.minter.address, True), a.manufacturer)
    chain.reverts(
        dc.setMinter(1, a.outsider.address, True), a.minter, "NotLicenceHolder", 1, a.minter.address
    )
    chain.reverts(dc.setMinter(1, ZERO_ADDRESS, True), a.manufacturer, "ZeroAddress")
    chain.reverts(
        dc.setMinter(2, a.minter.address, True), a.manufacturer, "NotLicenceHolder", 2, a.manufacturer.address
    )


def test_certificates_are_transferable_and_keep_their_batch(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m = a.manufacturer
    batch_id = open_batch(chain, 10)
    devices = device_addresses(2)
    chain.send(dc.mintBatch(batch_id, m.address, devices), m)
    token_id = int(devices[1], 16)
    chain.send(dc.transferFrom(m.address, a.buyer.address, token_id), m)
    assert dc.ownerOf(token_id).call() == a.buyer.address
    assert dc.balanceOf(m.address).call() == 1
    assert dc.balanceOf(a.buyer.address).call() == 1
    assert dc.batchOf(token_id).call() == batch_id
    assert tuple(dc.certificate(token_id).call()) == (a.buyer.address, batch_id, 1, ROOT)
    chain.reverts(dc.transferFrom(a.buyer.address, m.address, token_id), m, "NotOwnerNorApproved")
    chain.send(dc.transferFrom(a.buyer.address, a.outsider.address, token_id), a.buyer)
    assert dc.ownerOf(token_id).call() == a.outsider.address


def test_views_of_unknown_tokens(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    token_id = int(device_addresses(1)[0], 16)
    assert dc.exists(token_id).call() is False
    assert dc.batchOf(token_id).call() == 0
    assert tuple(dc.certificate(token_id).call()) == (ZERO_ADDRESS, 0, 0, ZERO32)
    chain.reverts(dc.tokenURI(token_id), a.outsider, "TokenDoesNotExist")
    chain.reverts(dc.ownerOf(token_id), a.outsider, "TokenDoesNotExist")


def test_events_alone_rebuild_every_certificate(chain: Chain) -> None:
    a = chain.accounts
    dc = chain.dc.functions
    m = a.manufacturer
    first = open_batch(chain, 5)
    chain.send(chain.dc.functions.setMinter(1, a.minter.address, True), m)
    second = chain.w3.eth.wait_for_transaction_receipt(
        dc.openBatch(1, DESIGN, ROOT2, 4, "ipfs://docs/").transact({"from": a.minter.address})
    )
    assert second["status"] == 1
    devices_a = device_addresses(5, "a")
    devices_b = device_addresses(4, "b")
    chain.send(dc.mintBatch(first, m.address, devices_a[:2]), m)
    chain.send(dc.mintBatch(2, a.buyer.address, devices_b), a.minter)
    chain.send(dc.mintBatch(first, m.address, devices_a[2:]), m)
    chain.send(dc.transferFrom(m.address, a.outsider.address, int(devices_a[0], 16)), m)

    logs = chain.w3.eth.get_logs({"address": chain.dc.address, "fromBlock": chain.deployment.deployed_block})
    batches: dict[int, dict[str, object]] = {}
    owners: dict[int, str] = {}
    batch_of: dict[int, int] = {}
    pending: list[int] = []  # batch id per Transfer still expected after DevicesMinted
    opened = chain.dc.events.BatchOpened()
    minted = chain.dc.events.DevicesMinted()
    transfer = chain.dc.events.Transfer()
    for log in logs:
        topic = log["topics"][0]
        if topic == TRANSFER_TOPIC:
            args = transfer.process_log(log)["args"]
            if args["from"] == ZERO_ADDRESS:
                batch_of[args["id"]] = pending.pop(0)
            owners[args["id"]] = args["to"]
        elif topic == Web3.keccak(text="BatchOpened(uint32,uint256,bytes32,uint32,string)"):
            args = opened.process_log(log)["args"]
            batches[args["batchId"]] = dict(args)
        elif topic == Web3.keccak(text="DevicesMinted(uint32,uint256)"):
            args = minted.process_log(log)["args"]
            assert not pending
            pending = [args["batchId"]] * args["count"]
    assert not pending
    assert len(owners) == 9
    for token_id, owner in owners.items():
        batch = batches[batch_of[token_id]]
        on_chain = tuple(dc.certificate(token_id).call())
        assert on_chain == (owner, batch_of[token_id], batch["deviceLicenceId"], batch["merkleRoot"])
        assert (
            dc.tokenURI(token_id).call()
            == batch["uri"] + Web3.to_checksum_address(token_id.to_bytes(20, "big")).lower()
        )
