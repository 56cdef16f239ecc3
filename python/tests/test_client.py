"""Tests of the labmate Python client against docs/FORMAT.md.

Run from the repository root:

    PYTHONPATH=python python3 -m unittest discover -s python/tests -v

Every test works in its own temporary folder and runs the client in a
subprocess with a controlled environment (HOME in the temporary folder,
GIT_CONFIG_NOSYSTEM=1, no inherited LABMATE_* variables). The tests marked
"cross-side" also drive the Rust binary; they run only when LABMATE_BIN
names it.
"""

import base64
import fcntl
import json
import math
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

CLIENT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/
sys.path.insert(0, CLIENT_DIR)

import labmate  # noqa: E402  (the package under test, for its pure helpers)
import labmate._rundir  # noqa: E402

LABMATE_BIN = os.environ.get("LABMATE_BIN")
ID_RE = re.compile(r"^r-[0-9abcdefghjkmnpqrstvwxyz]{10}$")
NON_FINITE = {"NaN", "Infinity", "-Infinity"}
HAVE_GIT = shutil.which("git") is not None


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_written(value):
    """A double as a log record writes it: non-finite ones as the strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def wait_for(predicate, timeout=15.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    return predicate()


class LabTestCase(unittest.TestCase):
    """A temporary experiment folder and helpers to run client scripts."""

    maxDiff = None

    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="labmate-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.work = os.path.join(self.tmp, "exp")
        os.mkdir(self.work)
        self.lab = os.path.join(self.work, ".labmate")

    def env(self, **changes):
        """A clean environment; a change to None removes the variable."""
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("LABMATE_", "GIT_", "PYTHON"))
        }
        env.update({
            "HOME": self.tmp,
            "PYTHONPATH": CLIENT_DIR,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
            "LABMATE_FLUSH_INTERVAL": "0.1",
        })
        for name, value in changes.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def write_script(self, code, name="train.py"):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(code))
        return path

    def run_script(self, code, env=None, cwd=None, expect_rc=0, timeout=120):
        path = self.write_script(code)
        done = subprocess.run(
            [sys.executable, path], cwd=cwd or self.work, env=env or self.env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            universal_newlines=True, timeout=timeout,
        )
        if expect_rc is not None:
            self.assertEqual(done.returncode, expect_rc, "script failed:\n" + done.stderr)
        return done

    def start_script(self, code, env=None):
        path = self.write_script(code)
        proc = subprocess.Popen(
            [sys.executable, path], cwd=self.work, env=env or self.env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            universal_newlines=True,
        )
        self.addCleanup(self._reap, proc)
        return proc

    @staticmethod
    def _reap(proc):
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

    def run_dirs(self):
        runs = os.path.join(self.lab, "runs")
        return sorted(os.path.join(runs, n) for n in os.listdir(runs))

    def only_run(self):
        dirs = self.run_dirs()
        self.assertEqual(len(dirs), 1, dirs)
        return dirs[0]

    def parse_lines(self, path, allow_torn_tail=False):
        """Every line of a jsonl file as a checked record, each batch as the
        log records of its points (one per step, holding the metrics that
        have a value there)."""
        records = []
        for record in self.raw_records(path, allow_torn_tail):
            records += self.expand(record) if record["t"] == "batch" else [record]
        return records

    def raw_records(self, path, allow_torn_tail=False):
        """Every line of a jsonl file as a checked record, as written."""
        with open(path, "rb") as f:
            raw = f.read()
        lines = raw.split(b"\n")
        tail = lines.pop()  # what follows the last newline
        if not allow_torn_tail:
            self.assertEqual(tail, b"", "%s ends without a newline" % path)

        def no_bare_constant(token):
            self.fail("bare %s token in %s" % (token, path))

        records = []
        for line in lines:
            record = json.loads(line.decode("utf-8"), parse_constant=no_bare_constant)
            self.check_record(record)
            records.append(record)
        return records

    def points_in(self, path):
        """How many steps the complete lines of a client file hold so far."""
        try:
            with open(path, "rb") as f:
                lines = f.read().split(b"\n")[:-1]
        except FileNotFoundError:
            return 0
        return sum(json.loads(line)["n"] for line in lines if line.startswith(b'{"t":"batch"'))

    @staticmethod
    def expand(batch):
        """A batch record as the log records of its points."""
        n, step, dstep = batch["n"], batch["step"], batch.get("dstep", 0)
        deltas = dstep if isinstance(dstep, list) else [dstep] * (n - 1)
        steps = [step]
        for delta in deltas:
            steps.append(steps[-1] + delta)
        logs = [{"t": "log", "step": s, "time": batch["time"] + d / 1e6, "data": {}}
                for s, d in zip(steps, batch["dt_us"])]
        for key, column in batch["data"].items():
            at, values = (column["at"], column["v"]) if isinstance(column, dict) else (range(n), column)
            for position, value in zip(at, struct.unpack("<%dd" % len(at), base64.b64decode(values))):
                logs[position]["data"][key] = as_written(value)
        return logs

    def client_files(self, run_dir):
        return sorted(n for n in os.listdir(run_dir) if re.match(r"^client-\d+\.jsonl$", n))

    def records(self, run_dir):
        """The records of the run's only client file."""
        files = self.client_files(run_dir)
        self.assertEqual(len(files), 1, files)
        return self.parse_lines(os.path.join(run_dir, files[0]))

    def check_record(self, record):
        """The field types FORMAT.md gives each record type."""
        self.assertIsInstance(record, dict)
        kind = record.get("t")
        self.assertIn(kind, {"log", "batch", "config", "summary", "meta", "define", "event", "start", "end"})
        self.assertTrue(is_number(record.get("time")), record)
        self.assertGreater(record["time"], 1.7e9)
        if kind == "log":
            self.assertIsInstance(record["step"], int)
            self.assertNotIsInstance(record["step"], bool)
            self.assertIsInstance(record["data"], dict)
            for value in record["data"].values():
                self.assertTrue(is_number(value) or value in NON_FINITE, record)
        elif kind == "batch":
            # As the client writes one: steps by a constant stride when there
            # is one, times in whole microseconds, every column base64.
            n = record["n"]
            self.assertTrue(type(n) is int and 1 <= n <= 4096, record)
            self.assertIs(type(record["step"]), int)
            self.assertEqual(type(record["dt_us"]), list)
            self.assertEqual(len(record["dt_us"]), n)
            self.assertTrue(all(type(d) is int for d in record["dt_us"]), record)
            if n == 1:
                self.assertNotIn("dstep", record)
            elif type(record["dstep"]) is list:
                self.assertEqual(len(record["dstep"]), n - 1)
                self.assertTrue(all(type(d) is int for d in record["dstep"]), record)
                self.assertGreater(len(set(record["dstep"])), 1, "a constant stride is one integer")
            else:
                self.assertIs(type(record["dstep"]), int)
            for column in record["data"].values():
                if isinstance(column, dict):
                    self.assertEqual(set(column), {"at", "v"})
                    at, values = column["at"], column["v"]
                    self.assertEqual(at, sorted(set(at)))
                    self.assertTrue(0 <= at[0] and at[-1] < n and len(at) < n, record)
                else:
                    at, values = range(n), column
                self.assertIsInstance(values, str)
                self.assertEqual(len(base64.b64decode(values, validate=True)), 8 * len(at))
        elif kind in ("config", "summary"):
            self.assertIsInstance(record["data"], dict)
        elif kind == "meta":
            if "name" in record:
                self.assertIsInstance(record["name"], str)
            if "tags" in record:
                self.assertIsInstance(record["tags"], list)
            for field in ("project", "group", "job_type", "notes"):
                if field in record:
                    self.assertIsInstance(record[field], str)
        elif kind == "define":
            self.assertIsInstance(record["metric"], str)
            for field in ("step_metric", "summary", "goal"):
                if field in record:
                    self.assertIsInstance(record[field], str)
            for field in ("step_sync", "hidden"):
                if field in record:
                    self.assertIsInstance(record[field], bool)
        elif kind == "event":
            self.assertIn(record["kind"], {"info", "warning", "alert"})
            self.assertIsInstance(record["message"], str)
            if "data" in record:
                self.assertIsInstance(record["data"], dict)
        elif kind == "start":
            self.assertIsInstance(record["pid"], int)
        elif kind == "end":
            self.assertIn(record["status"], {"finished", "failed", "stopped"})
            self.assertTrue(record["exit_code"] is None or isinstance(record["exit_code"], int))
            self.assertTrue(record["signal"] is None or isinstance(record["signal"], int))
            if "reason" in record:
                self.assertIsInstance(record["reason"], str)

    def logs(self, records):
        return [r for r in records if r["t"] == "log"]

    def end(self, records):
        ends = [r for r in records if r["t"] == "end"]
        self.assertEqual(len(ends), 1, records)
        self.assertIs(records[-1], ends[0], "the end record is not last")
        return ends[0]

    def lock_is_free(self, run_dir):
        fd = os.open(os.path.join(run_dir, "lock"), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    def make_lab(self, version=2):
        """A lab made as FORMAT.md says (by a writer of `version`), before
        any writer touches it."""
        os.makedirs(os.path.join(self.lab, "runs"))
        with open(os.path.join(self.lab, "lab.json"), "w") as f:
            f.write('{"format": %d}\n' % version)
        with open(os.path.join(self.lab, ".gitignore"), "w") as f:
            f.write("*\n")

    def git(self, *args):
        subprocess.run(["git"] + list(args), cwd=self.work, env=self.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class RunIdTest(unittest.TestCase):
    def test_id_encodes_creation_second_and_sorts_by_time(self):
        new_id = labmate._rundir._new_run_id
        epoch = 1704067200  # 2024-01-01T00:00:00Z
        self.assertTrue(new_id(epoch).startswith("r-000000"))
        self.assertTrue(new_id(epoch + 31).startswith("r-00000z"))
        self.assertTrue(new_id(epoch + 32).startswith("r-000010"))
        seconds = 0o1234567 * 8  # any value below 2**30
        expected = "".join("0123456789abcdefghjkmnpqrstvwxyz"[(seconds >> s) & 31]
                           for s in (25, 20, 15, 10, 5, 0))
        self.assertEqual(new_id(epoch + seconds)[2:8], expected)
        ids = [new_id(epoch + t) for t in (5, 500, 50000, 5000000)]
        self.assertEqual(ids, sorted(ids))
        for run_id in ids:
            self.assertRegex(run_id, ID_RE)
        self.assertGreater(len({new_id(epoch)[-4:] for _ in range(50)}), 40)


class StandaloneTest(LabTestCase):
    def test_creates_lab_and_run_folder_per_format(self):
        env = self.env(LABMATE_API_KEY="hidden", LABMATE_EXTRA="kept",
                       CUDA_VISIBLE_DEVICES="0", UNRELATED="no")
        before = time.time()
        done = self.run_script("""
            import labmate
            run = labmate.init(name="lr0.1-s1", config={"lr": 0.1, "layers": [1, 2]},
                               tags=["baseline"])
            print(run.id)
            print(run.dir)
            labmate.log({"loss": 0.5, "acc": 1})
            labmate.finish()
        """, env=env)
        run_id, run_dir = done.stdout.split()
        # The lab.
        with open(os.path.join(self.lab, "lab.json")) as f:
            self.assertEqual(json.load(f), {"format": 2})
        with open(os.path.join(self.lab, ".gitignore")) as f:
            self.assertEqual(f.read().strip(), "*")
        # The run folder: renamed into place, nothing temporary left.
        self.assertRegex(run_id, ID_RE)
        self.assertEqual(os.listdir(os.path.join(self.lab, "runs")), [run_id])
        self.assertEqual(run_dir, os.path.join(self.lab, "runs", run_id))
        records = self.records(run_dir)
        pid = records[0]["pid"]
        self.assertEqual(sorted(os.listdir(run_dir)),
                         ["client-%d.jsonl" % pid, "lock", "run.json"])
        self.assertEqual(os.path.getsize(os.path.join(run_dir, "lock")), 0)
        # run.json
        with open(os.path.join(run_dir, "run.json")) as f:
            doc = json.load(f)
        self.assertEqual(set(doc), {"format", "id", "name", "tags", "command", "cwd", "host",
                                    "user", "created_at", "config", "env", "git", "origin"})
        self.assertEqual(doc["format"], 2)
        self.assertEqual(doc["id"], run_id)
        self.assertEqual(doc["name"], "lr0.1-s1")
        self.assertEqual(doc["tags"], ["baseline"])
        self.assertEqual(doc["command"], [])
        self.assertEqual(doc["cwd"], self.work)
        self.assertIsInstance(doc["host"], str)
        self.assertIsInstance(doc["user"], str)
        self.assertTrue(before - 1 <= doc["created_at"] <= time.time())
        self.assertEqual(doc["config"], {"lr": 0.1, "layers": [1, 2]})
        self.assertEqual(doc["env"], {"CUDA_VISIBLE_DEVICES": "0", "PYTHONPATH": CLIENT_DIR,
                                      "LABMATE_EXTRA": "kept", "LABMATE_FLUSH_INTERVAL": "0.1"})
        self.assertIsNone(doc["git"])
        self.assertEqual(doc["origin"], "client")
        # The id's first 6 characters are the creation second.
        seconds = 0
        for char in run_id[2:8]:
            seconds = seconds * 32 + "0123456789abcdefghjkmnpqrstvwxyz".index(char)
        self.assertLessEqual(abs(1704067200 + seconds - doc["created_at"]), 1)
        # The records.
        self.assertEqual([r["t"] for r in records], ["start", "log", "end"])
        self.assertEqual(records[1]["step"], 0)
        self.assertEqual(records[1]["data"], {"loss": 0.5, "acc": 1})
        end = self.end(records)
        self.assertEqual((end["status"], end["exit_code"], end["signal"]), ("finished", 0, None))
        self.assertNotIn("reason", end)
        self.assertTrue(self.lock_is_free(run_dir))

    def test_walks_up_to_an_existing_lab(self):
        self.make_lab()
        deep = os.path.join(self.work, "a", "b")
        os.makedirs(deep)
        self.run_script("import labmate; labmate.init(); labmate.finish()",
                        env=self.env(LABMATE_DIR=None), cwd=deep)
        self.assertEqual(len(self.run_dirs()), 1)
        self.assertFalse(os.path.exists(os.path.join(deep, ".labmate")))

    def test_labmate_dir_names_the_lab_folder(self):
        elsewhere = os.path.join(self.tmp, "labs", "mine")
        self.run_script("import labmate; labmate.init(); labmate.finish()",
                        env=self.env(LABMATE_DIR=elsewhere))
        self.assertFalse(os.path.exists(self.lab))
        with open(os.path.join(elsewhere, "lab.json")) as f:
            self.assertEqual(json.load(f), {"format": 2})
        self.assertEqual(len(os.listdir(os.path.join(elsewhere, "runs"))), 1)

    def test_refuses_a_lab_of_another_format(self):
        self.make_lab(version=3)
        done = self.run_script("import labmate; labmate.init()", expect_rc=1)
        self.assertIn("LabmateError", done.stderr)
        self.assertIn("has format 3; this labmate client knows formats 1 and 2", done.stderr)
        self.assertEqual(self.run_dirs(), [])
        for marker in ('{"format": "2"}', '{"format": 0}', '{}', '[2]'):
            with self.subTest(marker=marker):
                with open(os.path.join(self.lab, "lab.json"), "w") as f:
                    f.write(marker)
                done = self.run_script("import labmate; labmate.init()", expect_rc=1)
                self.assertIn("LabmateError", done.stderr)
                self.assertEqual(self.run_dirs(), [])
        with open(os.path.join(self.lab, "lab.json"), "w") as f:
            f.write('{"format": 2')
        done = self.run_script("import labmate; labmate.init()", expect_rc=1)
        self.assertIn("cannot read the lab marker", done.stderr)

    def test_a_lab_of_format_1_becomes_format_2_before_its_first_batch(self):
        self.make_lab(version=1)
        marker = os.path.join(self.lab, "lab.json")
        self.run_script("import labmate; labmate.init(name='quiet'); labmate.finish()")
        with open(marker) as f:
            self.assertEqual(f.read(), '{"format": 1}\n', "no batch, no new version")
        inode = os.stat(marker).st_ino
        self.run_script("""
            import json, labmate
            labmate.init(name="loud")
            labmate.log({"loss": 1.0})
            labmate.run.flush()
            with open(%r) as f:
                assert json.load(f) == {"format": 2}
            labmate.log({"loss": 0.5})
        """ % marker)
        with open(marker) as f:
            self.assertEqual(f.read(), '{"format": 2}\n')
        self.assertNotEqual(os.stat(marker).st_ino, inode, "a new file renamed over the old one")
        self.assertEqual(sorted(os.listdir(self.lab)), [".gitignore", "lab.json", "runs"])
        # A lab of format 2 stays as it is.
        inode = os.stat(marker).st_ino
        self.run_script("import labmate; labmate.log({'loss': 0.25})")
        self.assertEqual(os.stat(marker).st_ino, inode)

    def test_a_lab_that_cannot_be_marked_still_gets_its_points(self):
        self.make_lab(version=1)
        done = self.run_script("""
            import os, labmate
            os.mkdir(os.path.join(%r, "lab.json.tmp-%%d" %% os.getpid()))  # in the way
            labmate.log({"x": 1})
        """ % self.lab)
        self.assertIn("cannot mark the lab %s as format 2" % self.lab, done.stderr)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertEqual([r["data"] for r in self.logs(self.records(self.only_run()))], [{"x": 1}])

    def test_steps_count_on_from_the_last_one(self):
        self.run_script("""
            import labmate
            labmate.init()
            for _ in range(3):
                labmate.log({"a": 1.0})
            labmate.log({"a": 2.0}, step=10)
            labmate.log({"a": 3.0})
            labmate.log({"a": 4.0}, step=5)
            labmate.log({"a": 5.0})
        """)
        steps = [r["step"] for r in self.logs(self.records(self.only_run()))]
        self.assertEqual(steps, [0, 1, 2, 10, 11, 5, 6])

    def test_spans_add_up_into_the_next_logged_step(self):
        self.run_script("""
            import time, labmate
            labmate.init()

            @labmate.span("decorated")
            def work():
                time.sleep(0.01)

            for step in range(3):
                with labmate.span("forward"):
                    time.sleep(0.02)
                with labmate.span("forward"):
                    time.sleep(0.01)
                work()
                labmate.log({"loss": 1.0})
            labmate.log({"loss": 0.5})
        """)
        logs = self.logs(self.records(self.only_run()))
        for record in logs[:3]:
            # Sleeps last at least as long as asked; how much longer depends on the machine.
            self.assertGreaterEqual(record["data"]["span/forward"], 0.03)
            self.assertGreaterEqual(record["data"]["span/decorated"], 0.01)
        self.assertNotIn("span/forward", logs[3]["data"], "spans go to the next step once")

    def test_a_taken_run_id_is_drawn_again(self):
        # The same second and the same 20 random bits: the second run must
        # get another id, not fail or share the folder.
        self.run_script("""
            import labmate
            ids = iter(["r-000000aaaa", "r-000000aaaa", "r-000000bbbb"])
            labmate._rundir._new_run_id = lambda now: next(ids)
            a = labmate.init(name="a"); a.finish()
            b = labmate.init(name="b"); b.finish()
            assert (a.id, b.id) == ("r-000000aaaa", "r-000000bbbb"), (a.id, b.id)
        """)
        names = sorted(os.path.basename(d) for d in self.run_dirs())
        self.assertEqual(names, ["r-000000aaaa", "r-000000bbbb"])

    def test_non_finite_values_are_written_as_strings(self):
        self.run_script("""
            import labmate
            labmate.init()
            for i in range(3):
                labmate.log({"loss": 0.25 * i, "nan": float("nan"),
                             "inf": float("inf"), "ninf": float("-inf")})
            labmate.log({"ok": 1.5})
        """)
        logs = self.logs(self.records(self.only_run()))
        for i, record in enumerate(logs[:3]):
            self.assertEqual(record["data"], {"loss": 0.25 * i, "nan": "NaN",
                                              "inf": "Infinity", "ninf": "-Infinity"})
        self.assertEqual(logs[3]["data"], {"ok": 1.5})

    def test_values_round_trip_exactly(self):
        self.run_script("""
            import random, labmate
            rng = random.Random(7)
            labmate.init()
            for i in range(300):
                labmate.log({"x": rng.random(), "y": rng.uniform(-1e300, 1e300),
                             "z": rng.random() * 1e-300, "n": rng.randrange(-2**53, 2**53),
                             "b": i % 2 == 0})
        """)
        import random
        rng = random.Random(7)
        for i, record in enumerate(self.logs(self.records(self.only_run()))):
            expected = {"x": rng.random(), "y": rng.uniform(-1e300, 1e300),
                        "z": rng.random() * 1e-300, "n": rng.randrange(-2**53, 2**53),
                        "b": 1 if i % 2 == 0 else 0}
            self.assertEqual(record["data"], expected)

    def test_points_are_written_as_batches_one_per_flush(self):
        # 5,000 steps in one flush: blocks of at most 4,096 steps, each
        # metric a column of base64 doubles, a metric logged every 10th step
        # at its positions only, steps by their stride, times as
        # microseconds after the block's first.
        self.run_script("""
            import itertools, time
            clock = itertools.count()
            time.time = lambda: 1800000000.0 + next(clock) * 0.001
            time.time_ns = lambda: 1800000000_000000000 + next(clock) * 1_000_000
            import labmate
            labmate.init()
            for i in range(5000):
                labmate.log({"loss": 1.0 / (i + 1), "val": i * 0.5} if i % 10 == 0 else {"loss": 1.0 / (i + 1)})
            for step in (5003, 5004, 5006, 2**63 - 1, -2**63, -2**63 + 7):
                labmate.log({"jump": float(step)}, step=step)
        """, env=self.env(LABMATE_FLUSH_INTERVAL="3600"))
        records = self.raw_records(os.path.join(self.only_run(), self.client_files(self.only_run())[0]))
        self.assertEqual([(r["t"], r.get("n"), r.get("step"), r.get("dstep")) for r in records], [
            ("start", None, None, None),
            ("batch", 4096, 0, 1),
            ("batch", 904 + 4, 4096, [1] * 903 + [4, 1, 2, 2**63 - 1 - 5006]),
            ("batch", 2, -2**63, 7),
            ("end", None, None, None),
        ])
        first, second, third = records[1:4]
        # The clock read once per step, from 2 (created_at, start).
        self.assertEqual((first["time"], first["dt_us"][:3], first["dt_us"][-1]),
                         (1800000000.002, [0, 1000, 2000], 4095000))
        self.assertEqual(second["time"], 1800000000.002 + 4.096)
        self.assertEqual(set(first["data"]), {"loss", "val"})
        self.assertIsInstance(first["data"]["loss"], str)
        self.assertEqual(first["data"]["val"]["at"], list(range(0, 4096, 10)))
        self.assertEqual(second["data"]["val"]["at"], list(range(4, 904, 10)))
        self.assertEqual(second["data"]["jump"]["at"], [904, 905, 906, 907])
        self.assertEqual(list(third["data"]), ["jump"])
        logs = self.logs(self.parse_lines(os.path.join(self.only_run(), self.client_files(self.only_run())[0])))
        self.assertEqual([r["data"]["loss"] for r in logs[:5000]], [1.0 / (i + 1) for i in range(5000)])
        self.assertEqual([r["data"].get("val") for r in logs[:5000]],
                         [i * 0.5 if i % 10 == 0 else None for i in range(5000)])
        self.assertEqual([(r["step"], r["data"]) for r in logs[5000:]],
                         [(s, {"jump": float(s)}) for s in (5003, 5004, 5006, 2**63 - 1, -2**63, -2**63 + 7)])

    def test_mixed_records_in_one_flush_keep_their_order(self):
        # Everything below lands in one flush: names that change, names in
        # another order, odd names, NaN mid-batch, other records in between.
        self.run_script("""
            import labmate
            run = labmate.init()
            for i in range(3):
                labmate.log({"a": i, "b": 0.5})
            labmate.log({"b": 1.5, "a": 9})
            labmate.log({"only": 2.0})
            labmate.log({})
            labmate.log({"100%": 1.0, "\\u00e9t\\u00e9": 2.0, 'q"uote': 3.0, 7: 4.0})
            run.config["mid"] = True
            for i in range(5000):
                labmate.log({"a": i, "b": float("nan") if i == 2500 else 0.25})
            labmate.log({"a": 1e308, "b": 1e308})
        """, env=self.env(LABMATE_FLUSH_INTERVAL="3600"))
        records = self.records(self.only_run())[1:-1]
        simple = [(r["t"], r.get("step"), r["data"]) for r in records]
        self.assertEqual(simple[:9], [
            ("log", 0, {"a": 0, "b": 0.5}),
            ("log", 1, {"a": 1, "b": 0.5}),
            ("log", 2, {"a": 2, "b": 0.5}),
            ("log", 3, {"b": 1.5, "a": 9}),
            ("log", 4, {"only": 2.0}),
            ("log", 5, {}),
            ("log", 6, {"100%": 1.0, "\u00e9t\u00e9": 2.0, 'q"uote': 3.0, "7": 4.0}),
            ("config", None, {"mid": True}),
            ("log", 7, {"a": 0, "b": 0.25}),
        ])
        body = simple[8:-1]
        self.assertEqual(len(body), 5000)
        for i, (kind, step, data) in enumerate(body):
            self.assertEqual((kind, step), ("log", 7 + i))
            self.assertEqual(data, {"a": i, "b": "NaN" if i == 2500 else 0.25})
        self.assertEqual(simple[-1], ("log", 5007, {"a": 1e308, "b": 1e308}))

    def test_config_summary_alert_and_order(self):
        self.run_script("""
            import labmate
            run = labmate.init(config={"lr": 0.1})
            labmate.log({"loss": 1.0})
            run.config.update({"batch": 32})
            run.config["wd"] = float("nan")
            run.config.momentum = 0.9
            labmate.config["seed"] = 1
            labmate.log({"loss": 0.5})
            run.summary["best"] = 0.5
            labmate.summary.update(best_step=1)
            labmate.alert("diverged", "loss went up", level="error")
            assert run.config["lr"] == 0.1 and run.config.momentum == 0.9
            assert dict(run.summary) == {"best": 0.5, "best_step": 1}
            assert labmate.run is run
            labmate.finish()
            assert labmate.run is None
        """)
        records = self.records(self.only_run())
        simple = [(r["t"], r.get("data")) for r in records[1:-1]]
        self.assertEqual(simple, [
            ("log", {"loss": 1.0}),
            ("config", {"batch": 32}),
            ("config", {"wd": "NaN"}),
            ("config", {"momentum": 0.9}),
            ("config", {"seed": 1}),
            ("log", {"loss": 0.5}),
            ("summary", {"best": 0.5}),
            ("summary", {"best_step": 1}),
            ("event", {"title": "diverged", "text": "loss went up", "level": "error"}),
        ])
        self.assertEqual(records[-2]["kind"], "alert")
        self.assertIn("diverged", records[-2]["message"])

    def test_non_numeric_values_are_dropped_with_one_warning(self):
        done = self.run_script("""
            import decimal, labmate
            labmate.init()
            labmate.log({"loss": 0.5, "name": "abc", "none": None, "list": [1, 2],
                         "dec": decimal.Decimal("1.5"), "flag": True})
            labmate.log({"loss": 0.25, "name": "def"})
        """)
        records = self.records(self.only_run())
        logs = self.logs(records)
        self.assertEqual(logs[0]["data"], {"loss": 0.5, "dec": 1.5, "flag": 1})
        self.assertEqual(logs[1]["data"], {"loss": 0.25})
        warnings = [r for r in records if r["t"] == "event" and r["kind"] == "warning"]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertEqual(warnings[0]["data"]["keys"], ["name", "none", "list"])
        for key in ("name", "none", "list"):
            self.assertIn(repr(key), warnings[0]["message"])
        self.assertEqual(done.stdout, "")
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
        self.assertEqual(self.end(records)["status"], "finished")

    @unittest.skipUnless(__import__("importlib").util.find_spec("numpy"), "numpy not installed")
    def test_numpy_scalars(self):
        self.run_script("""
            import numpy as np, labmate
            labmate.init()
            labmate.log({"f32": np.float32(0.5), "f64": np.float64(0.25), "i": np.int64(3),
                         "nan": np.float32("nan"), "arr": np.zeros(3)})
        """)
        data = self.logs(self.records(self.only_run()))[0]["data"]
        self.assertEqual(data, {"f32": 0.5, "f64": 0.25, "i": 3, "nan": "NaN"})

    def test_flushes_on_the_interval_while_the_script_lives(self):
        proc = self.start_script("""
            import sys, labmate
            run = labmate.init()
            print(run.dir, flush=True)
            for i in range(5):
                labmate.log({"loss": float(i)})
            sys.stdin.readline()  # stay alive until the test is done
        """, env=self.env(LABMATE_FLUSH_INTERVAL="0.2"))
        run_dir = proc.stdout.readline().strip()
        path = os.path.join(run_dir, "client-%d.jsonl" % proc.pid)

        def five_logs():
            return self.points_in(path) == 5

        self.assertTrue(wait_for(five_logs, timeout=10), "not flushed while alive")
        self.assertIsNone(proc.poll(), "the script should still be running")
        proc.communicate("\n", timeout=30)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(self.end(self.records(run_dir))["status"], "finished")

    def test_sigkill_keeps_every_flushed_record(self):
        proc = self.start_script("""
            import itertools, time, labmate
            run = labmate.init()
            print(run.dir, flush=True)
            for i in itertools.count():
                labmate.log({"loss": 1.0 / (i + 1), "step_copy": i})
                if i % 100 == 0:
                    time.sleep(0.001)
        """, env=self.env(LABMATE_FLUSH_INTERVAL="0.05"))
        run_dir = proc.stdout.readline().strip()
        path = os.path.join(run_dir, "client-%d.jsonl" % proc.pid)

        def flushed_twice():  # at least two flushes have landed
            return self.points_in(path) > 2000

        self.assertTrue(wait_for(flushed_twice, timeout=20))
        self.assertFalse(self.lock_is_free(run_dir))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        records = self.parse_lines(path, allow_torn_tail=True)
        self.assertEqual(records[0]["t"], "start")
        logs = self.logs(records)
        self.assertEqual([r["step"] for r in logs], list(range(len(logs))))
        for record in logs:
            self.assertEqual(record["data"]["step_copy"], record["step"])
        self.assertNotIn("end", [r["t"] for r in records])
        self.assertTrue(self.lock_is_free(run_dir), "a dead owner must not hold the lock")

    def test_lock_is_held_while_the_script_lives(self):
        proc = self.start_script("""
            import sys, labmate
            run = labmate.init()
            print(run.dir, flush=True)
            sys.stdin.readline()
        """)
        run_dir = proc.stdout.readline().strip()
        self.assertFalse(self.lock_is_free(run_dir))
        proc.communicate("\n", timeout=30)
        self.assertTrue(self.lock_is_free(run_dir))

    def test_uncaught_exception_fails_the_run(self):
        done = self.run_script("""
            import labmate
            labmate.init()
            labmate.log({"loss": 1.0})
            raise ValueError("boom")
        """, expect_rc=1)
        self.assertIn("ValueError: boom", done.stderr)  # the usual traceback is still printed
        records = self.records(self.only_run())
        end = self.end(records)
        self.assertEqual((end["status"], end["exit_code"], end["signal"]), ("failed", 1, None))
        self.assertEqual(end["reason"], "ValueError: boom")
        self.assertEqual(len(self.logs(records)), 1)

    def test_sys_exit_code_decides_the_status(self):
        for code, status, exit_code in (("3", "failed", 3), ("0", "finished", 0),
                                        ("None", "finished", 0), ("'bad'", "failed", 1)):
            with self.subTest(code=code):
                shutil.rmtree(self.lab, ignore_errors=True)
                self.run_script("""
                    import sys, labmate
                    labmate.init()
                    sys.exit(%s)
                """ % code, expect_rc=None)
                end = self.end(self.records(self.only_run()))
                self.assertEqual((end["status"], end["exit_code"]), (status, exit_code))

    def test_keyboard_interrupt_stops_the_run(self):
        self.run_script("""
            import labmate
            labmate.init()
            raise KeyboardInterrupt
        """, expect_rc=None)
        end = self.end(self.records(self.only_run()))
        self.assertEqual((end["status"], end["exit_code"], end["signal"]),
                         ("stopped", None, signal.SIGINT))

    def test_finish_and_atexit(self):
        self.run_script("""
            import labmate
            labmate.init(name="explicit")
            labmate.finish()
            labmate.init(name="failed")
            labmate.finish(exit_code=2)
            labmate.init(name="at-exit")
            labmate.log({"x": 1})
        """)
        ends = {}
        for run_dir in self.run_dirs():
            with open(os.path.join(run_dir, "run.json")) as f:
                name = json.load(f)["name"]
            end = self.end(self.records(run_dir))
            ends[name] = (end["status"], end["exit_code"])
        self.assertEqual(ends, {"explicit": ("finished", 0), "failed": ("failed", 2),
                                "at-exit": ("finished", 0)})

    def test_init_again_finishes_the_previous_run(self):
        done = self.run_script("""
            import labmate
            first = labmate.init()
            labmate.log({"x": 1})
            second = labmate.init()
            labmate.log({"x": 2})
            print(first.id, second.id)
        """)
        first_id, second_id = done.stdout.split()
        first = self.records(os.path.join(self.lab, "runs", first_id))
        second = self.records(os.path.join(self.lab, "runs", second_id))
        self.assertEqual(self.end(first)["status"], "finished")
        self.assertEqual([r["data"] for r in self.logs(first)], [{"x": 1}])
        self.assertEqual([r["data"] for r in self.logs(second)], [{"x": 2}])
        self.assertEqual(self.end(second)["status"], "finished")

    def test_context_manager(self):
        self.run_script("""
            import labmate
            with labmate.init(name="ok") as run:
                run.log({"x": 1})
            try:
                with labmate.init(name="bad"):
                    labmate.log({"x": 2})
                    raise KeyError("k")
            except KeyError:
                pass
            assert labmate.run is None
        """)
        ends = {}
        for run_dir in self.run_dirs():
            with open(os.path.join(run_dir, "run.json")) as f:
                name = json.load(f)["name"]
            end = self.end(self.records(run_dir))
            ends[name] = (end["status"], end["exit_code"], end.get("reason"))
        self.assertEqual(ends, {"ok": ("finished", 0, None),
                                "bad": ("failed", None, "KeyError: 'k'")})

    def test_log_without_init_starts_a_run(self):
        self.run_script("import labmate; labmate.log({'x': 1})")
        records = self.records(self.only_run())
        self.assertEqual([r["t"] for r in records], ["start", "log", "end"])

    def test_forked_child_writes_its_own_file(self):
        done = self.run_script("""
            import os, labmate
            run = labmate.init()
            labmate.log({"parent": 1})
            pid = os.fork()
            if pid == 0:
                labmate.log({"child": 1})
                labmate.finish()
                os._exit(0)
            os.waitpid(pid, 0)
            labmate.log({"parent": 2})
            print(pid)
        """)
        child_pid = int(done.stdout)
        run_dir = self.only_run()
        files = self.client_files(run_dir)
        self.assertEqual(len(files), 2, files)
        child = self.parse_lines(os.path.join(run_dir, "client-%d.jsonl" % child_pid))
        self.assertEqual([(r["t"], r.get("data")) for r in child], [("log", {"child": 1})])
        parent_file = [f for f in files if f != "client-%d.jsonl" % child_pid][0]
        parent = self.parse_lines(os.path.join(run_dir, parent_file))
        self.assertEqual([r["data"] for r in self.logs(parent)], [{"parent": 1}, {"parent": 2}])
        self.assertEqual(self.end(parent)["status"], "finished")

    def test_memory_stays_flat(self):
        done = self.run_script("""
            import resource, labmate
            labmate.init()
            log = labmate.log
            for i in range(50000):  # past the inline-flush threshold once
                log({"loss": i * 0.5})
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            for i in range(1000000):
                log({"loss": i * 0.5})
            labmate.finish()
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(after - before)
        """, env=self.env(LABMATE_FLUSH_INTERVAL="3600"))  # only backpressure flushes
        growth_mb = int(done.stdout) / 1024  # ru_maxrss is in KB on Linux
        self.assertLess(growth_mb, 50)
        run_dir = self.only_run()
        path = os.path.join(run_dir, self.client_files(run_dir)[0])
        self.assertEqual(self.points_in(path), 1050000)


class GitProvenanceTest(LabTestCase):
    def setUp(self):
        super().setUp()
        if not HAVE_GIT:
            self.skipTest("git is not installed")
        self.git("init", "-q")
        self.git("symbolic-ref", "HEAD", "refs/heads/main")
        with open(os.path.join(self.work, "train.txt"), "w") as f:
            f.write("one\n")
        self.git("add", "train.txt")
        self.git("commit", "-q", "-m", "first")
        self.commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.work, env=self.env(),
                                     stdout=subprocess.PIPE, universal_newlines=True,
                                     check=True).stdout.strip()

    def run_json(self):
        with open(os.path.join(self.only_run(), "run.json")) as f:
            return json.load(f)

    def test_clean_tree(self):
        self.git("add", "-A")  # the script itself would be untracked
        self.write_script("import labmate; labmate.init(); labmate.finish()")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "script")
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.work, env=self.env(),
                                stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
        self.run_script("import labmate; labmate.init(); labmate.finish()")
        self.assertEqual(self.run_json()["git"], {"commit": commit, "branch": "main",
                                                  "dirty": False, "untracked": [],
                                                  "patch_bytes": 0})
        self.assertFalse(os.path.exists(os.path.join(self.only_run(), "patch.diff")))

    def test_dirty_tree_with_untracked_files(self):
        with open(os.path.join(self.work, "train.txt"), "a") as f:
            f.write("two\n")
        with open(os.path.join(self.work, "notes.txt"), "w") as f:
            f.write("untracked\n")
        subdir = os.path.join(self.work, "sub")
        os.mkdir(subdir)
        self.run_script("import labmate; labmate.init(); labmate.finish()", cwd=subdir,
                        env=self.env(LABMATE_DIR=self.lab))
        git = self.run_json()["git"]
        self.assertEqual(git["commit"], self.commit)
        self.assertEqual(git["branch"], "main")
        self.assertTrue(git["dirty"])
        self.assertEqual(sorted(git["untracked"]), ["notes.txt", "train.py"])
        with open(os.path.join(self.only_run(), "patch.diff"), "rb") as f:
            patch = f.read()
        self.assertEqual(git["patch_bytes"], len(patch))
        self.assertIn(b"diff --git a/train.txt b/train.txt", patch)
        self.assertIn(b"+two", patch)

    def test_detached_head_has_no_branch(self):
        self.git("checkout", "-q", "--detach")
        self.run_script("import labmate; labmate.init(); labmate.finish()")
        git = self.run_json()["git"]
        self.assertIsNone(git["branch"])
        self.assertEqual(git["commit"], self.commit)


