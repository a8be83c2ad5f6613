"""The drainage household inspection system's API on loopback: registered dischargers (restaurants, car washes,
construction sites, factories, markets) with drainage permits, inspections, and violations with deadlines."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.city_platform.simulator import PlatformSimulator, beijing_text
from connectors.drainage_households import DrainageHouseholdsSource
from contracts.types import BEIJING

__all__ = ["DrainageHouseholdsSimulator", "demo_simulator"]

_NAMES = {
    "catering": "酒家",
    "car_wash": "洗车场",
    "construction_site": "项目工地",
    "industry": "制品厂",
    "market": "市场",
    "other": "商行",
}
_VIOLATIONS = ("no_permit", "expired_permit", "no_pretreatment", "illicit_connection", "over_limit_discharge")


class DrainageHouseholdsSimulator(PlatformSimulator):
    source = DrainageHouseholdsSource
    volumes: ClassVar[dict[str, tuple[int, str | None]]] = {
        "households": (1, None),
        "inspections": (2, "result"),
        "violations": (1, "status"),
    }

    def _make(self, stream: str, n: int, at: datetime) -> dict[str, Any]:
        rng = self.rng
        if stream == "households":
            category = rng.choice(list(_NAMES))
            permitted = rng.random() < 0.8
            expiry = at + timedelta(days=rng.randint(-60, 1500))
            return self.place() | {
                "household_id": f"PH{n + 1:08d}",
                "name": f"{rng.choice(('兴盛', '利民', '恒通', '福满'))}{_NAMES[category]}{n + 1}",
                "category": category,
                "key_household": category in ("industry", "catering") and rng.random() < 0.5,
                "permit_number": f"GZPS-{at:%Y}-{n + 1:05d}" if permitted else None,
                "permit_valid_until": f"{expiry.astimezone(BEIJING):%Y-%m-%d}" if permitted else None,
            }
        household = self.pick("households")
        if stream == "inspections":
            return {
                "inspection_id": f"HX{n + 1:08d}",
                "household_id": household["household_id"],
                "inspected_at": beijing_text(self.moment_before(at)),
                "inspector": rng.choice(("刘洋", "黄磊", "周敏", "吴芳")),
                "result": rng.choice(("normal", "problem_found")),
                "address_code": household["address_code"],
                "remarks": rng.choice((None, "隔油池未清掏", "沉淀池满")),
            }
        found = self.moment_before(at, within=timedelta(days=5))
        status = rng.choice(("open", "rectifying", "rectified", "penalised", "closed"))
        return {
            "violation_id": f"WG{n + 1:08d}",
            "household_id": household["household_id"],
            "inspection_id": None,
            "found_at": beijing_text(found),
            "closed_at": beijing_text(at - timedelta(minutes=5)) if status == "closed" else None,
            "violation_type": "no_permit" if household["permit_number"] is None else rng.choice(_VIOLATIONS[1:]),
            "rectify_by": f"{(found + timedelta(days=30)).astimezone(BEIJING):%Y-%m-%d}",
            "status": status,
            "penalty_yuan": float(rng.choice((5000, 10000, 50000))) if status == "penalised" else None,
        }


demo_simulator = DrainageHouseholdsSimulator.demo
"""What ``make demo`` serves for this source."""
