"""Shared pytest set-up.

Under pytest-xdist (``-n 2`` on a 2-core machine) every worker, and every notebook kernel nbval
starts from it, gets one intra-op thread: OpenMP threads that outnumber the cores spin-wait and
slow torch down by an order of magnitude (measured here: 3.7 s vs 0.3 s per training step).
"""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the kernels nbval launches
    import torch

    torch.set_num_threads(1)
