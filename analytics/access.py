"""Who may do what: people, roles, per-dataset grants and the audit trail (migration 60).

Every write and every customer-level read of the library asks :func:`require` first, with the
*caller* of the moment (:func:`current`), so a page that forgets a check still cannot leak: the
library refuses (:class:`AccessDenied`, a user-facing :class:`WarehouseError`) and records the
refusal in the audit trail.

Callers (:class:`Caller`):
* a **person** signed in through the company's identity provider, keyed by the identity's
  email (lower case) or, without one, its subject; their role and grants are read from the
  warehouse at every check, so a change on the Admin page holds at once;
* the **local** user of the single-person app on 127.0.0.1 (no sign-in configured): an admin;
* the **command line** (whoever holds the file and its key): a local admin recorded as
  ``cli:USER@HOST``;
* the **system** (the preparation step in the background): derived data only.

The caller is a context variable (each Streamlit session runs in its own thread), with a
process-wide default: :data:`LOCAL` unless the app runs with sign-in, which sets the default to
nobody (:func:`set_default` ``(None)``), so work started without a caller is refused.

Roles: ``admin`` (manage people and grants, delete datasets, see and revoke every report link,
read and export the audit trail), ``analyst`` (load data, train and publish models, build
segments, campaigns and reports, export customer lists), ``viewer`` (read pages and reports;
no customer-level exports, pseudonymised ids, no personal columns). An admin sees every
dataset; an analyst or viewer sees the datasets granted to them (``*``: all), and the datasets
they loaded themselves.

The audit trail (``audit_log``) is append-only: this module has no function that edits or
deletes its rows, and deleting a dataset keeps them (its column is ``dataset_name``).
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import getpass
import hashlib
import json
import socket
from typing import Any, Iterable, Iterator

import pandas as pd

from analytics.warehouse import WarehouseError

ROLES = ("viewer", "analyst", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}

#: each action and the least role that may do it
ACTIONS = {
    "read": "viewer",            # pages and reports of a visible dataset
    "raw_ids": "analyst",        # customer ids and personal columns as stored
    "export": "analyst",         # customer-level files: target lists, scores, a dataset's events
    "load": "analyst",           # load files into a dataset
    "model": "analyst",          # train, save and publish predictors; clustering runs
    "segment": "analyst",        # save, rename and delete segments
    "campaign": "analyst",       # build and store campaigns, upload outcomes
    "report": "analyst",         # make report links
    "delete_dataset": "admin",
    "manage_people": "admin",    # people, roles and grants
    "manage_reports": "admin",   # see and revoke every report link, allow raw ids in a report
    "audit": "admin",            # read and export the audit trail
}

ALL_DATASETS = "*"


class AccessDenied(WarehouseError):
    """The caller may not do this (the message says what and why; user-facing)."""


class AccessError(WarehouseError):
    """A change of people or grants that cannot be made (e.g. removing the last admin)."""


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who acts: ``id`` (a person's email or subject, ``local``, ``cli:USER@HOST``, ``system``),
    ``kind`` (``person`` | ``local`` | ``cli`` | ``system``), ``role`` (for people: the role at
    sign-in; every check reads it again from the warehouse) and a display ``name``."""

    id: str
    kind: str = "person"
    role: str | None = None
    name: str | None = None

    @property
    def trusted(self) -> bool:
        """Local, command-line and system callers hold the file (and its key): full rights."""
        return self.kind in ("local", "cli", "system")

    def label(self) -> str:
        return self.name or self.id


LOCAL = Caller("local", "local", "admin", "local user")
SYSTEM = Caller("system", "system", "admin", "preparation")


def cli_caller(user: str | None = None, host: str | None = None) -> Caller:
    """The command line as a local admin, recorded as ``cli:USER@HOST``."""
    try:
        user = user or getpass.getuser()
    except Exception:  # no user name in this environment
        user = "unknown"
    host = host or socket.gethostname()
    return Caller(f"cli:{user}@{host}", "cli", "admin", f"command line ({user}@{host})")


_CURRENT: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("valuescope_caller", default=None)
_DEFAULT: list[Caller | None] = [LOCAL]


def set_default(caller: Caller | None) -> None:
    """The caller of work that runs without one set (None: nobody, everything is refused)."""
    _DEFAULT[0] = caller


