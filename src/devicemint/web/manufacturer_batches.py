"""Factory batches from the portal: upload a batch file for a device licence the manufacturer
holds, see every row error, then watch the batch mint in the background.

The upload is validated and taken in by the intake domain within the request (a batch is taken
whole or not at all; the row errors come back on the form). Minting then runs in this server's
background worker with the key the API mints with (`minter_signer`), through the minting
journal: every transaction is journalled before it is sent, so a server that dies mid-mint
leaves a batch that `Resume minting` (or `devicemint mint` with the same file) finishes without
minting any device twice. Progress is read from the database (devices recorded as minted), so
it is right after a restart and whichever process mints.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.datastructures import FormData
from web3.exceptions import Web3Exception

from devicemint.api.deps import Context
from devicemint.chain.tx import TxSender, sender_lock
from devicemint.db.models import Batch, Certificate
from devicemint.devices.batchfile import CSV_SUFFIXES, JSONL_SUFFIXES
from devicemint.devices.intake import IntakeRejected, IntakeResult
from devicemint.devices.minting import MintReport, licensed_intake, mint_taken_in, minting_licence
from devicemint.errors import DevicemintError, NotFound
from devicemint.onboarding.evidence import clean_filename
from devicemint.runtime import Runtime
from devicemint.web.manufacturer_common import PREFIX, Me, acting, attempt, status_of, text
from devicemint.web.manufacturer_licences import held_device_licences, held_licence
from devicemint.web.pages import Viewer, uploads

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

BatchId = Annotated[int, Path(ge=1, le=2**31 - 1)]
SHOWN_ERRORS = 200
SHOWN_DEVICES = 100


# -- the domain calls --------------------------------------------------------------------------


def take_in(runtime: Runtime, path: FilePath, device_licence_id: int) -> IntakeResult:
    """Validate a factory file and store its documents, certificates and Merkle tree, as
    `devicemint mint` does before minting; a file taken in before is found again, not re-read."""
    _, intake = licensed_intake(runtime, device_licence_id)
    return intake.run(path)


def mint_batch(runtime: Runtime, signer: TxSender, batch_id: int) -> MintReport:
    """Mint (or finish minting) a batch taken in; the journal settles whatever a run that died
    left signed or in flight before anything new is sent."""
    with runtime.sessions() as session:
        licence_id = session.get_one(Batch, batch_id).device_licence_id
    licence = minting_licence(runtime, licence_id)
    with sender_lock(runtime.settings.home, signer.account.address):
        return mint_taken_in(runtime, batch_id, sender=signer, recipient=licence.device.holder)


# -- the background worker -----------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    state: str  # queued | minting | done | failed
    error: str = ""


class MintJobs:
    """One worker thread per server process mints the portal's batches one after another (one
    signing key sends one transaction stream). What it is doing is kept in memory for the pages;
    what is minted is in the database, so nothing is lost with it."""

    def __init__(self, runtime: Runtime, signer: TxSender) -> None:
        self._runtime = runtime
        self._signer = signer
        self._queue: queue.Queue[int] = queue.Queue()
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, batch_id: int) -> None:
        with self._lock:
            job = self._jobs.get(batch_id)
            if job is not None and job.state in ("queued", "minting"):
                return
            self._jobs[batch_id] = Job("queued")
            self._queue.put(batch_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="portal-minter", daemon=True)
                self._thread.start()

    def job(self, batch_id: int) -> Job | None:
        with self._lock:
            return self._jobs.get(batch_id)

    def _set(self, batch_id: int, job: Job) -> None:
        with self._lock:
            self._jobs[batch_id] = job

    def _work(self) -> None:
        while True:
            batch_id = self._queue.get()
            self._set(batch_id, Job("minting"))
            outcome = Job("failed", "minting stopped unexpectedly (see the server log); resume it")
            try:
                mint_batch(self._runtime, self._signer, batch_id)
                outcome = Job("done")
            except (DevicemintError, Web3Exception, SQLAlchemyError, OSError, ValueError) as exc:
                log.warning("minting batch %s stopped: %s", batch_id, exc)
                outcome = Job("failed", str(exc))
            finally:
                self._set(batch_id, outcome)


_jobs_lock = threading.Lock()


def jobs_of(app: FastAPI, me: Me) -> MintJobs | None:
    """This app's worker (made on first use), or None on a server holding no minting key."""
    signer = me.ctx.minter_signer
    if signer is None:
        return None
    with _jobs_lock:
        jobs: MintJobs | None = getattr(app.state, "manufacturer_mint_jobs", None)
        if jobs is None:
            jobs = MintJobs(me.runtime, signer)
            app.state.manufacturer_mint_jobs = jobs
        return jobs


