"""Sweep cells (parameter budget x horizon, or budget x data size x horizon) and where their
studies live.

A cell is named ``<budget>-h<horizon>`` (``<budget>-<data>-h<horizon>`` in a sweep with a data
axis, e.g. ``100k-d1k-h1``: :mod:`lib.data.data_axis`) and owns ``outputs/sweeps/<sweep>/<cell>/``.
All cells of a sweep share one Optuna storage: a SQLite file per sweep
(``outputs/sweeps/<sweep>/optuna.db``) or the URL in the ``OPTUNA_STORAGE`` environment variable
(PostgreSQL for several machines). The URL is never written to records; its password is masked
in every line shown (:func:`mask_url`).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna

from ..core import paths
from ..core.config import SweepConfig
from ..model.budget import parse_budget


class StorageError(RuntimeError):
    """The study storage cannot be reached or opened."""


@dataclass(frozen=True)
class Cell:
    """One grid cell of a sweep: a parameter budget, a horizon and (with a data axis) a data
    size."""

    sweep: str  # sweep name (params/sweeps/<sweep>.yaml)
    budget: str  # parameter budget target, e.g. "2M"
    horizon: int  # trading days ahead
    data: str = ""  # data size id (``d1k``) of a sweep with data_sizes; "": all history

    @property
    def id(self) -> str:
        """``<budget>-h<horizon>`` (``100k-h1``), or ``<budget>-<data>-h<horizon>``
        (``100k-d1k-h1``) with a data size."""
        if self.data:
            return f"{self.budget}-{self.data}-h{self.horizon}"
        return f"{self.budget}-h{self.horizon}"

    @property
    def name(self) -> str:
        """The sweep's name (a sweep given as a YAML path is named by its file stem)."""
        return Path(self.sweep).stem

    @property
    def dir(self) -> Path:
        """The cell's folder of records, logs and executed notebook."""
        return paths.SWEEPS / self.name / self.id

    @property
    def study_name(self) -> str:
        """The Optuna study's name, ``<sweep>:<cell>``."""
        return f"{self.name}:{self.id}"

    def as_dict(self) -> dict:
        """The cell as written into records."""
        out = {"id": self.id, "sweep": self.name, "budget": self.budget,
               "budget_n": parse_budget(self.budget), "horizon": self.horizon}
        return dict(out, data=self.data) if self.data else out


def data_ids(cfg: SweepConfig) -> list[str]:
    """The sweep's data size ids in file order; ``[""]`` for a two-axis sweep."""
    from ..data.data_axis import size_id

    return [size_id(s) for s in cfg.data_sizes] or [""]


def cells(sweep: str, cfg: SweepConfig) -> list[Cell]:
    """Every cell of the sweep: budgets outer, data sizes, horizons inner."""
    return [Cell(sweep, b, h, d) for b in cfg.budgets for d in data_ids(cfg)
            for h in cfg.horizons]


def check_cell(cell: Cell, cfg: SweepConfig) -> Cell:
    """``cell`` if its data size fits the sweep (one of its data_sizes, or none in a two-axis
    sweep); a ConfigError naming the sweep's data sizes otherwise."""
    from ..core.config import ConfigError

    ids = data_ids(cfg)
    if cell.data not in ids:
        want = "no data size (the sweep has no data_sizes)" if ids == [""] else \
            f"one of {', '.join(ids)}"
        raise ConfigError(f"cell {cell.id}: data size {cell.data or 'none'!r} does not fit sweep "
                          f"'{cell.name}', which needs {want}")
    return cell


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***: any characters in the password (a raw '@'
    included: the host follows the LAST '@'), with or without a scheme."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at < 0:
        return url
    creds, host = rest[:at], rest[at + 1:]
    user, colon, _ = creds.partition(":")
    masked = f"{user}:***" if colon else creds
    return f"{scheme}{sep}{masked}@{host}"


def _userinfo(url: str) -> str:
    """What stands before the host (the LAST '@' after the scheme): user and password."""
    rest = url.partition("://")[2] or url
    at = rest.rfind("@")
    return rest[:at] if at >= 0 else ""


def check_url(url: str) -> str:
    """``url`` when its password parses as typed; a StorageError saying which character to
    percent-encode when the password holds a raw '@', ':' or '/' (the driver would read part of
    it as the host, and print it)."""
    info = _userinfo(url)
    password = info.partition(":")[2]
    for ch, code in (("@", "%40"), (":", "%3A"), ("/", "%2F")):
        if ch in password:
            raise StorageError(f"OPTUNA_STORAGE: the password holds a raw '{ch}': percent-encode "
                               f"it as {code} (the URL is {mask_url(url)})")
    return url


def scrub(text: str, url: str | None = None) -> str:
    """``text`` (an error message, a traceback) with every trace of the storage URL's password
    replaced by ***: the whole URL, the password, and any piece of it a driver may quote (a
    password with a raw '@' read as part of a host name). ``url`` defaults to
    ``OPTUNA_STORAGE``."""
    url = url if url is not None else os.environ.get("OPTUNA_STORAGE", "")
    info = _userinfo(url)
    password = info.partition(":")[2]
    if not password:
        return text
    from urllib.parse import unquote

    text = text.replace(url, mask_url(url))
    forms = {password, unquote(password)}  # as typed, and as the driver decodes it
    pieces = forms | {x for f in forms for x in re.split(r"[@:/%]", f) if len(x) >= 3}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def storage_url(sweep: str) -> str:
    """``OPTUNA_STORAGE`` when set (checked by :func:`check_url`), else the sweep's SQLite file
    (its folder is created)."""
    url = os.environ.get("OPTUNA_STORAGE")
    if url:
        return check_url(url)
    db = paths.SWEEPS / Path(sweep).stem / "optuna.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def open_storage(url: str, heartbeat_s: int = 30, max_retry: int = 2) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeat and retry of stale trials; unreachable is an error in seconds."""
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}
    else:
        engine = {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    try:
        # Optuna marks the heartbeat and its retry callback "experimental" on every call (13
        # lines at the start of each sweep); nothing a user can act on, so silenced here alone
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=heartbeat_s,
                grace_period=4 * heartbeat_s,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=max_retry))
    except Exception as e:  # sqlalchemy OperationalError, driver errors, bad URLs
        raise StorageError(scrub(f"cannot open study storage {mask_url(url)}: "
                                 f"{type(e).__name__}: {str(e).splitlines()[0][:300]}", url)) \
            from None


def storage_failure(e: BaseException) -> str | None:
    """The database error behind ``e`` (a lost connection, a deleted or read-only SQLite file),
    looked for along its chain of causes; None when ``e`` has nothing to do with the storage.
    Optuna can turn such an error into an AssertionError a few frames later."""
    import sqlalchemy.exc

    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, sqlalchemy.exc.SQLAlchemyError):
            return scrub(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
        e = e.__cause__ or e.__context__
        seen += 1
    return None