def default() -> Caller | None:
    return _DEFAULT[0]


_RESOLVER: list[Any] = [None]


def set_resolver(fn) -> None:
    """A function that names the caller of a context where none was set (None: no such function):
    the app's partial reruns (a fragment, which does not run the top of the script where the caller
    is set) find the caller their session signed in as through it."""
    _RESOLVER[0] = fn


def current() -> Caller | None:
    """The caller of this thread/context, else the resolver's (:func:`set_resolver`), else the
    process default."""
    caller = _CURRENT.get()
    if caller is not None:
        return caller
    resolver = _RESOLVER[0]
    if resolver is not None:
        try:
            caller = resolver()
        except Exception:  # no session here (a background thread): the default
            caller = None
        if caller is not None:
            return caller
    return _DEFAULT[0]


_WAREHOUSE: contextvars.ContextVar[Any] = contextvars.ContextVar("valuescope_warehouse", default=None)


def set_current(caller: Caller | None, wh=None) -> None:
    """Make ``caller`` this context's caller, acting on warehouse ``wh`` (the app does this at the top
    of every script run; the command line when it opens the warehouse)."""
    _CURRENT.set(caller)
    if wh is not None:
        _WAREHOUSE.set(wh)


def set_warehouse(wh) -> None:
    """The warehouse this context works on (where checks without a warehouse argument look)."""
    _WAREHOUSE.set(wh)


@contextlib.contextmanager
def on_warehouse(wh) -> Iterator[Any]:
    """Run a block with ``wh`` as this context's warehouse."""
    token = _WAREHOUSE.set(wh)
    try:
        yield wh
    finally:
        _WAREHOUSE.reset(token)


def current_warehouse():
    """This context's warehouse, else the only one this process has open (None: not known)."""
    wh = _WAREHOUSE.get()
    if wh is not None and not getattr(wh, "closed", False):
        return wh
    from analytics import warehouse

    open_ = [w for w in warehouse._WAREHOUSES.values() if not getattr(w, "closed", False)]
    return open_[0] if len(open_) == 1 else None


def bound(fn):
    """``fn`` bound to this context's caller and warehouse, for code that runs later in another
    thread (a download button's data callable): without it, it runs as nobody in a shared app."""
    import functools

    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args, **kwargs):
        return ctx.run(fn, *args, **kwargs)

    return run


@contextlib.contextmanager
def acting_as(caller: Caller | None) -> Iterator[Caller | None]:
    """Run a block as ``caller``."""
    token = _CURRENT.set(caller)
    try:
        yield caller
    finally:
        _CURRENT.reset(token)


def person_key(email: str | None = None, subject: str | None = None) -> str:
    """The key of a person: the email in lower case, else the subject."""
    if email and str(email).strip():
        return str(email).strip().lower()
    if subject and str(subject).strip():
        return str(subject).strip()
    raise AccessDenied("the identity provider sent neither an email nor a subject for this sign-in")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _check_role(role: str) -> str:
    role = str(role or "").strip().lower()
    if role not in _RANK:
        raise AccessError(f"unknown role {role!r} (choose one of: {', '.join(ROLES)})")
    return role


# ---------------------------------------------------------------------------- checks
def role_of(wh, caller: Caller | None = None) -> str | None:
    """The caller's role now (people: read from the warehouse; None: none or removed)."""
    caller = current() if caller is None else caller
    if caller is None:
        return None
    if caller.trusted:
        return caller.role
    row = wh.cursor().execute("SELECT role FROM people WHERE id = ? AND active", [caller.id]).fetchone()
    return None if row is None else row[0]


def visible_datasets(wh, caller: Caller | None = None) -> set[str] | None:
    """The datasets the caller may see (None: all of them; an empty set: none)."""
    caller = current() if caller is None else caller
    if caller is None:
        return set()
    if caller.trusted:
        return None
    role = role_of(wh, caller)
    if role is None:
        return set()
    if role == "admin":
        return None
    names = {r[0] for r in wh.cursor().execute(
        "SELECT dataset FROM dataset_grants WHERE person = ?", [caller.id]).fetchall()}
    if ALL_DATASETS in names:
        return None
    return names


def may(wh, action: str, dataset: str | None = None, caller: Caller | None = None) -> bool:
    """Whether the caller may do ``action`` (on ``dataset``): no audit row, no exception."""
    return _refusal(wh, action, dataset, current() if caller is None else caller) is None


