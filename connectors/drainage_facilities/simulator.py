"""The drainage facility inspection system's API on loopback: a register of pipes, manholes, outfalls and pumping
stations, inspections of them, and defects followed from report to closure (CJJ 181-style classes and grades)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from connectors.city_platform.simulator import PlatformSimulator, beijing_text, parse_beijing
from connectors.drainage_facilities import DrainageFacilitiesSource
from contracts.drainage import DEFECT_TYPES

__all__ = ["DrainageFacilitiesSimulator", "demo_simulator"]

_KINDS = {"pipe": "管段", "manhole": "检查井", "outfall": "排水口", "pumping_station": "泵站"}
_ROADS = ("天河路", "黄埔大道", "广州大道", "新港东路", "机场路", "工业大道", "南沙港快速路", "迎宾大道")


class DrainageFacilitiesSimulator(PlatformSimulator):
    source = DrainageFacilitiesSource
    volumes: ClassVar[dict[str, tuple[int, str | None]]] = {
        "facilities": (1, None),
        "inspections": (2, "result"),
        "defects": (1, "handling_status"),
    }

    def _make(self, stream: str, n: int, at: datetime) -> dict[str, Any]:
        rng = self.rng
        if stream == "facilities":
            kind = rng.choice(list(_KINDS))
            sized = kind in ("pipe", "outfall")
            return self.place() | {
                "facility_id": f"PS{n + 1:08d}",
                "name": f"{rng.choice(_ROADS)}{_KINDS[kind]}{n + 1}号",
                "facility_type": kind,
                "system": rng.choice(("storm", "sewage", "combined")),
                "size_mm": rng.choice((300, 400, 600, 800, 1200, 1800)) if sized else None,
                "material": rng.choice(("钢筋混凝土", "HDPE", "球墨铸铁")) if sized else None,
                "owner": "市排水公司",
            }
        if stream == "inspections":
            facility = self.pick("facilities")
            return {
                "inspection_id": f"XJ{n + 1:08d}",
                "facility_id": facility["facility_id"],
                "inspected_at": beijing_text(self.moment_before(at)),
                "inspector": rng.choice(("张伟", "李娜", "王强", "陈静")),
                "result": rng.choice(("normal", "normal", "problem_found")),
                "address_code": facility["address_code"],
                "remarks": None,
            }
        earlier = [i for i in self.live("inspections") if i["inspected_at"] and parse_beijing(i["inspected_at"]) < at]
        inspection = rng.choice(earlier) if earlier else None
        found = parse_beijing(inspection["inspected_at"]) if inspection else self.moment_before(at)
        defect_class = rng.choice(list(DEFECT_TYPES))
        status = rng.choice(("reported", "assigned", "handling", "handled", "verified", "closed"))
        closed = found + (at - found) / 2 if status == "closed" else None
        return {
            "defect_id": f"QX{n + 1:08d}",
            "facility_id": inspection["facility_id"] if inspection else self.pick("facilities")["facility_id"],
            "inspection_id": inspection["inspection_id"] if inspection else None,
            "found_at": beijing_text(found),
            "closed_at": beijing_text(closed.replace(microsecond=0)) if closed else None,
            "defect_class": defect_class,
            "defect_type": rng.choice(DEFECT_TYPES[defect_class]),
            "grade": rng.randint(1, 4),
            "handling_status": status,
        }


demo_simulator = DrainageFacilitiesSimulator.demo
"""What ``make demo`` serves for this source."""
