"""The rural sewage facility inspection system's API on loopback: village treatment facilities, inspections with
their running status, and effluent samples (a stopped or abnormal facility's effluent reads worse)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from connectors.city_platform.simulator import PlatformSimulator, beijing_text
from connectors.rural_sewage import RuralSewageSource

__all__ = ["RuralSewageSimulator", "demo_simulator"]

_VILLAGES = ("石岗村", "良口村", "派潭村", "鳌头村", "横沥村", "大岗村", "梯面村")
_PROCESSES = ("a2o", "ao", "mbr", "biofilm", "constructed_wetland", "oxidation_pond")


class RuralSewageSimulator(PlatformSimulator):
    source = RuralSewageSource
    volumes: ClassVar[dict[str, tuple[int, str | None]]] = {
        "facilities": (1, None),
        "inspections": (2, "running_status"),
        "effluent_samples": (2, "cod"),
    }

    def _make(self, stream: str, n: int, at: datetime) -> dict[str, Any]:
        rng = self.rng
        if stream == "facilities":
            households = rng.randint(40, 800)
            return self.place() | {
                "facility_id": f"NW{n + 1:08d}",
                "name": f"{rng.choice(_VILLAGES)}污水处理站{n + 1}",
                "villages_served": rng.randint(1, 4),
                "households_served": households,
                "design_capacity_t_d": float(round(households * 0.4 * rng.uniform(0.9, 1.4))) or 5.0,
                "process": rng.choice(_PROCESSES),
            }
        facility = self.pick("facilities")
        if stream == "inspections":
            return {
                "inspection_id": f"NX{n + 1:08d}",
                "facility_id": facility["facility_id"],
                "inspected_at": beijing_text(self.moment_before(at)),
                "inspector": rng.choice(("林海", "郑丽", "何军")),
                "result": rng.choice(("normal", "normal", "problem_found")),
                "running_status": rng.choice(("normal", "normal", "normal", "abnormal", "stopped")),
                "address_code": facility["address_code"],
                "remarks": None,
            }
        poor = rng.random() < 0.2
        return {
            "facility_id": facility["facility_id"],
            "sampled_at": beijing_text(self.moment_before(at)),
            "ph": round(rng.uniform(6.5, 8.2), 2),
            "cod": round(rng.uniform(80, 200) if poor else rng.uniform(15, 55), 1),
            "ammonia_nitrogen": round(rng.uniform(10, 30) if poor else rng.uniform(0.5, 7), 2),
            "total_phosphorus": round(rng.uniform(1.5, 4) if poor else rng.uniform(0.1, 0.9), 3),
            "suspended_solids": round(rng.uniform(30, 90) if poor else rng.uniform(5, 18), 1),
        }


demo_simulator = RuralSewageSimulator.demo
"""What ``make demo`` serves for this source."""
