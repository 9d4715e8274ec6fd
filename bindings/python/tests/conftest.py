"""Harness for the Python binding tests: the generated `donghanh` module and a real server.

`scripts/bindings test` sets DONGHANH_BINDINGS (the directory holding donghanh.py beside the
libdonghanh it was generated from) and DONGHANH_SERVER (the donghanh-server binary). Each test
module gets its own server process on a loopback port with a temporary data directory, set up
through the operator's command line (`admin org add`, `admin user add`), and stopped by pid.
"""

import hashlib
import hmac
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

sys.path.insert(0, os.environ["DONGHANH_BINDINGS"])

import donghanh  # noqa: E402  (the path above is what makes it importable)

SERVER = os.environ["DONGHANH_SERVER"]
PASSWORD = "mật-khẩu-thử-nghiệm"
PIN = "482615"


class MemoryKeyStore(donghanh.KeyStore):
    """A test stand-in for the Android Keystore / iOS Keychain: a random key held in memory.

    Wrapping is an HMAC-SHA256 keystream XOR plus a tag (Python's standard library has no AES);
    good enough to prove the contract: same key unwraps, another key is rejected, no key is
    missing."""

    def __init__(self, key=None):
        self.key = key if key is not None else secrets.token_bytes(32)

    def _stream(self, nonce, n):
        out = b""
        counter = 0
        while len(out) < n:
            out += hmac.new(self.key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
            counter += 1
        return out[:n]

    def wrap(self, secret):
        if self.key is None:
            raise donghanh.DonghanhError.KeyMissing()
        nonce = secrets.token_bytes(16)
        body = bytes(a ^ b for a, b in zip(secret, self._stream(nonce, len(secret))))
        tag = hmac.new(self.key, nonce + body, hashlib.sha256).digest()
        return nonce + tag + body

    def unwrap(self, wrapped):
        if self.key is None:
            raise donghanh.DonghanhError.KeyMissing()
        nonce, tag, body = wrapped[:16], wrapped[16:48], wrapped[48:]
        if not hmac.compare_digest(tag, hmac.new(self.key, nonce + body, hashlib.sha256).digest()):
            raise donghanh.DonghanhError.KeyRejected()
        return bytes(a ^ b for a, b in zip(body, self._stream(nonce, len(body))))


def admin(data, *args):
    """Runs `donghanh-server --data DATA admin ARGS…`; returns its stdout, stripped."""
    done = subprocess.run(
        [SERVER, "--data", data, "admin", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DONGHANH_NEW_PASSWORD": PASSWORD},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class Server:
    url: str
    data: str
    commune: str
    team: str
    point: str
    process: subprocess.Popen = field(repr=False)

    def add_user(self, username, role, org=None, point=None):
        args = ["user", "add", "--username", username, "--role", role,
                "--org", org or self.commune, "--display-name", username]
        if point:
            args += ["--point", point]
        return admin(self.data, *args)

    def revoke(self, device_id):
        admin(self.data, "device", "revoke", device_id)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("server") / "data")
    province = admin(data, "org", "add", "--name", "Tỉnh Thử Nghiệm")
    commune = admin(data, "org", "add", "--name", "Xã Thử Nghiệm", "--parent", province)
    team = admin(data, "org", "add", "--name", "Đội Thử Nghiệm", "--parent", commune)
    point = admin(data, "point", "add", "--name", "Điểm Tư Vấn Thử Nghiệm", "--org", commune)
    process = subprocess.Popen(
        [SERVER, "--data", data, "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening on "), line
        yield Server("http://" + line.removeprefix("listening on "), data, commune, team, point,
                     process)
    finally:
        process.terminate()
        process.wait(timeout=30)


_counter = [0]


@pytest.fixture
def username():
    """A fresh username per call (users are per server, servers per module)."""

    def make(prefix):
        _counter[0] += 1
        return f"{prefix}.{_counter[0]}"

    return make


def enroll(server, dir, username, keystore=None):
    return donghanh.Device.enroll(
        str(dir), keystore or MemoryKeyStore(), PIN, server.url, username, PASSWORD, "pytest"
    )