# -- progress ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    batch: Batch
    minted: int
    state: str  # done | minting | queued | failed | stopped
    error: str
    devices: list[tuple[str, str]]

    @property
    def done(self) -> bool:
        return self.state == "done"


def progress_of(me: Me, batch: Batch, job: Job | None) -> Progress:
    with me.runtime.sessions() as session:
        minted = (
            session.scalar(
                select(func.count()).where(Certificate.batch_id == batch.id, Certificate.minted.is_(True))
            )
            or 0
        )
        devices: list[tuple[str, str]] = []
        if batch.status == "minted":
            devices = [
                (address, serial)
                for address, serial in session.execute(
                    select(Certificate.address, Certificate.serial_number)
                    .where(Certificate.batch_id == batch.id)
                    .order_by(Certificate.position)
                    .limit(SHOWN_DEVICES)
                )
            ]
    if batch.status == "minted":
        state, error = "done", ""
    elif job is not None and job.state in ("queued", "minting", "failed"):
        state, error = job.state, job.error
    else:
        state, error = "stopped", ""
    return Progress(batch, int(minted), state, error, devices)


def _batch(me: Me, batch_id: int) -> Batch:
    """A batch minted under a device licence this manufacturer holds."""
    with me.runtime.sessions() as session:
        batch = session.get(Batch, batch_id)
    if batch is None or batch.merkle_root is None:
        raise NotFound(f"no factory batch {batch_id}")
    held_licence(me, batch.device_licence_id)
    return batch


# -- pages ------------------------------------------------------------------------------------------


def batches_page(
    me: Me,
    *,
    status: int = 200,
    chosen: str = "",
    errors: dict[str, str] | None = None,
    row_errors: list[Any] | None = None,
    rows_read: int = 0,
    refused: str = "",
) -> Response:
    licences = held_device_licences(me)
    ids = [lic.licence_id for lic in licences]
    with me.runtime.sessions() as session:
        batches = session.scalars(
            select(Batch)
            .where(Batch.device_licence_id.in_(ids), Batch.merkle_root.is_not(None))
            .order_by(Batch.id.desc())
        ).all()
    jobs = jobs_of(me.request.app, me)
    return me.page(
        "manufacturer/batches.html",
        status=status,
        licences=licences,
        batches=[progress_of(me, b, jobs.job(b.id) if jobs else None) for b in batches],
        chosen=chosen,
        errors=errors or {},
        row_errors=(row_errors or [])[:SHOWN_ERRORS],
        more_errors=max(len(row_errors or []) - SHOWN_ERRORS, 0),
        rows_read=rows_read,
        refused=refused,
    )


@router.get("/batches", response_model=None)
def batches(request: Request, ctx: Context, who: Viewer, licence: int | None = None) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    return batches_page(me, chosen=str(licence or ""))


@router.post("/batches", response_model=None)
async def upload_batch(request: Request, ctx: Context, who: Viewer) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    form = await request.form()
    return await run_in_threadpool(_upload, me, form)