def _refusal(wh, action: str, dataset: str | None, caller: Caller | None) -> str | None:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if caller is None:
        return "nobody is signed in"
    if caller.trusted:
        return None
    role = role_of(wh, caller)
    if role is None:
        return f"{caller.label()} has no role in Valuescope (ask an admin to add you)"
    need = ACTIONS[action]
    if _RANK[role] < _RANK[need]:
        return f"{caller.label()} is {_article(role)} {role}; this needs the {need} role"
    if dataset is not None:
        visible = visible_datasets(wh, caller)
        if visible is not None and dataset not in visible:
            return f"{caller.label()} has no access to dataset {dataset!r}"
    return None


def _article(role: str) -> str:
    return "an" if role[:1] in "aeiou" else "a"


_WHAT = {
    "read": "read this", "raw_ids": "see raw customer ids", "export": "export customer-level data",
    "load": "load data", "model": "train or publish models", "segment": "change segments",
    "campaign": "build campaigns", "report": "make report links", "delete_dataset": "delete datasets",
    "manage_people": "manage people and grants", "manage_reports": "manage report links",
    "audit": "read the audit trail",
}


def require(wh, action: str, dataset: str | None = None, *, what: str | None = None) -> Caller | None:
    """The caller, when they may do ``action`` (on ``dataset``); else :class:`AccessDenied` with
    a sentence saying why, after an audit row with outcome ``denied``."""
    caller = current()
    why = _refusal(wh, action, dataset, caller)
    if why is None:
        return caller
    with contextlib.suppress(Exception):  # the refusal holds even when the trail cannot be written
        audit(wh, action, dataset=dataset, detail=why, outcome="denied", caller=caller)
    raise AccessDenied(f"not allowed to {what or _WHAT[action]}: {why}")


# ---------------------------------------------------------------------------- audit trail
def audit(wh, action: str, *, dataset: str | None = None, target: str | None = None, rows: int | None = None,
          detail: Any = None, outcome: str = "ok", caller: Caller | None = None, cur=None) -> None:
    """Append one row to the audit trail (``cur``: inside the caller's transaction, so the row and
    the change it records commit together)."""
    caller = current() if caller is None else caller
    if detail is not None and not isinstance(detail, str):
        detail = json.dumps(detail, default=str, sort_keys=True)
    role = None
    c = cur if cur is not None else wh.cursor()
    if caller is not None:
        role = caller.role if caller.trusted else None
        if role is None and not caller.trusted:
            with contextlib.suppress(Exception):  # through ``cur``: a role written in the same transaction
                row = c.execute("SELECT role FROM people WHERE id = ? AND active", [caller.id]).fetchone()
                role = None if row is None else row[0]
    c.execute(
        "INSERT INTO audit_log (id, happened_at, actor, actor_kind, role, action, dataset_name, target, n_rows, detail, "
        "outcome) VALUES (nextval('audit_id_seq'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_now(), caller.id if caller else "nobody", caller.kind if caller else "none", role, action, dataset,
         None if target is None else str(target), None if rows is None else int(rows), detail, outcome],
    )


def audit_trail(wh, *, limit: int | None = 1000, action: str | None = None, actor: str | None = None,
                dataset: str | None = None) -> pd.DataFrame:
    """The audit trail, newest first (admins only)."""
    require(wh, "audit")
    sql = ("SELECT id, happened_at AS at, actor, actor_kind, role, action, dataset_name AS dataset, target, n_rows, detail, outcome "
           "FROM audit_log")
    where, params = [], []
    for col, val in (("action", action), ("actor", actor), ("dataset_name", dataset)):
        if val:
            where.append(f"{col} = ?")
            params.append(val)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return wh.cursor().execute(sql, params).df()


def export_audit(wh) -> bytes:
    """The whole audit trail as CSV (admins only; the export itself is recorded)."""
    from analytics.export import to_safe_csv

    frame = audit_trail(wh, limit=None)
    audit(wh, "export_audit", rows=len(frame))
    return to_safe_csv(frame)


