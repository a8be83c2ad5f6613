"""Every DAG parses, carries its operating metadata, and stays cheap to import (STYLE rule 26)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(path for path in DAGS_FOLDER.glob("*.py") if not path.name.startswith("_"))


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert {Path(dag.fileloc).name for dag in dagbag.dags.values()} == {path.name for path in DAG_FILES}


def test_every_dag_has_owner_retries_doc_tags_and_an_explicit_schedule(dagbag: Any) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.default_args.get("owner") not in (None, "", "airflow"), dag_id
        assert dag.default_args.get("retries", 0) >= 1, dag_id
        assert len(dag.doc_md or "") > 100, dag_id
        assert dag.tags, dag_id
        assert dag.schedule not in (None, "None"), dag_id
        assert dag.catchup is False, dag_id
        assert dag.max_active_runs == 1, dag_id


def test_every_published_dataset_has_one_asset_task_right_after_publish(dagbag: Any) -> None:
    """An asset event must mean "this dataset changed": so each Asset is the one outlet of its own task after
    publish, which the run can skip when the dataset did not change, and publish itself declares none."""
    for dag_id, dag in dagbag.dags.items():
        emitters = [task for task in dag.tasks if task.outlets]
        assert emitters, f"{dag_id} publishes no Asset"
        for task in emitters:
            assert len(task.outlets) == 1, (dag_id, task.task_id)
            assert task.upstream_task_ids == {"publish"}, (dag_id, task.task_id)
        assert len({task.outlets[0].name for task in emitters}) == len(emitters), dag_id


def test_water_quality_runs_the_path_in_order_with_an_asset_task_per_dataset(dagbag: Any) -> None:
    dag = dagbag.dags["water_quality"]
    assert dag.task_dict["extract"].downstream_task_ids == {"validate"}
    assert dag.task_dict["validate"].downstream_task_ids == {"publish", "notify", "snapshot"}
    assert dag.task_dict["publish"].downstream_task_ids == {"notify", "snapshot", "changed_stations", "changed_samples"}
    outlets = {task.task_id: [asset.name for asset in task.outlets] for task in dag.tasks if task.outlets}
    assert outlets == {
        "changed_stations": ["water_quality.stations"],
        "changed_samples": ["water_quality.samples"],
    }


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda path: path.name)
@pytest.mark.usefixtures("airflow_env")
def test_importing_a_dag_file_loads_none_of_the_heavy_modules(dag_file: Path) -> None:
    heavy = ["great_expectations", "contracts", "connectors", "quality", "exchange", "waterhub"]
    probe = (  # the dag processor puts the DAG folder on sys.path, so a DAG file may import its siblings
        "import runpy, sys, json\n"
        f"sys.path.insert(0, {str(DAGS_FOLDER)!r})\n"
        f"runpy.run_path({str(dag_file)!r})\n"
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own probe
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_a_derived_dag_runs_on_any_of_its_inputs_assets_and_emits_one_asset_per_output(dagbag: Any) -> None:
    from waterhub.derived import declared_derivations

    for name, declaration in declared_derivations().items():
        dag = dagbag.dags[name]
        condition = dag.timetable.asset_condition
        assert type(condition).__name__ == "AssetAny"  # any one input's change, not all of them
        assert sorted(asset.name for asset in condition.objects) == sorted(declaration.inputs)
        outlets = {task.task_id: [asset.name for asset in task.outlets] for task in dag.tasks if task.outlets}
        assert outlets == {f"changed_{short}": [dataset] for short, dataset in declaration.outputs.items()}
        assert dag.task_dict["publish"].downstream_task_ids == {"notify", "snapshot"} | set(outlets)
