"""A minimal WebDriver BiDi client: Debian's firefox-esr, headless, for the live-panel tests.

Playwright's Firefox is a patched build no registry has; stock Firefox speaks W3C BiDi natively.
`Firefox()` starts it on a fresh profile whose user.js silences the browser's own traffic, talks
BiDi over tornado's WebSocket client (tornado comes with ipykernel, in the test extra), and
records console/JavaScript errors, HTTP errors and every request URL.  Skips without firefox-esr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

FIREFOX = os.environ.get("DIFFUSION_LAB_FIREFOX") or shutil.which("firefox-esr") or ""
NO_NOISE = "http://127.0.0.1:9/"  # the discard port: anything still configured fails at once
PREFS = {  # user.js: none of the browser's own traffic (updates, telemetry, studies, checks)
    "app.update.disabledForTesting": True, "app.normandy.enabled": False,
    "toolkit.telemetry.enabled": False, "toolkit.telemetry.server": NO_NOISE,
    "datareporting.healthreport.uploadEnabled": False, "datareporting.policy.firstRunURL": "",
    "datareporting.policy.dataSubmissionEnabled": False, "app.shield.optoutstudies.enabled": False,
    "network.captive-portal-service.enabled": False, "network.connectivity-service.enabled": False,
    "network.trr.mode": 5, "network.dns.disablePrefetch": True, "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0, "security.OCSP.enabled": 0,
    "services.settings.server": NO_NOISE, "media.gmp-provider.enabled": False,
    "extensions.update.enabled": False, "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False, "media.gmp-manager.url": NO_NOISE,
    "media.gmp-manager.chromium-update-url": NO_NOISE, "media.gmp-widevinecdm.enabled": False,
    "browser.region.network.url": "", "geo.provider.network.url": "", "browser.startup.page": 0,
    "browser.search.update": False, "browser.newtabpage.enabled": False,
    **{f"browser.safebrowsing.{k}.enabled": False for k in ("malware", "phishing", "downloads")},
    "browser.chrome.site_icons": False,  # no /favicon.ico request (a 404 on the test server)
}
# A release build ignores services.settings.server (and so syncs Remote Settings with Mozilla
# every start) unless this is set: measured with strace, nothing but 127.0.0.1 with it.
ENV = {**os.environ, "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1"}


class Firefox:
    """One headless firefox-esr: ``open(url)``, ``eval(js)``, ``wait_for(js)``, ``close()``."""

    def __init__(self, timeout: float = 60):
        if not (FIREFOX and os.path.exists(FIREFOX)):
            pytest.skip("firefox-esr not found: apt-get install firefox-esr (Debian's)")
        from tornado.websocket import websocket_connect
        self.errors, self.requests, self.pending, self.next_id = [], [], {}, 0
        self.timeout, self.profile = timeout, tempfile.mkdtemp(prefix="dl-firefox-")
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            f.writelines(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n"
                         for k, v in PREFS.items())
        # Port 0: Firefox picks a free port and writes it to WebDriverBiDiServer.json.
        log, server = (os.path.join(self.profile, f) for f in ("log", "WebDriverBiDiServer.json"))
        with open(log, "w") as f:
            self.proc = subprocess.Popen([FIREFOX, "--headless", "--no-remote", "--profile",
                                          self.profile, "--remote-debugging-port=0"],
                                         stdout=f, stderr=subprocess.STDOUT, env=ENV)
        self.loop, self.ws, url, end = None, None, None, time.monotonic() + timeout
        try:
            while url is None:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise RuntimeError("no BiDi from firefox-esr:\n" + open(log).read()[-3000:])
                time.sleep(0.1)
                with contextlib.suppress(OSError, ValueError, KeyError), open(server) as f:
                    url = "ws://{ws_host}:{ws_port}/session".format(**json.load(f))
            # its own thread runs the socket's event loop: no clash with a loop nbval left running
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True).start()
            async def connect():
                return await websocket_connect(url, max_message_size=1 << 26)
            self.ws = asyncio.run_coroutine_threadsafe(connect(), self.loop).result(timeout)
            asyncio.run_coroutine_threadsafe(self._read(), self.loop)
            self.send("session.new", capabilities={})
            self.send("session.subscribe", events=[
                "log.entryAdded", "network.beforeRequestSent", "network.responseCompleted"])
            self.context = self.send("browsingContext.getTree")["contexts"][0]["context"]
        except BaseException:
            self.close()
            raise

    async def _read(self):  # route answers to their commands; record the events
        while (msg := await self.ws.read_message()) is not None:
            msg = json.loads(msg)
            method, p = msg.get("method"), msg.get("params", {})
            if msg.get("id") in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
            elif method == "log.entryAdded" and p["level"] == "error":
                self.errors.append(p.get("text"))
            elif method == "network.beforeRequestSent":
                self.requests.append(p["request"]["url"])
            elif method == "network.responseCompleted" and p["response"]["status"] >= 400:
                self.errors.append(f"HTTP {p['response']['status']} {p['request']['url']}")
        for fut in self.pending.values():  # the socket closed: no answer will come
            fut.set_exception(ConnectionError("Firefox closed the BiDi connection"))

    async def _send(self, method, params):
        self.next_id += 1
        fut = self.pending[self.next_id] = self.loop.create_future()
        await self.ws.write_message(json.dumps(
            {"id": self.next_id, "method": method, "params": params}))
        return await fut

    def send(self, method: str, **params):
        """One BiDi command; its ``result`` (RuntimeError for a protocol error)."""
        msg = asyncio.run_coroutine_threadsafe(self._send(method, params), self.loop)
        msg = msg.result(self.timeout)
        if msg.get("type") == "error":
            raise RuntimeError(f"{method}: {msg['error']}: {msg.get('message')}")
        return msg["result"]

    def open(self, url: str) -> None:
        self.send("browsingContext.navigate", context=self.context, url=url, wait="complete")

    def eval(self, js: str):
        """The value of the expression ``js`` in the page (awaited), as JSON makes it."""
        r = self.send("script.evaluate", expression=f"(async () => JSON.stringify(await ({js})))()",
                      awaitPromise=True, target={"context": self.context}, resultOwnership="none")
        if r["type"] == "exception":
            raise RuntimeError(f"{js!r} threw: {r['exceptionDetails']['text']}")
        return None if r["result"]["type"] == "undefined" else json.loads(r["result"]["value"])

    def wait_for(self, js: str, timeout: float = 30, every: float = 0.05):
        """Poll the expression ``js`` until it is truthy; its value."""
        end = time.monotonic() + timeout
        while not (value := self.eval(js)):
            if time.monotonic() > end:
                raise TimeoutError(f"{js!r} still false after {timeout} s")
            time.sleep(every)
        return value

    def close(self) -> None:
        with contextlib.suppress(Exception):  # quitting drops the socket; killed if it hangs
            if self.ws is not None:
                self.send("browser.close")  # ends the session and quits Firefox
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill(), self.proc.wait()
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        shutil.rmtree(self.profile, ignore_errors=True)

