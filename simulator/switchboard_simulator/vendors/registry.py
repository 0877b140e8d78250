"""What a vendor module hands the simulator: its config section and its routes.

`vendors.VENDORS` lists one `Vendor` per module; `config` reads the sections from it and `app` the
routes, so a new vendor is one module plus one line there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..pipeline import Endpoint
from ..settings import Section

if TYPE_CHECKING:
    from ..config import SimulatorConfig


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP route (aiohttp path syntax) and the endpoint that answers it."""

    method: str
    path: str
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class Vendor:
    """A vendor module's contribution: its config section and a factory for its routes."""

    section: Section
    routes: Callable[[SimulatorConfig], Sequence[Route]]

    @property
    def name(self) -> str:
        return self.section.name
