"""The one reading of a ``--device`` option, for train, profile, bench and calibrate.

Why one: the trainer accepted ``auto`` and the profiler did not, and their messages differed.
A device a user names must fail here, before a model is built or a dataset generated, with
one line (UserError): ``cuda`` on a machine without a visible GPU, ``cuda:3`` on a two-GPU
machine, or a word torch does not take.
"""

from __future__ import annotations

import re

import torch

from .errors import UserError, shorten

CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str) -> torch.device:
    """'auto' (a CUDA GPU if torch sees one, else the CPU), 'cpu', 'cuda' or 'cuda:N'."""
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d{1,3}))?", text)
    if m is None:
        raise UserError(f"--device {shorten(text)}: use {CHOICES}")
    if not torch.cuda.is_available():
        raise UserError(f"--device {text}: no CUDA GPU is visible to torch on this machine")
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        raise UserError(f"--device {text}: torch sees {torch.cuda.device_count()} CUDA GPU(s) (cuda:0 ...)")
    return torch.device(text)


def device_label(device: torch.device) -> str:
    """How a result names the device it was measured on ("cpu x2 threads", the GPU's name)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu x{torch.get_num_threads()} threads"
