"""`ticklane auth schwab`: the manual login against the local fake, as a person runs it.

The command runs as its own process; the test plays the person: it reads the authorize URL
the command prints, opens it at the fake (which skips the login page and redirects straight
to the callback with a code: the redirect is read, never followed), and pastes the redirect
URL into the command's stdin. The token file it writes must be schwab-py's, private, and
enough for the adapter to trade from.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from pydantic import SecretStr

from executors.brokers.schwab import config
from executors.brokers.schwab.auth import DEFAULT_CALLBACK_URL
from executors.brokers.schwab.client import SchwabBroker
from fakes.schwab.background import FakeSchwabServer
from fakes.schwab.server import FakeConfig
from ticklane.settings import SchwabSettings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
]

TICKLANE = str(Path(sys.executable).with_name("ticklane"))
APP_KEY = "auth-app-key-51f2"
SECRET = "auth-app-secret-77c0-never-printed"  # noqa: S105 - a test value searched for


@pytest.fixture
def fake(tmp_path: Path):
    with FakeSchwabServer(tmp_path / "fake", FakeConfig(app_key=APP_KEY, app_secret=SECRET)) as f:
        yield f


def _env(tmp_path: Path, fake: FakeSchwabServer) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TICKLANE_", "SCHWAB_")) and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    return env | {
        "TICKLANE_DATA_DIR": str(tmp_path / "data"),
        "TICKLANE_EXECUTOR__SCHWAB__API_URL": fake.url,
        "SCHWAB_APP_KEY": APP_KEY,
        "SCHWAB_APP_SECRET": SECRET,
    }


def _start_login(env: dict[str, str], token_file: Path) -> tuple[subprocess.Popen[str], str]:
    """Run the command until it prints the authorize URL; the process and the URL."""
    proc = subprocess.Popen(
        [TICKLANE, "auth", "schwab", "--token-file", str(token_file)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if "/v1/oauth/authorize?" in line:
            return proc, line.strip()
    proc.wait(30)
    raise AssertionError(f"no authorize URL printed: {''.join(printed)} {proc.stderr}")


def _finish(proc: subprocess.Popen[str], pasted: str) -> tuple[int, str]:
    out, err = proc.communicate(pasted + "\n", timeout=60)
    return proc.returncode, out + err


def _redirect_of(url: str) -> str:
    """Open the authorize URL as a browser would, and read where it is sent (not followed)."""
    answer = httpx2.get(url, follow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def test_auth_schwab_writes_a_private_token_file_the_adapter_trades_from(
    tmp_path: Path, fake: FakeSchwabServer
) -> None:
    started = time.time()
    token_file = tmp_path / "secrets" / "schwab-token.json"
    proc, url = _start_login(_env(tmp_path, fake), token_file)
    asked = urlsplit(url)
    assert url.startswith(fake.url + "/v1/oauth/authorize?")
    query = parse_qs(asked.query)
    assert query["client_id"] == [APP_KEY]
    assert query["redirect_uri"] == [DEFAULT_CALLBACK_URL]
    redirect = _redirect_of(url)
    assert redirect.startswith(DEFAULT_CALLBACK_URL)
    assert parse_qs(urlsplit(redirect).query)["state"] == query["state"]

    code, output = _finish(proc, redirect)

    assert code == 0, output
    assert "expires" in output
    assert "UTC" in output
    assert "local" in output
    assert "REDUCING" in output
    assert "ticklane auth schwab" in output
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in token_file.parent.iterdir()] == [token_file.name]  # no temp left
    written = config.read_token_file(token_file)
    assert started - 1 <= written["creation_timestamp"] <= time.time() + 1
    assert {"access_token", "refresh_token", "expires_at"} <= set(written["token"])
    # Neither the secret, the code, nor any token reaches the output.
    code_value = parse_qs(urlsplit(redirect).query)["code"][0]
    for secret in (SECRET, code_value, *(str(v) for v in written["token"].values())):
        if len(secret) > 8:
            assert secret not in output

    # The adapter starts from that file alone, and trades through it.
    root = tmp_path / "desk"
    broker = SchwabBroker(
        SchwabSettings(api_url=fake.url, timeout_s=2.0, token_file=token_file),
        config.AppCredentials(SecretStr(APP_KEY), SecretStr(SECRET)),
        root,
    )
    try:
        assert broker.positions() == {}
        assert 0 <= broker.token_age_s() < 120
        assert broker.login_state() is config.LoginState.OK
    finally:
        broker.close()


@pytest.mark.parametrize(
    ("paste", "said"),
    [
        ("", "no redirect URL was pasted"),
        ("https://example.com/?code=abc", "does not start with the callback URL"),
        (DEFAULT_CALLBACK_URL + "/?error=access_denied", "no authorization code"),
        ("CODE_REPLACED", "Schwab refused the login"),
    ],
    ids=["empty", "another-host", "no-code", "unknown-code"],
)
def test_a_bad_paste_fails_clearly_and_writes_nothing(
    tmp_path: Path, fake: FakeSchwabServer, paste: str, said: str
) -> None:
    token_file = tmp_path / "secrets" / "schwab-token.json"
    proc, url = _start_login(_env(tmp_path, fake), token_file)
    if paste == "CODE_REPLACED":
        # A well-formed redirect whose code the fake never issued.
        state = parse_qs(urlsplit(url).query)["state"][0]
        paste = f"{DEFAULT_CALLBACK_URL}/?code=not-a-code-0000&state={state}"

    code, output = _finish(proc, paste)

    assert code == 1, output
    assert said in output
    assert "nothing written" in output
    assert SECRET not in output
    assert not token_file.exists()
    assert not (tmp_path / "data" / config.TOKEN_FILE_NAME).exists()
