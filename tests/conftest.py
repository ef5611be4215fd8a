"""Shared pytest set-up.

Under pytest-xdist (``-n 2`` on a 2-core machine) every worker, and every notebook kernel nbval
starts from it, gets one intra-op thread: OpenMP threads that outnumber the cores spin-wait and
slow torch down by an order of magnitude (measured here: 3.7 s vs 0.3 s per training step).
"""

import asyncio
import contextlib
import functools
import http.server
import os
import threading

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the kernels nbval launches
    import torch

    torch.set_num_threads(1)


@contextlib.contextmanager
def no_running_asyncio_loop():
    """Let Playwright's sync API start in a process that already ran notebooks.

    After nbval has executed a notebook in this worker, its kernel client can leave the thread
    marked as running an asyncio loop, and ``sync_playwright()`` then refuses to start ("using
    Playwright Sync API inside the asyncio loop").  Unmark it while the browser runs.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny test models run faster on one thread than on two fighting over a shared CPU
    (measured under load: 4.7 ms against 188 ms per forward pass)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@contextlib.contextmanager
def serve_directory(root):
    """Serve ``root`` over http on 127.0.0.1 (a free port) in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# ------------------------------------------------- the tiny models most test files share
# An untrained xs model on the alphabet "abcdefgh ": enough for properties of samplers, losses
# and bad-input checks (none of them depend on the weights).  A file with another alphabet
# defines its own ``tok`` and gets these models built on it.
TINY_CHARS = "abcdefgh "


@pytest.fixture(scope="module")
def tok():
    import diffusion_lab as dl

    return dl.CharTokenizer.from_texts([TINY_CHARS])


@pytest.fixture(scope="module")
def model(tok):
    """An untrained tiny masked LM (64 positions), in eval mode."""
    import torch

    import diffusion_lab as dl

    torch.manual_seed(0)
    return dl.tiny_mlm(tok, size="xs", max_length=64).eval()


@pytest.fixture(scope="module")
def mlm(model):
    return model


@pytest.fixture(scope="module")
def ar_model(tok):
    """An untrained tiny GPT-2 (64 positions), in eval mode."""
    import torch

    import diffusion_lab as dl

    torch.manual_seed(0)
    return dl.tiny_ar(tok, size="xs", max_length=64).eval()


@pytest.fixture(scope="module")
def ar(ar_model):
    return ar_model
