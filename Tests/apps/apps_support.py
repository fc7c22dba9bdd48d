"""Helpers for the tests of the programs built on libglm's public API: build/bin/glm (the command line and
`glm serve`).

The server fixtures start `glm serve` on 127.0.0.1 with port 0 (the system picks a free port; the server prints it)
and stop it with SIGTERM at the end, so `make test` needs nothing running beforehand.
"""
import json
import pathlib
import re
import select
import signal
import subprocess
import time
import urllib.error
import urllib.request


ROOT = pathlib.Path(__file__).resolve().parents[2]
GLM = ROOT / "build" / "bin" / "glm"
TINY = ROOT / "Tests" / "Fixtures" / "models" / "glm-tiny-chat"
FIXTURES = ROOT / "Tests" / "Fixtures"


def jsonl(*parts):
    return [json.loads(line) for line in FIXTURES.joinpath(*parts).read_text(encoding="utf-8").splitlines() if line.strip()]


def greedy_cases():
    """The tiny model's transformers greedy references (tools/make_demo_model.py), by name."""
    data = json.loads((TINY / "greedy.json").read_text())
    return {case["name"]: case for case in data["cases"]}


def run_glm(*args, input=None, timeout=120):
    return subprocess.run([str(GLM), *map(str, args)], input=input, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


class Server:
    """A running `glm serve`: base URL, process, and small HTTP helpers (urllib: no client library in the way)."""

    def __init__(self, *args):
        self.process = subprocess.Popen([str(GLM), "serve", str(TINY), "--host", "127.0.0.1", "--port", "0", "-q", *map(str, args)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 1)
            if ready:
                line = self.process.stdout.readline()
                break
            if self.process.poll() is not None:
                break
        match = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", line)
        if not match:
            self.stop()
            raise RuntimeError("glm serve did not start: %r %s" % (line, self.process.stderr.read()))
        self.url = match.group(1)
        self.port = int(match.group(2))

    def request(self, method, path, body=None, raw=None, headers=None):
        """(status, parsed JSON or text) of one request."""
        status, parsed, _ = self.exchange(method, path, body, raw, headers)
        return status, parsed

    def exchange(self, method, path, body=None, raw=None, headers=None):
        """(status, parsed JSON or text, response headers) of one request."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=300) as response:
                status, text, fields = response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as error:
            status, text, fields = error.code, error.read().decode(), error.headers
        return status, (json.loads(text) if "json" in fields.get("Content-Type", "") else text), fields

    def health(self):
        return self.request("GET", "/health")[1]

    def rss_bytes(self):
        for line in pathlib.Path("/proc/%d/status" % self.process.pid).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_for(predicate, seconds=60, what="condition"):
    """Polls `predicate` (bounded): for states another thread reaches, never a timing assertion."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)
