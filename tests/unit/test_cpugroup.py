"""Where the idle CPU cgroup goes, on cgroup trees laid out as the kernel lays them out.

The trees here are plain directories (the kernel's files are created by hand, since only the
kernel makes them appear on ``mkdir``).  The real kernel's side, that calls run in the group
and that its ``cpu.idle`` is set, is in tests/unit/test_warm_runner.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.config.loader import ConfigError, load_config
from gateway.execution import cpugroup
from gateway.execution.proctree import lower_priority


def group(path: Path, idle: str = "0") -> Path:
    """A cgroup directory as the kernel makes it (with the cpu controller on)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "cpu.idle").write_text(idle + "\n")
    (path / "cgroup.procs").write_text("")
    return path


def membership(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "self-cgroup"
    path.write_text(text)
    return path


def test_off_uses_no_group(tmp_path: Path) -> None:
    placement = cpugroup.prepare("off", proc_cgroup=tmp_path / "absent", root=tmp_path)
    assert placement.path is None and "off" in placement.reason


def test_v1_the_group_is_a_child_of_the_gateways_own_cpu_cgroup(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    mount = root / "cpu,cpuacct"
    group(mount)
    (mount / "cpu.shares").write_text("1024\n")
    made = group(mount / "system.slice" / "gateway.service" / cpugroup.NAME)
    proc = membership(tmp_path, "4:memory:/x\n3:cpu,cpuacct:/system.slice/gateway.service\n0::/\n")
    placement = cpugroup.prepare("auto", proc_cgroup=proc, root=root)
    assert placement.path == str(made), placement.reason
    assert (made / "cpu.idle").read_text() == "1"


def test_v1_without_a_cpu_hierarchy_falls_back(tmp_path: Path) -> None:
    (tmp_path / "fs").mkdir()
    proc = membership(tmp_path, "1:cpu:/\n0::/\n")
    placement = cpugroup.prepare("auto", proc_cgroup=proc, root=tmp_path / "fs")
    assert placement.path is None and "no cgroup v1 cpu hierarchy" in placement.reason


def test_v2_the_group_is_a_sibling_in_the_delegated_parent(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    group(root)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    service = group(root / "system.slice" / "gateway.service")
    (service / "cgroup.subtree_control").write_text("cpu memory\n")
    group(service / "main")
    made = group(service / cpugroup.NAME)
    proc = membership(tmp_path, "0::/system.slice/gateway.service/main\n")
    placement = cpugroup.prepare("auto", proc_cgroup=proc, root=root)
    assert placement.path == str(made), placement.reason
    assert (made / "cpu.idle").read_text() == "1"


def test_v2_without_the_cpu_controller_for_children_falls_back(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    group(root)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    service = group(root / "system.slice" / "gateway.service")
    (service / "cgroup.subtree_control").write_text("memory\n")
    proc = membership(tmp_path, "0::/system.slice/gateway.service/main\n")
    placement = cpugroup.prepare("auto", proc_cgroup=proc, root=root)
    assert placement.path is None and "cpu controller is not enabled" in placement.reason
    assert not (service / cpugroup.NAME).exists()


def test_v2_in_the_root_cgroup_falls_back(tmp_path: Path) -> None:
    """A container's namespace root (or the host's): never ours to add groups to."""
    root = tmp_path / "fs"
    group(root)
    (root / "cgroup.controllers").write_text("cpu\n")
    placement = cpugroup.prepare("auto", proc_cgroup=membership(tmp_path, "0::/\n"), root=root)
    assert placement.path is None and "root cgroup" in placement.reason


def test_a_directory_that_is_no_cgroup_falls_back_with_the_reason(tmp_path: Path) -> None:
    """``mkdir`` in a plain directory makes no ``cpu.idle``: the gateway says so and goes on."""
    placement = cpugroup.prepare(str(tmp_path / "plain"))
    assert placement.path is None and "cpu.idle" in placement.reason


def test_an_explicit_group_is_used_as_given(tmp_path: Path) -> None:
    made = group(tmp_path / "ops-made", idle="1")
    placement = cpugroup.prepare(str(made))
    assert placement.path == str(made), placement.reason


def test_a_process_joins_its_group_and_a_missing_group_is_no_error(tmp_path: Path) -> None:
    made = group(tmp_path / "g")
    lower_priority(0, str(made))
    assert (made / "cgroup.procs").read_text() == str(os.getpid())
    lower_priority(0, str(tmp_path / "gone"))  # best effort: the call must still run


@pytest.mark.parametrize("value", ["auto", "off", "/sys/fs/cgroup/cpu/ops"])
def test_the_setting_takes_auto_off_or_an_absolute_path(value: str) -> None:
    assert load_config({"AIRFLOW_GATEWAY__CLI__IDLE_CGROUP": value}).cli.idle_cgroup == value


@pytest.mark.parametrize("value", ["on", "cgroup/relative", ""])
def test_any_other_value_stops_the_gateway(value: str) -> None:
    with pytest.raises(ConfigError, match="cli.idle_cgroup"):
        load_config({"AIRFLOW_GATEWAY__CLI__IDLE_CGROUP": value})
