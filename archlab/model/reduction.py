"""The target and its proxy: the network a user ships, and the reduced copy a search trains
only to estimate its accuracy.

A genome in a search space describes the target: the network at the widths it is deployed
at. The proxy is a declared reduction of it: the same blocks, depths, strides and fields at a
width multiplier (and, in the search's recipe, a smaller clip and fewer epochs). Its costs are
never reported as the target's; how well a reduction keeps the accuracy ranking is measured
(``archlab fidelity --reference-width``), not assumed. ``proxy_of`` is the one derivation, so
a trial, the confirm step and an experiment's retraining all train the same proxy of a target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..util.errors import UserError
from .genome import Genome, scale_widths


@dataclass(frozen=True, kw_only=True)
class Reduction:
    """How a proxy is reduced from its target: ``width`` multiplies every stage's width and
    the stem's (rounded, at least 1); 1.0 trains the target itself."""

    width: float = 1.0

    def __post_init__(self) -> None:
        w = self.width
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or not 0 < w <= 1:
            raise UserError(f"--proxy-width must be a number in (0, 1] (got {w!r})")

    def proxy_of(self, target: Genome) -> Genome:
        """The proxy genome of ``target``: its widths times ``width``, everything else kept."""
        return target if self.width == 1 else scale_widths(target, self.width)