# ---------------------------------------------------------------------------- people and grants
def people(wh) -> pd.DataFrame:
    """Everyone with a role: id, name, role, source, added_by, added_at, last_seen, datasets."""
    require(wh, "manage_people")
    df = wh.cursor().execute(
        "SELECT p.id, p.name, p.role, p.source, p.added_by, p.added_at, p.last_seen, "
        " coalesce(string_agg(g.dataset, ', ' ORDER BY g.dataset), '') AS datasets "
        "FROM people p LEFT JOIN dataset_grants g ON g.person = p.id WHERE p.active "
        "GROUP BY ALL ORDER BY p.role DESC, p.id").df()
    return df


def _admins(cur) -> list[str]:
    return [r[0] for r in cur.execute("SELECT id FROM people WHERE active AND role = 'admin'").fetchall()]


def _last_admin_guard(cur, person: str, new_role: str | None) -> None:
    admins = _admins(cur)
    if person in admins and new_role != "admin" and len(admins) <= 1:
        raise AccessError(f"{person} is the last admin: make someone else an admin first "
                          "(a warehouse needs at least one admin)")


def set_person(wh, person: str, role: str, *, name: str | None = None, source: str = "admin") -> None:
    """Add ``person`` (email or subject) with ``role``, or change their role (admins only; the last
    admin cannot be demoted)."""
    require(wh, "manage_people")
    key = person_key(email=person) if "@" in str(person) else person_key(subject=person)
    role = _check_role(role)
    with wh.transaction() as tx:
        row = tx.execute("SELECT role FROM people WHERE id = ? AND active", [key]).fetchone()
        if row is not None:
            _last_admin_guard(tx, key, role)
            tx.execute("UPDATE people SET role = ?, name = coalesce(?, name) WHERE id = ?", [role, name, key])
        else:
            _upsert(tx, key, role, name, source)
        audit(wh, "set_role", target=key, detail={"role": role, "before": row[0] if row else None}, cur=tx)


def _upsert(cur, key: str, role: str, name: str | None, source: str) -> None:
    caller = current()
    cur.execute("DELETE FROM people WHERE id = ?", [key])
    cur.execute("INSERT INTO people (id, name, role, source, added_by, added_at, active) VALUES (?, ?, ?, ?, ?, ?, true)",
                [key, name, role, source, caller.id if caller else None, _now()])


def remove_person(wh, person: str) -> None:
    """Remove ``person`` and their grants (admins only; never the last admin)."""
    require(wh, "manage_people")
    key = str(person).strip().lower() if "@" in str(person) else str(person).strip()
    with wh.transaction() as tx:
        row = tx.execute("SELECT role FROM people WHERE id = ? AND active", [key]).fetchone()
        if row is None:
            raise AccessError(f"no person {key!r} has a role")
        _last_admin_guard(tx, key, None)
        tx.execute("DELETE FROM dataset_grants WHERE person = ?", [key])
        tx.execute("DELETE FROM people WHERE id = ?", [key])
        audit(wh, "remove_person", target=key, detail={"role": row[0]}, cur=tx)


def grant(wh, person: str, dataset: str) -> None:
    """Let ``person`` see ``dataset`` (``*``: every dataset); admins only."""
    require(wh, "manage_people")
    key = str(person).strip().lower() if "@" in str(person) else str(person).strip()
    with wh.transaction() as tx:
        if tx.execute("SELECT count(*) FROM people WHERE id = ? AND active", [key]).fetchone()[0] == 0:
            raise AccessError(f"no person {key!r} has a role: add them first")
        if dataset != ALL_DATASETS and not tx.execute("SELECT count(*) FROM datasets WHERE name = ?",
                                                      [dataset]).fetchone()[0]:
            raise AccessError(f"no dataset named {dataset!r}")
        tx.execute("DELETE FROM dataset_grants WHERE person = ? AND dataset = ?", [key, dataset])
        caller = current()
        tx.execute("INSERT INTO dataset_grants (person, dataset, granted_by, granted_at) VALUES (?, ?, ?, ?)",
                   [key, dataset, caller.id if caller else None, _now()])
        audit(wh, "grant", dataset=dataset, target=key, cur=tx)


