"""`oauth_pkce` against the test suite's fakes (the `bench_fakes` example: a fake Doppler and
a strict fake authorization server on loopback), through the installed `oauth-pkce` binary.

Run by `.ci/run` in a fresh venv with the wheel installed; `BENCH_FAKES` names the fakes'
executable (default: target/debug/examples/bench_fakes).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time
import urllib.request

import httpx
import pytest
import requests

from oauth_pkce import BearerAuth, OAuthPkceError, TokenSource, binary

REPO = pathlib.Path(__file__).resolve().parents[2]


class Fakes:
    def __init__(self, tmp: pathlib.Path, expires_in: int) -> None:
        exe = os.environ.get("BENCH_FAKES", str(REPO / "target/debug/examples/bench_fakes"))
        self.proc = subprocess.Popen(
            [exe, str(tmp / "providers"), str(expires_in)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.vars = {}
        for line in self.proc.stdout:
            key, _, value = line.removeprefix("export ").strip().partition("=")
            self.vars[key] = value
            if key == "BENCH_READY":
                break
        home = tmp / "home"
        (tmp / "doppler").mkdir()
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / "state"),
            "DOPPLER_CONFIG_DIR": str(tmp / "doppler"),
            "DOPPLER_TOKEN": self.vars["DOPPLER_TOKEN"],
            "DOPPLER_API_HOST": self.vars["DOPPLER_API_HOST"],
            "OAUTH_PKCE_PROVIDERS_DIR": self.vars["OAUTH_PKCE_PROVIDERS_DIR"],
        }

    def source(self) -> TokenSource:
        return TokenSource("acme", env=self.env)

    def set_secret(self, name: str, value: str) -> None:
        body = {
            "project": "bench",
            "config": "dev",
            "change_requests": [{"name": name, "originalName": name, "value": value}],
        }
        request = urllib.request.Request(
            self.vars["DOPPLER_API_HOST"] + "/v3/configs/config/secrets",
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.vars['DOPPLER_TOKEN']}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200

    def stop(self) -> dict:
        """Stops the fakes; the requests they received."""
        _, err = self.proc.communicate(timeout=10)
        line = next(l for l in err.splitlines() if l.startswith("requests:"))
        return {k: int(v) for k, v in (p.split("=") for p in line.split()[1:])}


@pytest.fixture
def fakes(tmp_path, request):
    f = Fakes(tmp_path, getattr(request, "param", 3600))
    yield f
    if f.proc.poll() is None:
        f.stop()


def test_the_bundled_binary_is_used():
    assert binary().endswith("oauth-pkce")
    out = subprocess.run([binary(), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("oauth-pkce ")


def test_a_fresh_token_is_read_once_and_then_served_from_memory(fakes, capfd):
    source = fakes.source()
    token = source.access_token()
    assert token == fakes.vars["BENCH_ACCESS_TOKEN"]
    assert source.access_token() == token
    assert fakes.stop() == {
        "doppler_reads": 1,
        "doppler_writes": 0,
        "token_requests": 0,
        "refreshes": 0,
        "code_exchanges": 0,
    }
    out, err = capfd.readouterr()
    assert token not in out and token not in err


@pytest.mark.parametrize("fakes", [60], indirect=True)
def test_a_due_token_is_refreshed_first(fakes):
    token = fakes.source().access_token()
    assert token != fakes.vars["BENCH_ACCESS_TOKEN"]
    counts = fakes.stop()
    assert counts["refreshes"] == 1 and counts["token_requests"] == 1


def test_a_401_gets_one_refresh_and_one_retry_with_requests(fakes):
    # The API no longer honours the stored token (revoked there; unexpired here).
    fakes.set_secret("ACME_ACCESS_TOKEN", "AT-FAKE-refused-by-the-api")
    source = fakes.source()
    answer = requests.get(fakes.vars["BENCH_API"], auth=BearerAuth(source), timeout=10)
    assert answer.status_code == 200, answer.text
    assert [r.status_code for r in answer.history] == [401]
    assert source.access_token() != "AT-FAKE-refused-by-the-api"
    assert fakes.stop()["refreshes"] == 1


def test_a_failure_is_an_error_with_the_exit_code_and_no_secret(fakes):
    # A fake service token that the fake Doppler does not know: not a real credential.
    env = dict(fakes.env, DOPPLER_TOKEN="dp.st.dev.FAKE-unknown-token")
    with pytest.raises(OAuthPkceError) as failed:
        TokenSource("acme", env=env).access_token()
    assert failed.value.exit_code == 6
    assert "FAKE-unknown-token" not in str(failed.value)
    with pytest.raises(OAuthPkceError) as failed:
        TokenSource("no-such-provider", env=fakes.env).access_token()
    assert failed.value.exit_code == 3
    assert "unknown provider" in failed.value.message


def test_a_401_gets_one_refresh_and_one_retry_with_httpx(fakes):
    fakes.set_secret("ACME_ACCESS_TOKEN", "AT-FAKE-refused-by-the-api")
    source = fakes.source()
    answer = httpx.get(fakes.vars["BENCH_API"], auth=BearerAuth(source), timeout=10)
    assert answer.status_code == 200, answer.text
    assert [r.status_code for r in answer.history] == [401]
    assert fakes.stop()["refreshes"] == 1


def test_two_sources_refused_the_same_token_refresh_once(fakes):
    # Two programs hold the same token; the API refuses it; each asks for a new one. The
    # second names the token it saw refused, so the first one's new token is not refreshed.
    fakes.set_secret("ACME_ACCESS_TOKEN", "AT-FAKE-refused-by-the-api")
    first, second = fakes.source(), fakes.source()
    assert first.access_token() == second.access_token() == "AT-FAKE-refused-by-the-api"
    new = first.after_unauthorized("AT-FAKE-refused-by-the-api")
    assert second.after_unauthorized("AT-FAKE-refused-by-the-api") == new
    assert fakes.stop()["refreshes"] == 1


def test_a_token_of_unknown_expiry_is_asked_for_again_after_a_minute():
    source = TokenSource("acme")
    source._token, source._expires_at = "AT-FAKE", None
    source._fetched = time.monotonic()
    assert source._fresh()
    source._fetched -= 61
    assert not source._fresh()