class SupervisedTest(LabTestCase):
    def setUp(self):
        super().setUp()
        self.make_lab()
        self.run_id = "r-0k3fz27fk2"
        self.run_dir = os.path.join(self.lab, "runs", self.run_id)
        os.mkdir(self.run_dir)
        self.launch = {"format": 1, "id": self.run_id, "name": None, "tags": ["sup"],
                       "command": ["python3", "train.py"], "cwd": self.work, "host": "h",
                       "user": "u", "created_at": time.time(), "config": {"lr": 0.1},
                       "env": {}, "git": None, "origin": "supervisor"}
        with open(os.path.join(self.run_dir, "run.json"), "w") as f:
            json.dump(self.launch, f)
        open(os.path.join(self.run_dir, "lock"), "w").close()
        with open(os.path.join(self.run_dir, "supervisor.jsonl"), "w") as f:
            f.write('{"t":"start","time":%r,"pid":1}\n' % time.time())

    def test_writes_only_its_own_records(self):
        with open(os.path.join(self.run_dir, "run.json"), "rb") as f:
            launch_bytes = f.read()
        env = self.env(LABMATE_RUN_DIR=self.run_dir, LABMATE_RUN_ID=self.run_id,
                       LABMATE_DIR=None)
        done = self.run_script("""
            import os, labmate
            run = labmate.init(name="n1", tags=["extra"], config={"batch": 8})
            assert run.id == %r, run.id
            assert run.config["lr"] == 0.1 and run.config["batch"] == 8
            assert run.tags == ["sup", "extra"], run.tags
            labmate.log({"loss": 1.0, "bad": float("inf")})
            run.summary["best"] = 1.0
            labmate.finish()
            print(os.getpid())
        """ % self.run_id, env=env)
        pid = int(done.stdout)
        self.assertEqual(sorted(os.listdir(self.run_dir)),
                         sorted(["run.json", "lock", "supervisor.jsonl", "client-%d.jsonl" % pid]))
        with open(os.path.join(self.run_dir, "run.json"), "rb") as f:
            self.assertEqual(f.read(), launch_bytes)
        self.assertEqual(os.path.getsize(os.path.join(self.run_dir, "lock")), 0)
        self.assertFalse(os.path.exists(os.path.join(self.work, ".labmate", "runs", "x")))
        self.assertEqual(len(os.listdir(os.path.join(self.lab, "runs"))), 1)
        records = self.parse_lines(os.path.join(self.run_dir, "client-%d.jsonl" % pid))
        simple = [{k: v for k, v in r.items() if k != "time"} for r in records]
        self.assertEqual(simple, [
            {"t": "meta", "name": "n1", "tags": ["extra"]},
            {"t": "config", "data": {"batch": 8}},
            {"t": "log", "step": 0, "data": {"loss": 1.0, "bad": "Infinity"}},
            {"t": "summary", "data": {"best": 1.0}},
        ])

    def test_a_lab_of_format_1_becomes_format_2_before_the_first_batch(self):
        # The lab the supervisor names, or else the one the run folder is in.
        marker = os.path.join(self.lab, "lab.json")
        for named in (self.lab, None):
            with self.subTest(LABMATE_DIR=named):
                with open(marker, "w") as f:
                    f.write('{"format": 1}\n')
                env = self.env(LABMATE_RUN_DIR=self.run_dir, LABMATE_RUN_ID=self.run_id, LABMATE_DIR=named)
                self.run_script("import labmate; labmate.init(name='n'); labmate.finish()", env=env)
                with open(marker) as f:
                    self.assertEqual(f.read(), '{"format": 1}\n')
                self.run_script("import labmate; labmate.log({'x': 1})", env=env)
                with open(marker) as f:
                    self.assertEqual(f.read(), '{"format": 2}\n')

    def test_exception_writes_no_end_record(self):
        env = self.env(LABMATE_RUN_DIR=self.run_dir, LABMATE_RUN_ID=self.run_id)
        self.run_script("""
            import labmate
            labmate.init()
            labmate.log({"x": 1})
            raise RuntimeError("the supervisor records how it ended")
        """, env=env, expect_rc=1)
        files = self.client_files(self.run_dir)
        records = self.parse_lines(os.path.join(self.run_dir, files[0]))
        self.assertEqual([r["t"] for r in records], ["log"])