def revoke_grant(wh, person: str, dataset: str) -> None:
    """Take ``dataset`` away from ``person`` (admins only)."""
    require(wh, "manage_people")
    key = str(person).strip().lower() if "@" in str(person) else str(person).strip()
    with wh.transaction() as tx:
        n = tx.execute("SELECT count(*) FROM dataset_grants WHERE person = ? AND dataset = ?",
                       [key, dataset]).fetchone()[0]
        if not n:
            raise AccessError(f"{key} has no grant for {dataset!r}")
        tx.execute("DELETE FROM dataset_grants WHERE person = ? AND dataset = ?", [key, dataset])
        audit(wh, "revoke_grant", dataset=dataset, target=key, cur=tx)


def grant_creator(wh, dataset: str, cur=None) -> None:
    """A person who creates a dataset may see it (called by the load that created it)."""
    caller = current()
    if caller is None or caller.trusted:
        return
    c = cur if cur is not None else wh.cursor()
    c.execute("DELETE FROM dataset_grants WHERE person = ? AND dataset = ?", [caller.id, dataset])
    c.execute("INSERT INTO dataset_grants (person, dataset, granted_by, granted_at) VALUES (?, ?, ?, ?)",
              [caller.id, dataset, caller.id, _now()])


# ---------------------------------------------------------------------------- sign-in
@dataclasses.dataclass(frozen=True)
class SignInPolicy:
    """How a signed-in identity gets a role: ``admins`` (emails or subjects that are always
    admins: the first admin comes from here), ``group_claim`` (the identity token's claim that
    lists groups, e.g. ``groups``) with ``group_roles`` (group -> role), ``default_role`` (for
    anyone else who signs in; None: nobody without a role gets in) and ``default_datasets``
    (grants given to a person added by a group or the default role)."""

    admins: tuple[str, ...] = ()
    group_claim: str | None = None
    group_roles: tuple[tuple[str, str], ...] = ()
    default_role: str | None = None
    default_datasets: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: dict | None) -> "SignInPolicy":
        """From the ``[valuescope]`` table of the secrets file (keys ``admins``, ``group_claim``,
        ``group_roles`` (a table), ``default_role``, ``default_datasets``)."""
        config = dict(config or {})
        roles = config.get("group_roles") or {}
        default_role = config.get("default_role") or None
        for r in list(dict(roles).values()) + ([default_role] if default_role else []):
            _check_role(r)
        return cls(
            admins=tuple(str(a).strip().lower() if "@" in str(a) else str(a).strip()
                         for a in (config.get("admins") or ())),
            group_claim=config.get("group_claim") or None,
            group_roles=tuple((str(g), str(r).lower()) for g, r in dict(roles).items()),
            default_role=default_role.lower() if default_role else None,
            default_datasets=tuple(str(d) for d in (config.get("default_datasets") or ())),
        )


def _group_role(claims: dict, policy: SignInPolicy) -> str | None:
    if not policy.group_claim:
        return None
    groups = claims.get(policy.group_claim)
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, (list, tuple)):
        return None
    mapping = dict(policy.group_roles)
    roles = [mapping[g] for g in groups if g in mapping]
    return max(roles, key=lambda r: _RANK[r]) if roles else None


def login_id(claims: dict) -> str | None:
    """The login event an identity token stands for: a digest of its issuer, subject, email, issue
    time (``iat``) and ``nonce`` (every browser session opened with the same sign-in carries the
    same token, hence the same id); None when the claims carry neither an issue time nor a nonce."""
    if claims.get("iat") is None and claims.get("nonce") is None:
        return None
    parts = [str(claims.get(k) or "") for k in ("iss", "sub", "email", "iat", "nonce")]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def _login_recorded(cur, key: str, login: str) -> bool:
    """Whether the sign-in ``login`` of ``key`` already has its audit row (``login`` is hex)."""
    return cur.execute("SELECT count(*) FROM audit_log WHERE action = 'sign_in' AND outcome = 'ok' AND target = ? "
                       "AND detail LIKE ?", [key, f'%"login": "{login}"%']).fetchone()[0] > 0


