"""The demo retailer simulator: a Spanish brand of olive oil, gourmet food, natural
cosmetics and gift boxes, its shops and channels, and customers who wander between them.

Public face: ``simulate()`` writes a deterministic history (per-source Segment JSONL,
CSV tables and the ground truth) to a folder; ``load()`` stores a generated folder
through trayecto's own public paths (``access.create_source``, ``collect.import_events``).
See docs/simulator.md.
"""

from trayecto.sim.engine import EventFile, Manifest, manifest_dict, simulate
from trayecto.sim.loader import LoadReport, load
from trayecto.sim.scenario import Scenario, SourceSpec, load_scenario

__all__ = [
    "EventFile",
    "LoadReport",
    "Manifest",
    "Scenario",
    "SourceSpec",
    "load",
    "load_scenario",
    "manifest_dict",
    "simulate",
]