class InstallTest(unittest.TestCase):
    def test_pip_install_no_build_isolation_in_a_venv(self):
        tmp = tempfile.mkdtemp(prefix="labmate-venv-")
        self.addCleanup(shutil.rmtree, tmp, True)
        source = os.path.join(tmp, "src")
        shutil.copytree(CLIENT_DIR, source, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__", ".labmate"))
        venv = os.path.join(tmp, "venv")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        python = os.path.join(venv, "bin", "python")
        if made.returncode != 0 or not os.path.exists(python):
            self.skipTest("cannot make a venv: %s" % made.stdout.decode(errors="replace")[-300:])
        # setuptools older than 70.1 needs the separate `wheel` package to build.
        probe = ("import setuptools, importlib.util, sys; "
                 "v = tuple(int(p) for p in setuptools.__version__.split('.')[:2]); "
                 "sys.exit(0 if v >= (70, 1) or importlib.util.find_spec('wheel') else 3)")
        if subprocess.run([python, "-c", probe], env=env, stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("no setuptools>=70.1 (or setuptools plus wheel) to build offline")
        install = subprocess.run(
            [python, "-m", "pip", "install", "--no-build-isolation", "--no-index", source],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp)
        self.assertEqual(install.returncode, 0, install.stdout.decode(errors="replace"))
        code = ("import labmate, os; print(labmate.__version__); "
                "folder = os.path.dirname(labmate.__file__); "
                "print(os.path.exists(os.path.join(folder, 'py.typed'))); print(labmate.__file__)")
        show = subprocess.run([python, "-c", code], env=env, stdout=subprocess.PIPE,
                              universal_newlines=True, cwd=tmp)
        version, typed, path = show.stdout.split()
        self.assertEqual((version, typed), ("0.1.0", "True"))
        self.assertTrue(path.startswith(venv), path)


@unittest.skipUnless(LABMATE_BIN, "LABMATE_BIN (the Rust labmate binary) is not set")
class CrossSideTest(LabTestCase):
    """The client's files as the Rust side reads them."""

    def bin(self, *args, check=True, timeout=120):
        done = subprocess.run(
            [LABMATE_BIN] + list(args), cwd=self.work, env=self.env(LABMATE_DIR=self.lab),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            universal_newlines=True, timeout=timeout,
        )
        if check:
            self.assertEqual(done.returncode, 0, "labmate %s failed:\n%s" % (args, done.stderr))
        return done

    def bin_json(self, *args):
        return json.loads(self.bin(*args).stdout)

    def run_by_id(self, run_id):
        runs = self.bin_json("runs", "--json")
        self.assertIsInstance(runs, list)
        matches = [r for r in runs if r.get("id") == run_id]
        self.assertEqual(len(matches), 1, runs)
        return matches[0]

    def test_supervised_script_metrics(self):
        self.make_lab()
        # The NaN is the point here, not a reason to stop the run: stopped,
        # it could die by SIGTERM before it exits by itself on a busy machine.
        with open(os.path.join(self.work, "labmate.toml"), "w") as f:
            f.write('[rules.nonfinite]\naction = "alert"\n')
        script = self.write_script("""
            import labmate
            labmate.init(name="sup")
            labmate.log({"loss": 0.5, "weird": float("nan")})
            labmate.log({"loss": 0.25, "weird": float("inf")})
            labmate.log({"loss": 0.125, "weird": float("-inf")}, step=7)
        """)
        done = self.bin("run", "--", sys.executable, script)
        found = re.search(r"labmate: run (r-[0-9a-z]{10}) started", done.stderr)
        self.assertIsNotNone(found, done.stderr)
        metrics = self.bin_json("metrics", found.group(1), "--json")
        for points in metrics.values():
            for point in points:
                self.assertEqual(set(point), {"step", "time", "value"})
                self.assertTrue(is_number(point["time"]))
        self.assertEqual([(p["step"], p["value"]) for p in metrics["loss"]],
                         [(0, 0.5), (1, 0.25), (7, 0.125)])
        self.assertEqual([(p["step"], p["value"]) for p in metrics["weird"]],
                         [(0, "NaN"), (1, "Infinity"), (7, "-Infinity")])

    def test_steps_are_exact_64_bit_integers_end_to_end(self):
        self.make_lab()
        script = self.write_script("""
            import time, labmate
            labmate.init(name="steps")
            labmate.log({"a": 1.0}, step=time.time_ns())
            for step in (2**53 + 1, 2**62, 2**63 - 1):
                labmate.log({"a": 2.0}, step=step)
            labmate.log({"a": 3.0})           # counts on from 2**63 - 1: stays there
            labmate.log({"a": 4.0}, step=2**63)
            labmate.log({"a": 5.0}, step=-2**63)
            labmate.log({"a": 6.0})
        """)
        done = self.bin("run", "--", sys.executable, script)
        run_id = re.search(r"labmate: run (r-[0-9a-z]{10}) started", done.stderr).group(1)
        points = self.bin_json("metrics", run_id, "a", "--json")["a"]
        steps = [p["step"] for p in points]
        ns = [s for s in steps if 1_700_000_000 * 10**9 < s < 2**62]
        self.assertEqual(len(ns), 1, steps)
        steps.remove(ns[0])
        # 2**63 is outside the range: a warning, and the point at the last good step.
        self.assertEqual(sorted(steps),
                         sorted([2**53 + 1, 2**62, 2**63 - 1, 2**63 - 1, 2**63 - 1, -2**63, -2**63 + 1]))
        self.assertEqual(len(points), 8, "no point is lost")
        events = self.bin("events", run_id).stdout
        self.assertIn("outside the signed 64-bit range", events)
        out = os.path.join(self.tmp, "series.jsonl")
        self.bin("export", "--series", "--format", "jsonl", "-o", out)
        with open(out) as f:
            # The supervisor's sys/ samples may be there too on a slow machine.
            exported = [row["step"] for row in map(json.loads, f) if row["key"] == "a"]
        self.assertEqual(sorted(exported), sorted(steps + ns))
        out = os.path.join(self.tmp, "series.csv")
        self.bin("export", "--series", "--format", "csv", "-o", out)
        with open(out) as f:
            self.assertIn(",%d," % (2**53 + 1), f.read())
        out = os.path.join(self.tmp, "runs.jsonl")
        self.bin("export", "--format", "jsonl", "-o", out)
        with open(out) as f:
            self.assertEqual(json.loads(f.readline())["metrics.a.last_step"], 2**63 - 1)

    def test_standalone_runs_are_listed(self):
        done = self.run_script("""
            import labmate
            run = labmate.init(name="solo", config={"lr": 0.1}, tags=["baseline"])
            for step, loss in enumerate([5.0, 4.0, 3.0, 2.0, 1.0]):
                labmate.log({"loss": loss})
            print(run.id)
        """, env=self.env(LABMATE_DIR=self.lab))
        ok_id = done.stdout.strip()
        done = self.run_script("""
            import labmate
            run = labmate.init(name="broken")
            print(run.id, flush=True)
            raise ValueError("boom")
        """, env=self.env(LABMATE_DIR=self.lab), expect_rc=1)
        failed_id = done.stdout.strip()
        run = self.run_by_id(ok_id)
        self.assertEqual(run["name"], "solo")
        self.assertEqual(run["status"], "finished")
        self.assertEqual(run["config"].get("lr"), 0.1)
        self.assertIn("baseline", run["tags"])
        summary = run["metrics"]["loss"]  # the Rust side may add fields
        self.assertEqual({k: summary.get(k) for k in ("last", "min", "max", "count", "last_step")},
                         {"last": 1.0, "min": 1.0, "max": 5.0, "count": 5, "last_step": 4})
        self.assertEqual(self.run_by_id(failed_id)["status"], "failed")

    def test_killed_standalone_run_is_lost_with_its_points(self):
        proc = self.start_script("""
            import time, labmate
            run = labmate.init(name="doomed")
            print(run.id, run.dir, flush=True)
            for i in range(500):
                labmate.log({"loss": float(i)})
            time.sleep(600)
        """, env=self.env(LABMATE_DIR=self.lab, LABMATE_FLUSH_INTERVAL="0.1"))
        run_id, run_dir = proc.stdout.readline().split()
        path = os.path.join(run_dir, "client-%d.jsonl" % proc.pid)

        def all_flushed():
            return self.points_in(path) == 500

        self.assertTrue(wait_for(all_flushed))
        self.assertEqual(self.run_by_id(run_id)["status"], "running")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        self.assertEqual(self.run_by_id(run_id)["status"], "lost")
        self.assertTrue(os.path.exists(os.path.join(run_dir, "lost.json")))
        metrics = self.bin_json("metrics", run_id, "--json")
        self.assertEqual([(p["step"], p["value"]) for p in metrics["loss"]],
                         [(i, float(i)) for i in range(500)])


if __name__ == "__main__":
    unittest.main()
