"""The Python client against the golden fixtures in conformance/ (at the
repository root), which the Rust side's tests (tests/conformance.rs) read
too: every fixture's run folder read as docs/FORMAT.md says gives its
expected.json; the client writes records that read back the same, and the
client fixtures byte for byte; both sides record the same environment.

Run from the repository root:

    PYTHONPATH=python python3 -m unittest discover -s python/tests -v
"""

import base64
import binascii
import fractions
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

CLIENT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/
FIXTURES = os.path.join(os.path.dirname(CLIENT_DIR), "conformance")
sys.path.insert(0, CLIENT_DIR)

import labmate  # noqa: E402
import labmate._records  # noqa: E402
import labmate._rundir  # noqa: E402
import labmate._writer  # noqa: E402

try:  # discovered as the package `tests` (cargo test) or as top-level modules
    from .test_client import HAVE_GIT, LABMATE_BIN, LabTestCase
except ImportError:
    from test_client import HAVE_GIT, LABMATE_BIN, LabTestCase  # noqa: E402

FIXED = os.path.join(FIXTURES, "fixed.py")
FIXTURE_CWD = "/home/me/exp"  # the cwd the fixtures' run.json files hold


def fixture_json(*parts):
    with open(os.path.join(FIXTURES, *parts), "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def run_fixtures():
    return sorted(name for name in os.listdir(FIXTURES)
                  if os.path.isfile(os.path.join(FIXTURES, name, "expected.json")))


def strictly_utf8(value):
    """Every string in a parsed JSON value, as a reader in another language
    sees it: a lone surrogate is no text."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, list):
        for item in value:
            strictly_utf8(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            strictly_utf8(key)
            strictly_utf8(item)


# --------------------------------------------------------------------------
# A reader of run folders, written from docs/FORMAT.md alone


NON_FINITE = {"NaN": math.nan, "nan": math.nan, "Infinity": math.inf, "inf": math.inf,
              "+Infinity": math.inf, "-Infinity": -math.inf, "-inf": -math.inf}
BARE_TOKENS = [("-Infinity", '"-Infinity"'), ("Infinity", '"Infinity"'), ("NaN", '"NaN"'),
               ("-inf", '"-Infinity"'), ("inf", '"Infinity"'), ("nan", '"NaN"')]
STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1
# Fields every record type may have, and what each must be when present.
FIELD_TYPES = {
    "name": "string", "tags": "strings", "kind": "string", "message": "string",
    "boot_id": "string", "status": "string", "reason": "string",
    "pid": (0, 2**32 - 1), "child_pid": (0, 2**32 - 1), "leader_start": (0, 2**64 - 1),
    "pgid": (-(2**31), 2**31 - 1), "exit_code": (-(2**31), 2**31 - 1), "signal": (-(2**31), 2**31 - 1),
}


class Malformed(Exception):
    pass


def _no_bare_constant(token):
    raise ValueError("bare %s" % token)


def quote_bare_non_finite(text):
    """Bare NaN/Infinity/-Infinity/nan/inf/-inf outside strings, quoted."""
    out, i, in_string, escaped, changed = [], 0, False, False, False
    while i < len(text):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
            out.append(c)
            i += 1
            continue
        if c == '"':
            in_string = True
            out.append(c)
            i += 1
            continue
        for token, quoted in BARE_TOKENS:
            if text.startswith(token, i):
                out.append(quoted)
                i += len(token)
                changed = True
                break
        else:
            out.append(c)
            i += 1
    return "".join(out) if changed else None


class JSONObject(dict):
    """A JSON object as parsed, remembering the names it gives twice."""

    twice = frozenset()


def json_object(pairs):
    found = JSONObject(pairs)
    if len(found) != len(pairs):
        seen = set()
        found.twice = frozenset(k for k, _ in pairs if k in seen or seen.add(k))
    return found


# The fields a record's type may use; one given twice makes the line
# malformed, as it does for the Rust reader (the last one does not win).
RECORD_FIELDS = frozenset((
    "t", "step", "time", "n", "dstep", "dt_us", "data", "name", "tags", "kind", "message",
    "pid", "child_pid", "pgid", "leader_start", "boot_id", "status", "exit_code", "signal", "reason",
))


def parse_line(raw):
    """One line as a record (a dict), or Malformed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed("not UTF-8: %s" % exc)
    try:
        record = json.loads(text, parse_constant=_no_bare_constant, object_pairs_hook=json_object)
    except ValueError:
        fixed = quote_bare_non_finite(text)
        if fixed is None:
            raise Malformed("not JSON")
        try:
            record = json.loads(fixed, parse_constant=_no_bare_constant, object_pairs_hook=json_object)
        except ValueError:
            raise Malformed("not JSON")
    if not isinstance(record, dict):
        raise Malformed("not an object")
    if record.twice & RECORD_FIELDS:
        raise Malformed("%s given twice" % ", ".join(sorted(record.twice & RECORD_FIELDS)))
    if not isinstance(record.get("t"), str):
        raise Malformed("no type")
    for field, want in FIELD_TYPES.items():
        value = record.get(field)
        if value is None:
            continue
        if want == "string":
            ok = isinstance(value, str)
        elif want == "strings":
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            ok = type(value) is int and want[0] <= value <= want[1]
        if not ok:
            raise Malformed("%s is not a %s" % (field, want))
    strictly_utf8(record)
    return record


def exact_step(value):
    """A step as written, or Malformed."""
    if type(value) is int:
        if STEP_MIN <= value <= STEP_MAX:
            return value
        raise Malformed("step outside the signed 64-bit range")
    if type(value) is float and value.is_integer() and STEP_MIN <= value < 2**63:
        return int(value)
    raise Malformed("step is not an integer")


def metric_value(value):
    """A metric value as a float, or None when it is not a number."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return NON_FINITE.get(value)
    return None


def read_batch(record):
    """The steps of a batch record as [(step, time, {key: value})], and
    whether it had values that are no numbers; or Malformed."""
    n, dt_us = record.get("n"), record.get("dt_us")
    if type(n) is not int or n < 1:
        raise Malformed("n is not a count of steps")
    if not isinstance(dt_us, list) or len(dt_us) != n or not all(plain_int(d) for d in dt_us):
        raise Malformed("dt_us is not n integers")
    if record.get("step") is None:
        raise Malformed("batch record without a step")
    steps = [exact_step(record["step"])]
    dstep = record.get("dstep")
    if dstep is None and n == 1:
        deltas = []
    elif plain_int(dstep):
        deltas = [dstep] * (n - 1)
    elif isinstance(dstep, list) and len(dstep) == n - 1 and all(plain_int(d) for d in dstep):
        deltas = dstep
    else:
        raise Malformed("dstep is neither an integer nor n - 1 of them")
    for delta in deltas:
        steps.append(steps[-1] + delta)
        if not STEP_MIN <= steps[-1] <= STEP_MAX:
            raise Malformed("a step runs past the signed 64-bit range")
    base = metric_value(record.get("time"))
    if base is None or not math.isfinite(base):
        raise Malformed("batch record without a finite time")
    data = record.get("data")
    if not isinstance(data, dict):
        raise Malformed("batch data is not an object")
    if getattr(data, "twice", None):
        raise Malformed("data: %s given twice" % ", ".join(map(repr, sorted(data.twice))))
    rows = [(step, base + offset / 1e6, {}) for step, offset in zip(steps, dt_us)]
    dropped = False
    for key, column in data.items():
        if isinstance(column, dict):
            if "at" not in column or "v" not in column:
                raise Malformed("a column object without at or v")
            at = column["at"]
            if not isinstance(at, list) or not all(type(p) is int for p in at) \
                    or any(b <= a for a, b in zip(at, at[1:])) or (at and not 0 <= at[0] <= at[-1] < n):
                raise Malformed("at is not ascending positions within the batch")
            values = column_values(column["v"])
        else:
            at, values = range(n), column_values(column)
        if len(values) != len(at):
            raise Malformed("%r has %d values for %d positions" % (key, len(values), len(at)))
        for position, value in zip(at, values):
            if value is None:
                continue  # no value at this step
            number = metric_value(value)
            if number is None:
                dropped = True
            else:
                rows[position][2][key] = number
    return rows, dropped


def plain_int(value):
    """An integer within 64 bits, written as one (not 1.0, not true)."""
    return type(value) is int and STEP_MIN <= value <= STEP_MAX


def column_values(values):
    """A column's values as written: an array, or base64 of doubles."""
    if isinstance(values, list):
        return values
    if isinstance(values, str):
        try:
            raw = base64.b64decode(values, validate=True)
        except (binascii.Error, ValueError):
            raise Malformed("values that are not base64")
        if len(raw) % 8:
            raise Malformed("base64 that is not whole doubles")
        return list(struct.unpack("<%dd" % (len(raw) // 8), raw))
    raise Malformed("values that are neither an array nor base64")


def as_output(value):
    """A float as the fixtures and every --json output write it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def read_run(folder):
    """What a reader must answer for a run folder, in expected.json's terms,
    and the valid records it read (stream by stream, in order)."""
    with open(os.path.join(folder, "run.json"), "rb") as f:
        spec = json.loads(f.read().decode("utf-8"))
    run = {"id": spec["id"], "name": spec.get("name"), "status": None, "exit_code": None,
           "signal": None, "reason": None, "tags": list(spec.get("tags") or []),
           "config": dict(spec.get("config") or {}), "summary": {}, "metrics": {},
           "events": [], "warnings": 0}
    points, records, torn, ended = [], [], 0, False
    streams = sorted(n for n in os.listdir(folder) if n.endswith(".jsonl"))
    for name in streams:
        with open(os.path.join(folder, name), "rb") as f:
            lines = f.read().split(b"\n")
        if lines.pop():
            torn += 1  # bytes after the last newline
        for raw in lines:
            if not raw.strip(b" \t\r\n\x0c"):
                continue
            try:
                record = parse_line(raw)
                kind = record["t"]
                if kind == "log":
                    if record.get("step") is None:
                        raise Malformed("log record without a step")
                    step = exact_step(record["step"])
                    data = record.get("data")
                    if not isinstance(data, dict):
                        raise Malformed("log data is not an object")
                elif kind == "batch":
                    rows, dropped = read_batch(record)
                elif kind in ("config", "summary") and not isinstance(record.get("data", {}), dict):
                    raise Malformed("data is not an object")
                elif kind == "end" and record.get("status") is None:
                    raise Malformed("end record without a status")
                elif kind == "queued" and record.get("pid") is None:
                    raise Malformed("queued record without a pid")
            except Malformed:
                run["warnings"] += 1
                continue
            records.append(record)
            time = metric_value(record.get("time"))
            time = math.nan if time is None else time
            if kind == "log":
                dropped = False
                for key, value in data.items():
                    number = metric_value(value)
                    if number is None:
                        dropped = True
                    else:
                        points.append((key, step, time, number))
                run["warnings"] += dropped
            elif kind == "batch":
                for step, time, values in rows:
                    points += [(key, step, time, value) for key, value in values.items()]
                run["warnings"] += dropped
            elif kind in ("config", "summary"):
                run[kind].update(record.get("data") or {})
            elif kind == "meta":
                if run["name"] is None and record.get("name"):
                    run["name"] = record["name"]
                run["tags"] += [t for t in record.get("tags") or [] if t not in run["tags"]]
            elif kind == "event":
                run["events"].append([record.get("kind") or "info", record.get("message") or ""])
            elif kind == "end" and not ended:
                ended = True
                for field in ("status", "exit_code", "signal", "reason"):
                    run[field] = record.get(field)
    assert ended, "every fixture's run has ended"
    run["warnings"] += torn
    for key, step, time, value in sorted(points, key=lambda p: p[1]):  # stable: ties keep file order
        run["metrics"].setdefault(key, []).append([step, as_output(time), as_output(value)])
    run["metrics"] = dict(sorted(run["metrics"].items()))
    return run, records


# --------------------------------------------------------------------------


class FixtureTest(unittest.TestCase):
    maxDiff = None

    def test_every_fixture_reads_as_its_expected_json_says(self):
        names = run_fixtures()
        self.assertEqual(len(names), 19, names)
        for name in names:
            with self.subTest(fixture=name):
                expected = fixture_json(name, "expected.json")
                expected.pop("about")
                found, _ = read_run(os.path.join(FIXTURES, name, "run"))
                self.assertEqual(found, expected)

    def test_the_client_writes_every_record_of_the_fixtures_so_that_it_reads_the_same(self):
        # The records of both sides' fixtures, written again by the client's
        # own encoders into a run folder of their own, read back the same:
        # non-finite values, big steps, unicode keys and all. Points compare
        # step by step, whichever records (log or batch) hold them.
        for name in run_fixtures():
            with self.subTest(fixture=name):
                _, records = read_run(os.path.join(FIXTURES, name, "run"))
                tmp = tempfile.mkdtemp(prefix="labmate-conformance-")
                self.addCleanup(shutil.rmtree, tmp, True)
                records = [r for r in records if r["t"] in CLIENT_WRITES]
                writer = labmate._writer._Writer(tmp)
                for record in records:
                    writer.queue.extend(client_items(record))
                writer.close()
                lines = read_lines(tmp)
                for line in lines:  # the documented strings, never a bare NaN
                    json.loads(line.decode("utf-8"), parse_constant=_no_bare_constant)
                again = [parse_line(line) for line in lines]
                self.assertEqual([r["t"] for r in again if r["t"] == "log"], [], "points go in batches")
                self.assertEqual(comparable(again), comparable(records))

    def test_the_client_fixtures_are_what_the_client_writes_today(self):
        # Byte for byte: the standalone run (run.json and records) and the
        # records the client added to a supervised run.
        for name, supervised in (("client-standalone-v2", False), ("client-supervised-v2", True)):
            with self.subTest(fixture=name):
                fixture = os.path.join(FIXTURES, name, "run")
                work = os.path.realpath(tempfile.mkdtemp(prefix="labmate-conformance-"))
                self.addCleanup(shutil.rmtree, work, True)
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "USER": "me",
                       "LABMATE_SEED": "7", "LABMATE_PASSWD": "not recorded",
                       "GIT_CEILING_DIRECTORIES": os.path.dirname(work),
                       "PYTHONDONTWRITEBYTECODE": "1"}
                if supervised:
                    run_dir = os.path.join(work, "run")
                    os.mkdir(run_dir)
                    for part in ("run.json", "supervisor.jsonl", "lock"):
                        shutil.copy(os.path.join(fixture, part), run_dir)
                    env.update(LABMATE_RUN_DIR=run_dir, LABMATE_RUN_ID=fixture_json(name, "expected.json")["id"])
                else:
                    env["CUDA_VISIBLE_DEVICES"] = "0"
                subprocess.run([sys.executable, FIXED, CLIENT_DIR, os.path.join(FIXTURES, name, "train.py")],
                               cwd=work, env=env, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                if not supervised:
                    runs = os.path.join(work, ".labmate", "runs")
                    [run_id] = os.listdir(runs)
                    run_dir = os.path.join(runs, run_id)
                    self.assertEqual(sorted(os.listdir(run_dir)), sorted(os.listdir(fixture)))
                    with open(os.path.join(run_dir, "run.json"), "rb") as f:
                        made = f.read().replace(json.dumps(work).encode(), json.dumps(FIXTURE_CWD).encode())
                    with open(os.path.join(fixture, "run.json"), "rb") as f:
                        self.assertEqual(made.decode(), f.read().decode())
                for part in ("client-4242.jsonl",):
                    with open(os.path.join(run_dir, part), "rb") as made, \
                            open(os.path.join(fixture, part), "rb") as golden:
                        self.assertEqual(made.read().decode(), golden.read().decode())


CLIENT_WRITES = ("log", "batch", "config", "summary", "meta", "event", "start", "end")


def read_lines(folder):
    [name] = [n for n in os.listdir(folder) if n.endswith(".jsonl")]
    with open(os.path.join(folder, name), "rb") as f:
        data = f.read()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def to_python(value):
    """A value as read, as a script would hand it to the client."""
    if isinstance(value, str) and value in NON_FINITE:
        return NON_FINITE[value]
    if isinstance(value, dict):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_python(v) for v in value]
    return value


def client_items(record):
    """What the client queues for a record: log points as (step, time in
    integer nanoseconds, data), every other record already encoded."""
    if record["t"] == "log":
        data = {k: v for k, v in to_python(record["data"]).items() if metric_value(v) is not None}
        return [(exact_step(record["step"]), nanoseconds(metric_value(record["time"])), data)]
    if record["t"] == "batch":
        return [(step, nanoseconds(when), data) for step, when, data in read_batch(record)[0]]
    return [labmate._records._record_line(to_python(record))]


def nanoseconds(seconds):
    """A time in seconds as the client's clock (time.time_ns) gives it."""
    return round(fractions.Fraction(seconds) * 1_000_000_000)


def comparable(records):
    """Records as a reader takes them: the points of each step (of a log
    record or of a batch) as a log record of numbers, at the time the
    client keeps (to the microsecond)."""
    found = []
    for record in records:
        if record["t"] == "batch":
            steps = read_batch(record)[0]
        elif record["t"] == "log":
            values = {k: metric_value(v) for k, v in record["data"].items()}
            steps = [(exact_step(record["step"]), metric_value(record["time"]),
                      {k: v for k, v in values.items() if v is not None})]
        else:
            record = dict(record)
            if isinstance(record.get("time"), (int, float)):
                record["time"] = round(record["time"], 6)
            found.append(record)
            continue
        for step, time, values in steps:
            found.append({"t": "log", "step": step, "time": round(time, 6),
                          "data": {k: as_output(v) for k, v in values.items()}})
    return found


class EnvFilterTest(unittest.TestCase):
    def test_the_environment_filter_keeps_and_drops_what_the_table_says(self):
        names = fixture_json("env-filter.json")["names"]
        self.assertGreater(len(names), 20)
        wrong = [
            "%s should be %s" % (name, verdict)
            for name, verdict in names.items()
            if (name in labmate._rundir._env_subset({name: "v"})) != (verdict == "kept")
        ]
        self.assertEqual(wrong, [])

    def test_the_environment_is_recorded_in_name_order(self):
        env = {"LABMATE_Z": "1", "CUDA_VISIBLE_DEVICES": "0", "LABMATE_A": "2", "HOME": "/h"}
        self.assertEqual(list(labmate._rundir._env_subset(env)),
                         ["CUDA_VISIBLE_DEVICES", "LABMATE_A", "LABMATE_Z"])


class UserTest(unittest.TestCase):
    """run.json's `user`, as the supervisor finds it: USER, then LOGNAME,
    then the password database."""

    def user(self, **env):
        code = "import labmate._rundir as r; print(repr(r._user()))"
        base = {k: v for k, v in os.environ.items() if k not in ("USER", "LOGNAME", "LNAME", "USERNAME")}
        base.update(env, PYTHONPATH=CLIENT_DIR)
        done = subprocess.run([sys.executable, "-c", code], env=base, stdout=subprocess.PIPE,
                              universal_newlines=True, check=True)
        return eval(done.stdout)

    def test_user_then_logname_then_the_account(self):
        import pwd
        self.assertEqual(self.user(USER="u1", LOGNAME="l1"), "u1")
        self.assertEqual(self.user(LOGNAME="l1", USERNAME="n1"), "l1")
        self.assertEqual(self.user(USER="", LOGNAME="l1"), "")
        self.assertEqual(self.user(USERNAME="n1"), pwd.getpwuid(os.getuid()).pw_name)


class RunFolderTest(LabTestCase):
    def test_names_that_are_not_utf8_are_recorded_as_the_supervisor_does(self):
        # A folder and a file whose names are not UTF-8 (Latin-1 here): the
        # Rust side writes them with U+FFFD, and reads no lone surrogate.
        work = os.path.join(os.fsencode(self.tmp), b"caf\xe9")
        os.mkdir(work)
        env = self.env(LABMATE_DIR=self.lab, LABMATE_NOTE="caf\udce9")
        if HAVE_GIT:
            for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "x"]):
                subprocess.run(["git"] + args, cwd=work, env=env, check=True)
            subprocess.run(["git", "checkout", "-q", "-b", b"caf\xe9"], cwd=work, env=env, check=True)
            open(os.path.join(work, b"na\xefve.txt"), "w").close()
        script = "import labmate; labmate.init(name='x', tags=['a', 'a', 'b']); labmate.finish()"
        subprocess.run([sys.executable, "-c", script], cwd=work, env=env, check=True)
        with open(os.path.join(self.only_run(), "run.json"), "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
        strictly_utf8(doc)
        self.assertEqual(doc["cwd"], os.path.join(self.tmp, "caf\ufffd"))
        self.assertEqual(doc["env"]["LABMATE_NOTE"], "caf\ufffd")
        self.assertEqual(doc["tags"], ["a", "b"])
        if HAVE_GIT:
            self.assertEqual(doc["git"]["branch"], "caf\ufffd")
            self.assertEqual(doc["git"]["untracked"], ["na\ufffdve.txt"])
        if LABMATE_BIN:
            done = subprocess.run([LABMATE_BIN, "runs", "--json"], cwd=self.tmp, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
            self.assertEqual(done.stderr, b"")
            runs = json.loads(done.stdout)
            self.assertEqual([r["name"] for r in runs], ["x"])


class NotTextTest(LabTestCase):
    def test_strings_that_are_not_text_are_recorded_as_the_supervisor_writes_them(self):
        # Names made from bytes that are not UTF-8 (os.listdir, os.environ)
        # hold lone surrogates, which no reader takes: the client writes
        # U+FFFD for them, and nothing else of the record is lost.
        self.run_script("""
            import labmate
            run = labmate.init(name="x", config={"file": "caf\\udce9"})
            labmate.log({"caf\\udce9": 1.0, "ok": 2.0})
            labmate.log({"caf\\udce9": float("nan"), "half\\ud800": 3})
            run.summary["caf\\udce9"] = "na\\udcefve"
            labmate.alert("caf\\udce9")
            labmate.finish()
        """, env=self.env(LABMATE_DIR=self.lab))
        records = self.records(self.only_run())
        for record in records:
            strictly_utf8(record)
        logs = [r["data"] for r in records if r["t"] == "log"]
        self.assertEqual(logs, [{"caf\ufffd": 1.0, "ok": 2.0}, {"caf\ufffd": "NaN", "half\ufffd": 3}])
        self.assertEqual([r["data"] for r in records if r["t"] == "summary"], [{"caf\ufffd": "na\ufffdve"}])
        if LABMATE_BIN:
            done = subprocess.run([LABMATE_BIN, "metrics", "x", "--json"], cwd=self.work,
                                  env=self.env(LABMATE_DIR=self.lab), stdout=subprocess.PIPE, check=True)
            self.assertEqual(sorted(json.loads(done.stdout)), ["caf\ufffd", "half\ufffd", "ok"])


@unittest.skipUnless(LABMATE_BIN, "LABMATE_BIN (the Rust labmate binary) is not set")
class ExactValuesTest(LabTestCase):
    def test_every_double_the_client_logs_reads_back_exactly(self):
        done = self.run_script("""
            import json, random, labmate
            rng = random.Random(1)
            values = [rng.choice([rng.random(), rng.uniform(-1e300, 1e300), rng.random() * 1e-300,
                                  rng.random() * 1e-310, rng.lognormvariate(0, 50)])
                      for _ in range(2000)]
            labmate.init(name="exact")
            for v in values:
                labmate.log({"v": v})
            labmate.finish()
            print(json.dumps(values))
        """, env=self.env(LABMATE_DIR=self.lab))
        values = json.loads(done.stdout)
        done = subprocess.run([LABMATE_BIN, "metrics", "exact", "v", "--json"], cwd=self.work,
                              env=self.env(LABMATE_DIR=self.lab), stdout=subprocess.PIPE, check=True)
        read = [p["value"] for p in json.loads(done.stdout)["v"]]
        wrong = [(i, v, r) for i, (v, r) in enumerate(zip(values, read)) if v != r]
        self.assertEqual(len(read), len(values))
        self.assertEqual(wrong[:5], [], "%d of %d values read back otherwise" % (len(wrong), len(values)))


if __name__ == "__main__":
    unittest.main()
