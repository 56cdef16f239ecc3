"""The lab and the run folder: finding or creating the lab and its format
version (``lab.json``), run ids, and creating a standalone run's folder
(``run.json`` with git provenance and the recorded environment,
``patch.diff``, the ``lock``) as docs/FORMAT.md says.

The Rust side makes the same things for supervised runs (its ``id``,
``rundir``, ``spec`` and ``git`` modules): the two must agree, and
``conformance/`` at the repository root holds what both are tested on.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from typing import Mapping, Optional

from ._records import _jsonable, _now, _text
from ._writer import _warn

FORMAT = 2
"""The lab format version this client writes (it reads labs of 1 and 2)."""
_FORMATS_READ = (1, 2)

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
_ID_EPOCH = 1704067200  # 2024-01-01T00:00:00Z

# The environment a run records: these, and LABMATE_* unless the name looks
# secret. The same rule as the supervisor's; conformance/env-filter.json
# holds the names both sides are tested on.
_ENV_KEPT = ("CUDA_VISIBLE_DEVICES", "PYTHONPATH")
_SECRET_ANYWHERE = ("TOKEN", "SECRET", "PASSWORD", "KEY")
_SECRET_PART_STARTS = ("PASS", "CRED", "AUTH", "PRIVATE", "COOKIE", "SESSION")
_NOT_SECRET = frozenset(
    ("AUTHOR", "AUTHORS", "PASSES", "PASSED", "PASSING", "PASSIVE", "PASSTHROUGH", "CREDIT")
)
# ASCII letters only, as the supervisor does: "ß".upper() is "SS".
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class LabmateError(Exception):
    """The lab or the run cannot be used (unknown format, bad folder, ...)."""


def _write_new_file(path: str, data: bytes) -> None:
    """Create path with data atomically, unless it already exists."""
    if os.path.exists(path):
        return
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _find_lab(dir: Optional[str] = None) -> str:
    """The lab folder to use, created as FORMAT.md says when missing."""
    if dir is not None:
        lab = os.path.join(os.path.abspath(dir), ".labmate")
    elif os.environ.get("LABMATE_DIR"):
        lab = os.path.abspath(os.environ["LABMATE_DIR"])
    else:
        here = os.getcwd()
        folder = here
        while True:
            if os.path.isfile(os.path.join(folder, ".labmate", "lab.json")):
                lab = os.path.join(folder, ".labmate")
                break
            parent = os.path.dirname(folder)
            if parent == folder:
                lab = os.path.join(here, ".labmate")
                break
            folder = parent
    marker = os.path.join(lab, "lab.json")
    if not os.path.exists(marker):
        os.makedirs(os.path.join(lab, "runs"), exist_ok=True)
        _write_new_file(os.path.join(lab, ".gitignore"), b"*\n")
        # lab.json last: it is what marks the folder as a lab.
        _write_new_file(marker, b'{"format": %d}\n' % FORMAT)
    try:
        version = _lab_format(marker)
    except (OSError, ValueError, AttributeError) as exc:
        raise LabmateError("cannot read the lab marker %s: %s" % (marker, exc)) from None
    if type(version) is not int or version not in _FORMATS_READ:
        raise LabmateError(
            "the lab %s has format %r; this labmate client knows formats %s"
            % (lab, version, " and ".join(map(str, _FORMATS_READ)))
        )
    os.makedirs(os.path.join(lab, "runs"), exist_ok=True)
    return lab


def _lab_format(marker: str):
    with open(marker, "rb") as f:
        return json.loads(f.read().decode("utf-8")).get("format")


def _supervised_lab(run_dir: str) -> Optional[str]:
    """The lab of a run the supervisor made: the one it names, else the
    folder the run's folder is in, when that is a lab."""
    named = os.environ.get("LABMATE_DIR")
    if named:
        return os.path.abspath(named)
    lab = os.path.dirname(os.path.dirname(run_dir))
    return lab if os.path.isfile(os.path.join(lab, "lab.json")) else None


def _mark_format_2(lab: str) -> None:
    """Before the first batch record goes into a version-1 lab, its
    lab.json becomes {"format": 2} (a new file renamed over it), so that a
    reader of version 1 refuses the lab rather than skip its points."""
    marker = os.path.join(lab, "lab.json")
    try:
        if _lab_format(marker) != 1:
            return
        tmp = "%s.tmp-%d" % (marker, os.getpid())
        with open(tmp, "wb") as f:
            f.write(b'{"format": 2}\n')
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, marker)
    except (OSError, ValueError, AttributeError) as exc:
        _warn("cannot mark the lab %s as format 2 (%s); readers of format 1 will skip its points"
              % (lab, exc))


def _new_run_id(now: float) -> str:
    seconds = max(0, int(now) - _ID_EPOCH)
    random_bits = secrets.randbits(20)
    chars = [_ID_ALPHABET[(seconds >> shift) & 31] for shift in (25, 20, 15, 10, 5, 0)]
    chars += [_ID_ALPHABET[(random_bits >> shift) & 31] for shift in (15, 10, 5, 0)]
    return "r-" + "".join(chars)


# What the supervisor pins too (crates/labmate/src/git.rs), so that both
# record the same `git` object whatever the user's git config: paths as they
# are in a patch's headers, diffs of the whole tree whatever the folder,
# renames found as git finds them by default...
_GIT_CONFIG = ["-c", "core.quotepath=off", "-c", "diff.relative=false", "-c", "diff.renames=true"]
# ...and, in every diff, what could keep the patch from applying with git
# apply (colour, external diff tools, textconv, prefixes, submodule logs).
_GIT_DIFF = ["diff", "--no-color", "--no-ext-diff", "--no-textconv",
             "--src-prefix=a/", "--dst-prefix=b/", "--submodule=short"]


