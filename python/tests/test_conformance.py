"""The Python client against the golden fixtures in conformance/ (at the
repository root), which the Rust side's tests read too, and against what
the supervisor records in run.json for the same launch.

Run from the repository root:

    PYTHONPATH=python python3 -m unittest discover -s python/tests -v
"""

import json
import os
import subprocess
import sys
import unittest

CLIENT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # python/
FIXTURES = os.path.join(os.path.dirname(CLIENT_DIR), "conformance")
sys.path.insert(0, CLIENT_DIR)

import labmate._rundir  # noqa: E402

try:  # discovered as the package `tests` (cargo test) or as top-level modules
    from .test_client import HAVE_GIT, LABMATE_BIN, LabTestCase
except ImportError:
    from test_client import HAVE_GIT, LABMATE_BIN, LabTestCase  # noqa: E402


def fixture_json(*parts):
    with open(os.path.join(FIXTURES, *parts), "rb") as f:
        return json.loads(f.read().decode("utf-8"))


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
        subprocess.run([sys.executable, "-c", "import labmate; labmate.init(name='x', tags=['a', 'a', 'b']); labmate.finish()"],
                       cwd=work, env=env, check=True)
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


if __name__ == "__main__":
    unittest.main()
