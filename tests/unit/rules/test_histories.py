"""Golden histories: given a journey and a supporter's events, when each pass is replayed,
then the plans are exactly the recorded ones (a behaviour change shows as a data diff).

Set MOBILISE_UPDATE_GOLDEN=1 to rewrite the expectations, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.rules.history import replay

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_history_replays_to_the_recorded_plans(path: Path) -> None:
    case = json.loads(path.read_text())

    plans = replay(case)

    if os.environ.get("MOBILISE_UPDATE_GOLDEN") == "1":
        for step, found in zip(case["passes"], plans, strict=True):
            step["expected"] = found
        path.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n")
    assert plans == [step["expected"] for step in case["passes"]]
