"""The machine line the simulation benchmarks print beside their figures."""

from __future__ import annotations

import os
import platform

import numpy as np


def machine() -> str:
    return (
        f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