def _upload(me: Me, form: FormData) -> Response:
    chosen = text(form, "licence").strip()
    errors: dict[str, str] = {}
    held = {str(lic.licence_id) for lic in held_device_licences(me) if lic.status.name == "ACTIVE"}
    if chosen not in held:
        errors["licence"] = "Device licence: choose one of your active device licences" + (
            f" ({', '.join(sorted(held))})" if held else "; you hold none yet"
        )
    files = uploads(form, "file")
    if not files:
        errors["file"] = "Batch file: choose a CSV (.csv) or JSON Lines (.jsonl) file"
    else:
        name = attempt(lambda: clean_filename(files[0].filename or ""))
        if isinstance(name, DevicemintError) or not name.lower().endswith(CSV_SUFFIXES + JSONL_SUFFIXES):
            errors["file"] = (
                f"Batch file: {files[0].filename!r} is neither CSV (.csv) nor JSON Lines (.jsonl)"
            )
    jobs = jobs_of(me.request.app, me)
    if jobs is None:
        return batches_page(me, status=503, chosen=chosen, refused="this server holds no minting key")
    if errors:
        return batches_page(me, status=422, chosen=chosen, errors=errors)
    with tempfile.TemporaryDirectory() as scratch:
        path = FilePath(scratch) / clean_filename(files[0].filename or "")
        with path.open("wb") as out:
            while block := files[0].file.read(1 << 20):
                out.write(block)
        try:
            taken = take_in(me.runtime, path, int(chosen))
        except IntakeRejected as exc:
            return batches_page(me, status=422, chosen=chosen, row_errors=exc.errors, rows_read=exc.rows_read)
        except IntegrityError:
            return batches_page(
                me,
                status=409,
                chosen=chosen,
                refused="this file is being taken in by another upload; wait, then look at your batches",
            )
        except DevicemintError as exc:
            return batches_page(me, status=status_of(exc), chosen=chosen, refused=str(exc))
    assert taken.batch_id is not None
    jobs.submit(taken.batch_id)
    return RedirectResponse(f"{PREFIX}/batches/{taken.batch_id}", status_code=303)


def _progress_response(me: Me, batch_id: int, template: str) -> Response:
    batch = attempt(lambda: _batch(me, batch_id))
    if isinstance(batch, DevicemintError):
        return me.refuse_error(batch, f"Factory batch {batch_id}")
    jobs = jobs_of(me.request.app, me)
    progress = progress_of(me, batch, jobs.job(batch_id) if jobs else None)
    return me.page(template, progress=progress, batch=batch)


@router.get("/batches/{batch_id}", response_model=None)
def batch_page(request: Request, ctx: Context, who: Viewer, batch_id: BatchId) -> Response:
    me = acting(request, ctx, who)
    return _progress_response(me, batch_id, "manufacturer/batch.html") if isinstance(me, Me) else me


@router.get("/batches/{batch_id}/progress", response_model=None)
def batch_progress(request: Request, ctx: Context, who: Viewer, batch_id: BatchId) -> Response:
    """The progress alone, for the page's htmx polling."""
    me = acting(request, ctx, who)
    return _progress_response(me, batch_id, "manufacturer/_batch_progress.html") if isinstance(me, Me) else me


@router.post("/batches/{batch_id}/resume", response_model=None)
def resume(request: Request, ctx: Context, who: Viewer, batch_id: BatchId) -> Response:
    me = acting(request, ctx, who)
    if not isinstance(me, Me):
        return me
    batch = attempt(lambda: _batch(me, batch_id))
    if isinstance(batch, DevicemintError):
        return me.refuse_error(batch, f"Factory batch {batch_id}")
    jobs = jobs_of(request.app, me)
    if jobs is None:
        return me.refuse(503, f"Factory batch {batch_id}", "this server holds no minting key")
    if batch.status != "minted":
        jobs.submit(batch_id)
    return RedirectResponse(f"{PREFIX}/batches/{batch_id}", status_code=303)
