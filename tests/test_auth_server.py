"""Login on a real ``streamlit run app.py`` server with a team password:
nothing is served without it — pages, Streamlit's websocket and routes,
downloads, the Netron viewer, the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from server_helpers import Server, studio_server, tiny_model, wait_for

from core.server import auth
from core.server.login import login_routes
from core.server.settings import Settings

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with studio_server(tmp_path_factory.mktemp("auth") / "data", password=PASSWORD) as srv:
        yield srv


def _login(
    srv: Server, name: str = "ann", password: str = PASSWORD, next_: str = "/"
) -> requests.Response:
    return requests.post(
        srv.url("/login"),
        data={"name": name, "password": password, "next": next_},
        allow_redirects=False,
        timeout=10,
    )


@pytest.fixture(scope="module")
def cookies(server: Server) -> dict[str, str]:
    r = _login(server)
    assert r.status_code == 303
    return {"tflite_studio_session": r.cookies["tflite_studio_session"]}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("models"))


def test_open_routes(server):
    assert requests.get(server.url("/_stcore/health"), timeout=10).status_code == 200
    r = requests.get(server.url("/login"), timeout=10)
    assert r.status_code == 200 and 'name="password"' in r.text
    assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    "path", ["/", "/inspect?job=0123456789abcdef", "/history", "/netron/index.html"]
)
def test_pages_redirect_to_login(server, path):
    r = requests.get(server.url(path), headers=HTML, allow_redirects=False, timeout=10)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")
    assert requests.utils.unquote(r.headers["location"].split("next=", 1)[1]) == path


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_stcore/host-config"),
        ("GET", "/_stcore/metrics"),
        ("POST", "/_stcore/agent/interact"),
        ("PUT", "/_stcore/upload_file/s/f"),
        ("GET", "/media/0123.png"),
        ("GET", "/static/js/index.js"),
        ("GET", "/favicon.png"),
        ("GET", "/netron/browser.js"),
        ("GET", "/netron/models/" + "0" * 64 + "/m.tflite"),
    ],
)
def test_other_routes_answer_401(server, method, path):
    r = requests.request(method, server.url(path), timeout=10, allow_redirects=False)
    assert r.status_code == 401, (path, r.status_code)


def test_api_needs_the_password(server, model):
    r = requests.get(server.url("/api/jobs"), timeout=10)
    assert r.status_code == 401 and r.json()["error"]["message"] == "Login required."
    assert "Bearer" in r.headers["www-authenticate"]
    r = requests.get(server.url("/api/jobs"), auth=("ann", "wrong"), timeout=10)
    assert r.status_code == 401 and r.json()["error"]["message"] == "Wrong password."
    r = requests.post(
        server.url("/api/jobs"), files={"model": (model.name, model.read_bytes())}, timeout=30
    )
    assert r.status_code == 401
    assert not list((server.data / "artifacts").glob("??/*"))  # nothing was stored


def test_websocket_needs_the_cookie(server, cookies):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    ws_url = server.base.replace("http", "ws") + "/_stcore/stream"
    with pytest.raises(InvalidStatus) as e:
        connect(ws_url, subprotocols=["streamlit"], open_timeout=10).close()
    assert e.value.response.status_code == 403
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    ws = connect(
        ws_url, subprotocols=["streamlit"], open_timeout=10, additional_headers={"Cookie": cookie}
    )
    ws.close()


def test_login_sets_a_safe_cookie_and_opens_everything(server, cookies):
    r = _login(server, next_="/history?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/history?x=1"
    raw = r.headers["set-cookie"].lower()
    assert "httponly" in raw and "samesite=strict" in raw and "path=/" in raw
    assert "max-age=" in raw
    assert _login(server, next_="//evil.example/x").headers["location"] == "/"
    assert _login(server, next_="https://evil.example").headers["location"] == "/"

    assert requests.get(server.url("/"), cookies=cookies, timeout=10).status_code == 200
    assert (
        requests.get(server.url("/_stcore/host-config"), cookies=cookies, timeout=10).status_code
        == 200
    )
    r = requests.get(server.url("/netron/index.html"), cookies=cookies, timeout=10)
    assert r.status_code == 200
    r = requests.get(server.url("/api"), cookies=cookies, timeout=10)
    assert r.status_code == 200 and r.json()["user"] == "ann"
    # a login page visit while signed in goes straight on
    r = requests.get(
        server.url("/login?next=/history"), cookies=cookies, allow_redirects=False, timeout=10
    )
    assert r.status_code == 303 and r.headers["location"] == "/history"


def test_wrong_password_and_forged_cookies(server, cookies):
    r = _login(server, password="guess")
    assert r.status_code == 401 and "Wrong password" in r.text
    assert "set-cookie" not in r.headers
    assert _login(server, name="  ").status_code == 400
    value = cookies["tflite_studio_session"]
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    for bad in (forged, "eyJ1IjoiZXZlIn0.abc.def", ""):
        r = requests.get(server.url("/api"), cookies={"tflite_studio_session": bad}, timeout=10)
        assert r.status_code == 401


def test_api_clients_bearer_and_basic(server, model, cookies):
    r = requests.get(
        server.url("/api"), headers={"Authorization": f"Bearer {PASSWORD}"}, timeout=10
    )
    assert r.status_code == 200 and r.json()["user"] == "api"
    r = requests.get(
        server.url("/api"),
        headers={"Authorization": f"Bearer {PASSWORD}", "X-TFLite-Studio-User": "ci-bot"},
        timeout=10,
    )
    assert r.json()["user"] == "ci-bot"
    r = requests.post(
        server.url("/api/jobs"),
        auth=("bob", PASSWORD),
        files={"model": (model.name, model.read_bytes())},
        data={"preset": "float32"},
        timeout=30,
    )
    assert r.status_code == 201 and r.json()["user"] == "bob"
    job = r.json()
    # another person may not cancel bob's job
    r = requests.delete(server.url(job["links"]["self"]), cookies=cookies, timeout=10)
    assert r.status_code == 403 and "bob's job" in r.json()["error"]["message"]

    def finished() -> dict | None:
        j = requests.get(
            server.url(job["links"]["self"]), auth=("bob", PASSWORD), timeout=10
        ).json()
        return j if j["status"] in ("done", "failed") else None

    done = wait_for(finished, timeout=240, every=0.3, what="bob's job")
    assert done["status"] == "done", done
    r = requests.get(server.url(job["links"]["model"]), timeout=10)
    assert r.status_code == 401  # downloads need the login too
    r = requests.get(server.url(job["links"]["model"]), cookies=cookies, timeout=10)
    assert r.status_code == 200 and r.content[4:8] == b"TFL3"
    listed = requests.get(server.url("/api/jobs"), cookies=cookies, timeout=10).json()["jobs"]
    assert [j["user"] for j in listed if j["id"] == job["id"]] == ["bob"]


def test_logout_is_a_post_and_revokes_the_session(server):
    cookie = _login(server, name="dora").cookies[auth.COOKIE_NAME]
    jar = {auth.COOKIE_NAME: cookie}
    assert requests.get(server.url("/api"), cookies=jar, timeout=10).status_code == 200
    # a GET (a link, an image) signs nobody out: it only asks
    r = requests.get(server.url("/logout"), cookies=jar, allow_redirects=False, timeout=10)
    assert r.status_code == 200 and 'method="post"' in r.text
    assert requests.get(server.url("/api"), cookies=jar, timeout=10).status_code == 200
    # a POST from another site is refused
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    r = requests.post(
        server.url("/logout"), cookies=jar, headers=evil, allow_redirects=False, timeout=10
    )
    assert r.status_code == 403
    r = requests.post(server.url("/logout"), cookies=jar, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert (
        'tflite_studio_session=""' in r.headers["set-cookie"]
        or "max-age=0" in r.headers["set-cookie"].lower()
    )
    # the cookie itself no longer works, even if someone kept a copy
    assert requests.get(server.url("/api"), cookies=jar, timeout=10).status_code == 401


# ---------------------------------------------------------------- in-process units


def test_cookie_signing_expiry_and_password_change(tmp_path):
    from core.server import auth

    s = Settings(data_dir=tmp_path, password="pw")
    v = auth.make_session_cookie(s, " ann ")
    assert auth.read_session_cookie(s, v) == "ann"
    assert auth.read_session_cookie(Settings(data_dir=tmp_path, password="new"), v) is None
    assert auth.read_session_cookie(Settings(data_dir=tmp_path / "other", password="pw"), v) is None
    expired = Settings(data_dir=tmp_path, password="pw", session_days=-1)
    assert auth.read_session_cookie(expired, v) is None
    assert auth.user_from_headers({}, {"tflite_studio_session": v}, settings=s) == "ann"
    assert (
        auth.user_from_headers({"Cookie": f"a=b; tflite_studio_session={v}"}, {}, settings=s)
        == "ann"
    )
    assert auth.user_from_headers({}, {}, settings=s) == "local"
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_password_from_secrets_file(tmp_path, monkeypatch):
    from core.server import settings as settings_mod

    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text('[tflite_studio]\npassword = "from-secrets"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TFLITE_STUDIO_PASSWORD", raising=False)
    assert settings_mod.load_settings().password == "from-secrets"
    assert settings_mod.load_settings().login_required
    assert "from-secrets" not in repr(settings_mod.load_settings())
    monkeypatch.setenv("TFLITE_STUDIO_PASSWORD", "from-env")
    assert settings_mod.load_settings().password == "from-env"


def test_repeated_wrong_passwords_are_slowed_down(tmp_path):
    """Against a small app in this process (the limiter is per process)."""
    import socket
    import threading

    import uvicorn
    from starlette.applications import Starlette

    from core.server import auth
    from core.server.api import api_routes

    s = Settings(data_dir=tmp_path, password="pw")
    app = Starlette(routes=[*login_routes(s), *api_routes(s)], middleware=auth.auth_middleware(s))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: srv.started, timeout=20, what="the test app")
        auth.login_limiter.reset("127.0.0.1")
        codes = [
            requests.get(base + "/api", auth=("x", "nope"), timeout=5).status_code
            for _ in range(auth.MAX_FAILS)
        ]
        assert codes == [401] * (auth.MAX_FAILS - 1) + [429]
        r = requests.get(base + "/api", auth=("x", "pw"), timeout=5)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        r = requests.post(
            base + "/login", data={"name": "x", "password": "pw"}, timeout=5, allow_redirects=False
        )
        assert r.status_code == 429 and "Too many wrong passwords" in r.text
        cookie = auth.make_session_cookie(s, "ann")  # a signed-in browser still works
        r = requests.get(base + "/api", cookies={auth.COOKIE_NAME: cookie}, timeout=5)
        assert r.status_code == 200
    finally:
        auth.login_limiter.reset("127.0.0.1")
        srv.should_exit = True
        t.join(10)


def test_the_failure_limit_counts_all_addresses_and_never_forgets_wholesale():
    from core.server.limiter import FailureLimiter

    lim = FailureLimiter(per_address=3, overall=10, window_s=60, max_addresses=5)
    for _ in range(3):
        lim.fail("10.0.0.1")
    assert lim.blocked("10.0.0.1") > 0 and lim.blocked("10.0.0.2") == 0
    for i in range(2, 6):  # more addresses, one failure each: the table is not wiped
        lim.fail(f"10.0.0.{i}")
    assert lim.blocked("10.0.0.1") > 0
    for i in range(6, 9):  # rotating addresses reach the limit across all of them
        lim.fail(f"10.0.0.{i}")
    assert lim.blocked("192.168.1.1") > 0  # an address never seen waits too
    lim.fail("10.0.0.99")  # the oldest entry goes, not the whole table
    assert lim.addresses() == 5 and lim.blocked("10.0.0.99") > 0
