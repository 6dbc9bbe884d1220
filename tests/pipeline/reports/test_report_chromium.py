"""Open the rendered report in headless Chromium: it must render and request nothing.

Chromium runs with a dead proxy and a resolver that maps every host to "not found", so a
request could not succeed anyway, and writes a NetLog. Requests the page itself starts carry
the file page's opaque origin as initiator ("null"); the browser's own background requests
(component updates, time sync) carry "not an origin" and are not the report's doing. A
negative control page with remote references proves the check sees page requests.

Skipped only where /usr/bin/chromium is missing and CI is unset; in CI it must run
(`.ci/run` installs Debian's chromium).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("report")]

NETWORK_SCHEMES = ("http:", "https:", "ws:", "wss:", "ftp:")


def chromium() -> str:
    path = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    if path is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail("chromium is required in CI: install Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return path


def open_in_chromium(html_path: Path, work: Path) -> tuple[Path, list[dict]]:
    """Screenshot the page; return the PNG and the network requests the page started."""
    shot, netlog = work / "shot.png", work / "netlog.json"
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={work / 'profile'}",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--log-net-log={netlog}",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        html_path.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return shot, page_requests(netlog)


def page_requests(netlog: Path) -> list[dict]:
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a NetLog cut short is closed by appending "]}"
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    types = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    requests = []
    for event in log["events"]:
        params = event.get("params") or {}
        if types.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        if params.get("initiator") != "not an origin" and params["url"].startswith(NETWORK_SCHEMES):
            requests.append(params)
    return requests


def test_report_renders_offline_in_headless_chromium(drawn_html, tmp_path):
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]*)"', drawn_html)
    assert len(images) >= 4 * 4 + 3 and all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    report = tmp_path / "report.html"
    report.write_text(drawn_html, encoding="utf-8")
    shot, requests = open_in_chromium(report, tmp_path)
    assert requests == []
    assert shot.stat().st_size > 20_000
    pixels = image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert np.unique(pixels.reshape(-1, 3), axis=0).shape[0] > 50  # text, banner, tables
    assert pixels.std() > 0.05


def test_the_request_check_sees_a_page_that_loads_remote_files(tmp_path):
    page = tmp_path / "remote.html"
    page.write_text(
        '<html><body><img src="http://example.org/x.png">'
        '<script src="https://cdn.example.org/a.js"></script>hello</body></html>'
    )
    _, requests = open_in_chromium(page, tmp_path)
    assert {r["url"] for r in requests} >= {
        "http://example.org/x.png",
        "https://cdn.example.org/a.js",
    }
