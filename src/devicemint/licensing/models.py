"""The database's mirror of the committee recorded on chain (DeviceLicense decides)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from devicemint.db.models import Base, utc_now


class CommitteeSeat(Base):
    """A current committee member, as last read from the chain's CommitteeMemberSet events."""

    __tablename__ = "committee_seats"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    since_block: Mapped[int] = mapped_column(Integer)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
