"""examples/study_bench_tables.py: the throughput tables of docs/studies.md from bench/study.py's JSON line."""

from __future__ import annotations

import sys
from pathlib import Path

from neurodtco.study.floor import study_floor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import study_bench_tables as example  # noqa: E402


def _result() -> dict:
    # two tasks: 3e11 flops of fits at 1e11 flop/s (3 s) and 4 s of simulation, over 2 workers: (3 + 4) / 2 = 3.5 s
    floor = study_floor([{"fit_flops": 1e11, "simulate_s": 1.0}, {"fit_flops": 2e11, "simulate_s": 3.0}], 1e11, 2)
    demo = {"study": "quick", "workers": 2, "circuits": 25, "inferences": 44925, "run_s": 70.0, "report_s": 9.0,
            "throughput_inferences_per_s": 44925 / 70.0, "task_cpu_s": 14.0, "ideal_run_s": 9.0, "floor": floor,
            "floor_s": floor["floor_s"], "ratio": 70.0 / floor["floor_s"], "cpu_ratio": 14.0 / (2 * floor["floor_s"])}
    scaling = {"patterns": ["random"], "circuits": 97, "tasks": 13, "workers": 2, "dask1_s": 486.0, "daskN_s": 372.0,
               "task_cpu_1_s": 317.0, "task_cpu_N_s": 354.0, "dask1_inferences_per_s": 359.0,
               "daskN_inferences_per_s": 469.0, "speedup": 486 / 372, "efficiency": 486 / 744,
               "cpu_efficiency": 354 / 744, "cpu_inflation": 354 / 317}
    return {"cpu_count": 2, "load_before": "1.0/2.0/3.0", "load_after": "4.0/5.0/6.0", "demo": demo, "scaling": scaling}


def test_floor_table_shows_the_floor_as_its_parts_over_the_workers():
    lines = example.floor_table([_result()]).splitlines()
    assert lines[0] == "| measure | torch corrector fits |" and all(line.count("|") == 3 for line in lines)
    floor = next(line for line in lines if line.startswith("| floor"))
    assert floor.endswith("| 3.0 s + 4.0 s -> 3.5 s |")
    assert "| `ratio` (wall / floor); `cpu_ratio` (task CPU / floor CPU) | 20.0; 2.00 |" in lines
    assert "load average (1/5/15 min) 1.0/2.0/3.0 before, 4.0/5.0/6.0 after, on 2 cores" in lines[-1]


def test_floor_table_puts_torch_and_compiled_fits_side_by_side():
    torch_run, compiled = _result(), _result()
    torch_run["demo"] = {**torch_run["demo"], "fits": "torch"}
    compiled["demo"] = {**compiled["demo"], "fits": "compiled", "run_s": 35.0,
                        "ratio": 35.0 / compiled["demo"]["floor_s"]}
    lines = example.floor_table([torch_run, compiled]).splitlines()
    assert lines[0] == "| measure | torch corrector fits | compiled corrector fits |"
    assert all(line.count("|") == 4 for line in lines)
    assert "| `ratio` (wall / floor); `cpu_ratio` (task CPU / floor CPU) | 20.0; 2.00 | 10.0; 2.00 |" in lines


def test_scaling_table_gives_both_worker_counts_and_the_speed_up():
    text = example.scaling_table(_result())
    assert "| 1 Dask worker: wall (task CPU) | 486 s (317 s)" in text
    assert "| 2 Dask workers: wall (task CPU) | 372 s (354 s)" in text
    assert f"{486 / 372:.2f}x" in text and text.count("\n") == 8
    assert "(317 s on one worker vs 354 s / 2 on 2) | 1.79x |" in text  # the figure the page quoted for this run