def _git(args: list, cwd: str) -> Optional[bytes]:
    """git's stdout, or None when git is missing or the command fails."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0")
    try:
        done = subprocess.run(
            ["git"] + _GIT_CONFIG + args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_provenance(cwd: str):
    """(git object for run.json or None, patch bytes or None), as docs/FORMAT.md says."""
    top = _git(["rev-parse", "--show-toplevel"], cwd)
    top = top[:-1] if top and top.endswith(b"\n") else top
    if not top:
        return None, None
    top = os.fsdecode(top)  # a path for the next commands, not recorded
    commit = _git(["rev-parse", "--verify", "-q", "HEAD"], top)
    branch = _git(["symbolic-ref", "--short", "-q", "HEAD"], top)
    if commit is not None:
        patch = _git(_GIT_DIFF + ["HEAD", "--binary"], top)
        dirty = bool(patch)
    else:  # no commit yet: every tracked file is a change, and there is no patch
        patch = None
        dirty = bool(_git(["ls-files", "-z"], top))
    untracked = _git(["ls-files", "-z", "--others", "--exclude-standard"], top) or b""
    info = {
        "commit": _one_line(commit),
        "branch": _one_line(branch),
        "dirty": dirty,
        "untracked": [p.decode("utf-8", "replace") for p in untracked.split(b"\0") if p],
        "patch_bytes": len(patch) if patch else 0,
    }
    return info, (patch or None)


def _one_line(out: Optional[bytes]) -> Optional[str]:
    """A one-line answer of git as text; None for none or an empty one."""
    return (out.decode("utf-8", "replace").strip() or None) if out else None


def _env_subset(environ: Optional[Mapping[str, str]] = None) -> dict:
    """The variables a run records (of os.environ by default), by name."""
    environ = os.environ if environ is None else environ
    return {
        name: environ[name]
        for name in sorted(environ)
        if name in _ENV_KEPT or (name.startswith("LABMATE_") and not _looks_secret(name))
    }


def _looks_secret(name: str) -> bool:
    """Whether a variable's name says it may hold a secret: TOKEN, SECRET,
    PASSWORD or KEY anywhere in it, or a part of it (between `_`, `-`, `.`)
    starting with PASS, CRED, AUTH, PRIVATE, COOKIE or SESSION, except words
    that only look like one (AUTHOR, PASSED, CREDIT...)."""
    upper = name.translate(_ASCII_UPPER)
    if any(word in upper for word in _SECRET_ANYWHERE):
        return True
    parts = upper.replace("-", "_").replace(".", "_").split("_")
    return any(part.startswith(_SECRET_PART_STARTS) and part not in _NOT_SECRET for part in parts)


def _user() -> str:
    """Who runs the script, as the supervisor finds it: USER, LOGNAME, then
    the account of the user id."""
    for variable in ("USER", "LOGNAME"):
        value = os.environ.get(variable)
        if value is not None and _is_text(value):
            return value
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return "uid%d" % os.getuid()


def _is_text(value: str) -> bool:
    """False for a string holding bytes that were not UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _create_run_folder(lab: str, name, tags: list, config: dict):
    """Create runs/<id> per FORMAT.md and take its lock.

    Returns (id, folder, lock fd). The lock is taken before the rename, so a
    reader never sees the run without a live owner."""
    runs = os.path.join(lab, "runs")
    cwd = os.getcwd()
    git, patch = _git_provenance(cwd)
    for _attempt in range(50):
        created_at = _now()
        run_id = _new_run_id(created_at)
        # Per process, so that two writers drawing the same id never share it.
        tmp = os.path.join(runs, ".tmp-%s-%d" % (run_id, os.getpid()))
        final = os.path.join(runs, run_id)
        if os.path.exists(final):
            continue
        try:
            os.mkdir(tmp)
        except FileExistsError:
            continue
        try:
            lock_fd = _fill_run_folder(tmp, final, run_id, created_at, cwd, name, tags, config, git, patch)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                continue  # the id was taken in the meantime: draw another
            raise
        return run_id, final, lock_fd
    raise LabmateError("could not find a free run id in %s" % runs)


def _fill_run_folder(tmp, final, run_id, created_at, cwd, name, tags, config, git, patch):
    """Write run.json, the patch and the lock into `tmp`, then rename it to
    `final`. Returns the lock fd; on failure nothing is left behind."""
    lock_fd = None
    try:
        doc = {
            "format": FORMAT,
            "id": run_id,
            "name": name,
            "tags": tags,
            "command": [],  # FORMAT.md: [] for a client-made run
            "cwd": cwd,
            "host": socket.gethostname(),
            "user": _user(),
            "created_at": created_at,
            "config": _jsonable(config),
            "env": _env_subset(),
            "git": git,
            "origin": "client",
        }
        text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)
        with open(os.path.join(tmp, "run.json"), "wb") as f:
            f.write((_text(text) + "\n").encode("utf-8"))
        if patch:
            with open(os.path.join(tmp, "patch.diff"), "wb") as f:
                f.write(patch)
        lock_fd = os.open(os.path.join(tmp, "lock"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        os.rename(tmp, final)
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return lock_fd