def sign_in(wh, claims: dict, policy: SignInPolicy) -> Caller:
    """The caller for a signed-in identity (``claims``: the ID token's claims as ``st.user`` shows
    them). The role: an admin from the configuration; else the person's stored role; else one
    derived from the group claim; else the default role. Without any: :class:`AccessDenied`
    ("signed in as ..., but has no role"), recorded.

    The audit trail gets one ``sign_in`` row per actual sign-in: per identity and login event
    (:func:`login_id`: the identity token's issuer, subject, issue time and nonce), however many
    browser sessions that sign-in opens (a new tab, a reload, a link followed); the row names the
    role the person had then. A token without an issue time or a nonce gives no login event to
    tell apart, so each call records its sign-in. A refused sign-in is recorded at every attempt.
    The person's last-seen time and role are brought up to date at every call."""
    key = person_key(claims.get("email"), claims.get("sub"))
    name = claims.get("name") or claims.get("email") or None
    caller = Caller(key, "person", None, name)
    with acting_as(SYSTEM), wh.transaction() as tx:
        row = tx.execute("SELECT role, source FROM people WHERE id = ? AND active", [key]).fetchone()
        group_role = _group_role(claims, policy)
        if key in policy.admins:
            role, source = "admin", "config"
        elif row is not None and not (row[1] == "group" and group_role and group_role != row[0]):
            role, source = row[0], row[1]
        elif group_role:
            role, source = group_role, "group"
        elif row is not None:
            role, source = row[0], row[1]
        elif policy.default_role:
            role, source = policy.default_role, "default"
        else:
            role, source = None, None
        if role is None:
            audit(wh, "sign_in", target=key, detail="no role", outcome="denied", caller=caller, cur=tx)
        else:
            if row is None or row[0] != role:
                if row is not None:
                    _last_admin_guard(tx, key, role)
                _upsert(tx, key, role, name, source)
                if row is None:
                    for d in policy.default_datasets:
                        tx.execute("INSERT INTO dataset_grants (person, dataset, granted_by, granted_at) "
                                   "VALUES (?, ?, ?, ?)", [key, d, "configuration", _now()])
            tx.execute("UPDATE people SET last_seen = ?, name = coalesce(?, name) WHERE id = ?", [_now(), name, key])
            login = login_id(claims)
            if login is None or not _login_recorded(tx, key, login):
                audit(wh, "sign_in", target=key, caller=dataclasses.replace(caller, role=role), cur=tx,
                      detail={"role": role, "source": source} | ({"login": login} if login else {}))
    if role is None:
        raise AccessDenied(f"signed in as {key}, but {key} has no role in Valuescope: ask an admin to add you "
                           "on the Admin page")
    return dataclasses.replace(caller, role=role)


# ---------------------------------------------------------------------------- what a viewer sees
_PSEUDONYM_RE = __import__("re").compile(r"^c-[0-9a-f]{12}$")


def pseudonym(customer_id: Any, salt: str = "") -> str:
    """A stable pseudonym for a customer id as viewers see it (``c-`` and 12 hex digits); a value that
    already is one stays as it is (a table presented twice shows the same pseudonyms)."""
    text = str(customer_id)
    if _PSEUDONYM_RE.match(text):
        return text
    return "c-" + hashlib.sha256(f"{salt}\x00{text}".encode("utf-8")).hexdigest()[:12]


#: columns that hold personal data (a viewer never sees them)
PERSONAL_COLUMNS = ("email", "e_mail", "name", "first_name", "last_name", "phone", "address", "postcode", "zip")
ID_COLUMNS = ("customer_id",)
#: free-text columns of customer-level tables (also as a kept attribute, ``attr_`` + the name): a
#: viewer reads them with contact details replaced (:func:`redact_text`). The events' ``text`` (review
#: or search text) is the one the data holds; the others are names such text takes elsewhere.
FREE_TEXT_COLUMNS = ("text", "review_text", "review", "comment", "comments", "title", "description", "note",
                     "notes", "message", "body", "query", "search_query")
#: ``attrs`` key that marks a table as one customer's rows without a customer id column (a timeline)
CUSTOMER_LEVEL = "customer_level"

_re = __import__("re")
_EMAIL_RE = _re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL_RE = _re.compile(
    r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>\"'\[\]]+"                      # with a scheme or www.
    r"|\b(?:[a-z0-9-]+\.)+[a-z]{2,}/[^\s<>\"'\[\]]*", _re.IGNORECASE)       # a domain with a path
_PHONE_RE = _re.compile(r"(?:\+|(?<![A-Za-z0-9_+]))\(?\d+\)?(?:[ .\-/]{0,2}\(?\d+\)?)*")
_DATE_RE = _re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}")
_TRAILING = ".,;:!?)"
#: at least this many digits make a number a phone number (a date like 2025-12-31 excepted)
PHONE_DIGITS = 7


