"""One thread for the analysis's small linear algebra.

The probe and the scores work on a few hundred to a few thousand feature rows. On such
problems the threads of numpy's BLAS (and of scikit-learn's OpenMP loops, in TwoNN's
neighbour search) spend more time waiting for each other than computing, and on a machine
whose cores are busy with other work (a sweep's trials) the loss is an order of magnitude:
the scores of 300 x 1280 features took 16 s with two OpenBLAS threads on a loaded 2-core
machine and 0.4 s with one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

__all__ = ["SMALL_PROBLEM", "one_thread_when_small"]

# Matrices with fewer elements than this are handled on one thread.
SMALL_PROBLEM = 1 << 20


@functools.cache
def _controller() -> ThreadpoolController:
    # Finding the loaded thread pools takes milliseconds (7 ms with torch loaded), as long as
    # a small score, so it is done once: by then the analysis's imports have loaded numpy's
    # and scipy's BLAS and scikit-learn's OpenMP.
    return ThreadpoolController()


@contextmanager
def one_thread_when_small(elements: int) -> Iterator[None]:
    """Limit the BLAS and OpenMP thread pools to one thread while a small problem runs.

    Args:
        elements: the size of the problem's largest matrix (e.g. ``N * D`` of the features);
            at or above :data:`SMALL_PROBLEM` nothing is limited.
    """
    if elements >= SMALL_PROBLEM:
        yield
        return
    with _controller().limit(limits=1):
        yield