def _link(m) -> str:
    url = m.group(0)
    tail = len(url) - len(url.rstrip(_TRAILING))
    return "[link]" + (url[len(url) - tail:] if tail else "")


def _phone(m) -> str:
    found = m.group(0)
    out, rest = "", found
    while rest:
        date = _DATE_RE.match(rest)
        if date is None:
            break
        out, rest = out + date.group(0), rest[date.end():]  # a date (and what follows) is no phone
        sep = len(rest) - len(rest.lstrip(" .-/"))
        out, rest = out + rest[:sep], rest[sep:]
    if sum(ch.isdigit() for ch in rest) < PHONE_DIGITS:
        return found
    close = ")" if rest.endswith(")") and rest.count(")") > rest.count("(") else ""  # "(call 020 7946 0958)"
    return out + "[phone]" + close


def redact_text(value: Any) -> Any:
    """``value`` with e-mail addresses, URLs and phone numbers replaced by ``[email]``, ``[link]`` and
    ``[phone]``; the rest of the text as written. A phone number is a run of at least
    :data:`PHONE_DIGITS` digits, optionally with ``+``, spaces, dots, dashes, slashes or parentheses
    between them (so a long order or card number reads ``[phone]`` too; a date does not). Values
    that are not text (missing, numbers) are returned as they are; a redacted text stays redacted."""
    if not isinstance(value, str) or not value:
        return value
    text = _EMAIL_RE.sub("[email]", value) if "@" in value else value
    if "/" in text or "www." in text.lower():
        text = _URL_RE.sub(_link, text)
    if sum(ch.isdigit() for ch in text) >= PHONE_DIGITS:
        text = _PHONE_RE.sub(_phone, text)
    return text


def is_free_text(column: Any) -> bool:
    """Whether ``column`` names a free-text column (:data:`FREE_TEXT_COLUMNS`, also as ``attr_...``)."""
    if not isinstance(column, str):
        return False
    name = column.lower()
    name = name[len("attr_"):] if name.startswith("attr_") else name
    return name in FREE_TEXT_COLUMNS


def redact_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its free-text columns (:func:`is_free_text`) passed through :func:`redact_text`
    (the frame itself when it has none; else a copy)."""
    cols = [c for c in frame.columns if is_free_text(c) and not pd.api.types.is_numeric_dtype(frame[c])]
    if not cols:
        return frame
    out = frame.copy(deep=False)
    for c in cols:
        s = out[c]
        uniq = pd.unique(s.dropna().to_numpy(dtype=object))
        mapping = {v: redact_text(v) for v in uniq}
        out[c] = s.map(lambda v: mapping.get(v, v) if isinstance(v, str) else v)
    return out


def _salt(wh) -> str:
    key = wh.setting("access:pseudonym_salt")
    if key is None:
        import secrets

        key = secrets.token_hex(16)
        with contextlib.suppress(Exception):
            wh.cursor().execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                                ["access:pseudonym_salt", key])
        key = wh.setting("access:pseudonym_salt") or key
    return key


def present(wh, obj: Any, caller: Caller | None = None) -> Any:
    """``obj`` as the caller may see it: for a caller without ``raw_ids`` a customer-level table's
    customer ids (column or index) are pseudonymised, its personal columns dropped and its free-text
    columns (a review's ``text``...) shown with e-mail addresses, phone numbers and links replaced
    (:func:`redact_frame`); anything else is returned as it is.

    ``country`` stays: it is coarse (one of a few dozen values), the pages show it in aggregates
    everywhere (groups, sentiment by country, new-customer features), and with the ids pseudonymised
    it does not name anyone."""
    if not is_customer_level(obj):
        return obj
    caller = current() if caller is None else caller
    if may(wh, "raw_ids", caller=caller):
        return obj
    salt = _salt(wh)
    out = obj.copy(deep=False)
    drop = [c for c in out.columns if isinstance(c, str) and (c.lower() in PERSONAL_COLUMNS
                                                              or c.lower().startswith("attr_email"))]
    out = redact_frame(out.drop(columns=drop))
    for c in ID_COLUMNS:
        if c in out.columns:
            out[c] = [pseudonym(v, salt) for v in out[c].astype(str)]
    if out.index.name in ID_COLUMNS:
        out.index = pd.Index([pseudonym(v, salt) for v in out.index.astype(str)], name=out.index.name)
    out.attrs = dict(obj.attrs)
    return out


def ids_for(wh, ids: Iterable[Any], caller: Caller | None = None) -> list[str]:
    """Customer ids as the caller may see them."""
    ids = [str(i) for i in ids]
    if may(wh, "raw_ids", caller=caller):
        return ids
    salt = _salt(wh)
    return [pseudonym(i, salt) for i in ids]


def resolve_customer(wh, dataset: str, shown: Any, caller: Caller | None = None) -> str | None:
    """The stored customer id behind ``shown``, an id as the caller sees it (None: no such customer).

    A caller with ``raw_ids`` names customers by their stored ids. Anyone else sees pseudonyms
    (:func:`present`) and names customers by them: the pseudonym is matched against the pseudonyms
    of the dataset's customers inside the warehouse, and the stored id it stands for is returned to
    the library code that reads the customer's rows, never shown. A stored id typed by such a
    caller finds nobody (it would tell them that the id exists)."""
    text = str(shown if shown is not None else "").strip()
    if not text:
        return None
    caller = current() if caller is None else caller
    require(wh, "read", dataset)
    if may(wh, "raw_ids", caller=caller):
        return text
    if not _PSEUDONYM_RE.match(text):
        return None
    salt = _salt(wh)
    key = (id(wh), str(getattr(wh, "path", "")), salt, str(dataset), text)
    found = _RESOLVED.get(key)
    if found is not None:  # a pseudonym always stands for the same stored id (the salt never changes)
        return found
    # the same digest as pseudonym(): sha256 of salt, NUL, id; ids that already are pseudonyms stay
    row = wh.cursor().execute(
        "SELECT customer_id FROM (SELECT DISTINCT customer_id FROM events WHERE dataset = ?) "
        "WHERE CASE WHEN regexp_full_match(customer_id, '^c-[0-9a-f]{12}$') THEN customer_id "
        "ELSE 'c-' || left(sha256(? || chr(0) || customer_id), 12) END = ? LIMIT 1",
        [dataset, salt, text]).fetchone()
    if row is None:
        return None
    if len(_RESOLVED) >= 4096:
        _RESOLVED.clear()
    _RESOLVED[key] = str(row[0])
    return str(row[0])


#: pseudonyms found by resolve_customer (the next look-up of one skips the scan of the dataset's
#: customers; a customer deleted since then simply has no rows)
_RESOLVED: dict[tuple, str] = {}


def is_customer_level(frame: Any) -> bool:
    """Whether a table holds customers' rows: a ``customer_id`` column or index, or one customer's
    rows marked by ``attrs[CUSTOMER_LEVEL]`` (a timeline, which has no id column)."""
    if not isinstance(frame, pd.DataFrame):
        return False
    return (any(c in frame.columns for c in ID_COLUMNS) or frame.index.name in ID_COLUMNS
            or bool(frame.attrs.get(CUSTOMER_LEVEL)))


def check_export(frame: Any, *, what: str = "export") -> None:
    """Refuse (:class:`AccessDenied`) a customer-level file for a caller without the ``export``
    right, and record every customer-level file made (rows, columns) in the audit trail. Called by
    ``analytics.export`` for every CSV and Parquet it writes, so no page can hand one out unchecked."""
    if not is_customer_level(frame):
        return
    caller = current()
    wh = current_warehouse()
    dataset = frame.attrs.get("dataset") if isinstance(frame.attrs.get("dataset"), str) else None
    if wh is None:  # no warehouse to read the role from: the role the caller signed in with
        if caller is None or (not caller.trusted and _RANK.get(caller.role or "", -1) < _RANK[ACTIONS["export"]]):
            raise AccessDenied(f"not allowed to {_WHAT['export']}: "
                               + ("nobody is signed in" if caller is None
                                  else f"{caller.label()} is {_article(caller.role or 'x')} {caller.role or 'nobody'}"))
        return
    require(wh, "export", dataset if dataset and wh.exists_dataset(dataset) else None)
    with contextlib.suppress(Exception):
        audit(wh, what, dataset=dataset, rows=len(frame), detail={"columns": [str(c) for c in frame.columns][:40]})
