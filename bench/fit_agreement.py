"""Do the corrector fits of this code agree with another version's? Predictions, losses and CPU seconds side by side.

Run on demand (not in CI), with a checkout of the reference version (e.g. ``git worktree add
/tmp/ref <commit>``)::

    .venv/bin/python bench/fit_agreement.py --reference /tmp/ref/src          # 2 demo tasks, h in 1..32 and affine
    .venv/bin/python bench/fit_agreement.py --reference /tmp/ref/src --tasks 1 --hidden 4 8
    .venv/bin/python bench/fit_agreement.py --reference-commit 1e19f8a --write-docs   # the table of docs/studies.md

The small grid is the first ``--tasks`` defective tasks of the demo study (24 chips each),
simulated once with this code. Every corrector of the demo (its hidden sizes, the affine
baseline, its options) is fitted on them by this code and, in a subprocess, by the reference;
the agreement is the fraction of (chip, test image) predictions that are equal. Each fit's CPU
seconds (``time.process_time``, one thread) are printed with the speed-up over the reference and
their ratio to the floor of ``neurodtco.study.floor`` (the fits' product flops at the GEMM rate of
their shape, measured in the same run). The same fits by
the reference on voltages moved by one part in 1e15 show how much of any disagreement is the fits'
own sensitivity to rounding (a one- or two-neuron MLP stopped at 200 iterations is chaotic: any
change of rounding moves its predictions) rather than a change of what they compute.
``--reference-commit`` takes the reference's ``src`` from a commit of this repository instead of a
folder; ``--write-docs`` (with it, so that the command names the reference) publishes the table
into docs/studies.md. Accuracies are on the held-out images (validation and test) with a bootstrap
interval over the chips.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _correctors(study_name: str, hidden: list[int] | None) -> list[tuple[str, int, dict]]:
    from neurodtco.study import load_study

    study = load_study(study_name)
    spec = study.correctors
    return [("mlp", h, dict(spec.options)) for h in (hidden or spec.hidden)] + \
        [(name, 0, dict(spec.options)) for name in spec.baselines]


def fit_all(voltages: Path, out: Path, jobs: list[tuple[str, int, dict]], scale: float) -> None:
    """Fit every corrector on the stored voltages (times ``scale``); keep test predictions, losses, CPU seconds."""
    from neurodtco import correction

    data = np.load(voltages)
    n_tr = int(data["n_train"])
    result = {}
    for name, h, options in jobs:
        cls = {"mlp": correction.BatchedMLPCorrector, "affine": correction.BatchedAffineCalibration,
               "logistic": correction.BatchedLogisticCorrector}[name]
        predictions, losses, cpu, flops = [], [], 0.0, 0.0
        for v in data["voltages"]:
            model = cls(hidden=h, **options) if name == "mlp" else cls(**options)
            start = time.process_time()
            model.fit(v[:, :n_tr] * scale, data["labels"][:n_tr])
            cpu += time.process_time() - start
            flops += getattr(model, "fit_flops_", float("nan"))  # versions before the floor did not count them
            predictions.append(model.predict(v[:, n_tr:] * scale))
            losses.append(model.final_loss_)
        key = f"{name}-h{h}" if name == "mlp" else name
        result[f"{key}/pred"] = np.stack(predictions)
        result[f"{key}/loss"] = np.stack(losses)
        result[f"{key}/cpu"] = np.array(cpu)
        result[f"{key}/flops"] = np.array(flops)
    np.savez(out, **result)


def _simulate(study_name: str, n_tasks: int, path: Path) -> None:
    """The voltages of the first ``n_tasks`` defective tasks of the study, simulated with this code."""
    from neurodtco.study import expand_tasks, load_study, prepare_setup
    from neurodtco.study.compute import _context, build_circuit
    from neurodtco.engines import simulate

    study = load_study(study_name)
    setup = prepare_setup(study)
    ctx = _context(setup)
    tasks = [t for t in expand_tasks(study) if t.stage == "circuits" and not any(p.is_healthy for p in t.circuits)]
    volts = []
    for task in tasks[:n_tasks]:
        volts.append(np.stack([simulate(build_circuit(ctx.circuits[p.network_seed], study, p)[0], ctx.x_all_v,
                                        engine=ctx.engine, seed=p.imperfection_seed).outputs_v for p in task.circuits]))
    np.savez(path, voltages=np.stack(volts), labels=ctx.y_all, n_train=ctx.n_train)


def _run(src: str, voltages: Path, out: Path, jobs: list, scale: float) -> None:
    env = {**os.environ, "PYTHONPATH": src, "OPENBLAS_NUM_THREADS": "1"}
    subprocess.run([sys.executable, __file__, "--fit-only", str(voltages), str(out), json.dumps(jobs), repr(scale)],
                   env=env, check=True)


def export_src(commit: str, into: Path) -> Path:
    """The ``src`` folder of ``commit`` of this repository, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit, "src"], capture_output=True)
    if archive.returncode:
        raise SystemExit(f"--reference-commit {commit}: git archive failed ({archive.stderr.decode().strip()}); "
                         "name a commit of this repository, e.g. one from `git log --oneline`")
    with tarfile.open(fileobj=__import__("io").BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def markdown_table(result: dict, labels_per_chip: int, n_chips: int) -> str:
    """The agreement table of docs/studies.md: per corrector, agreement, accuracy with its interval, loss, CPU."""
    lines = ["| corrector | equal predictions | reference vs itself moved by 1e-15 "
             f"| held-out accuracy, {n_chips} chips x {labels_per_chip} images (reference) | loss (reference) "
             "| CPU s (reference) |", "|---|---|---|---|---|---|"]
    for key, r in result["correctors"].items():
        name = f"h = {key.split('-h')[1]}" if key.startswith("mlp-h") else key
        low, high = r["accuracy_ci"]
        lines.append(f"| {name} | {r['agreement']:.1%} | {r['reference_self_agreement']:.1%} "
                     f"| {r['accuracy']:.1%} [{100 * low:.1f}, {100 * high:.1f}] ({r['accuracy_reference']:.1%}) "
                     f"| {r['loss']:.4f} ({r['loss_reference']:.4f}) | {r['cpu_s']:.2f} ({r['cpu_reference_s']:.2f}) |")
    lines += ["", f"All correctors: {result['cpu_s']:.1f} CPU-seconds against {result['cpu_reference_s']:.1f} s for the "
              f"reference ({result['cpu_reference_s'] / result['cpu_s']:.2f}x), measured in the same run; load average "
              f"{result['load_before']:.1f} before and {result['load_after']:.1f} after on {os.cpu_count()} cores."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Fit with this code and with the reference; print agreement per corrector and one JSON line."""
    from neurodtco.study.floor import gemm_rate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--reference", help="the reference version's src folder")
    source.add_argument("--reference-commit", help="a commit of this repository whose src is the reference")
    parser.add_argument("--write-docs", action="store_true",
                        help="publish the table into docs/studies.md (needs --reference-commit)")
    parser.add_argument("--study", default="demo")
    parser.add_argument("--tasks", type=int, default=2, help="defective tasks of the study to fit on")
    parser.add_argument("--hidden", type=int, nargs="*", default=None, help="hidden sizes (default: the study's)")
    args = parser.parse_args(argv)
    if args.write_docs and not args.reference_commit:
        parser.error("--write-docs needs --reference-commit, so that the published command names the reference")
    from neurodtco.stats import bootstrap_ci  # here: the --fit-only subprocess imports the reference's package
    os.environ.setdefault("NEURODTCO_CACHE", str(Path(__file__).resolve().parents[1] / ".neurodtco-cache"))
    this_src = str(Path(__import__("neurodtco").__file__).resolve().parents[1])
    jobs = _correctors(args.study, args.hidden)
    widest = max(h for _, h, _ in _correctors(args.study, None))  # the floor's GEMM shape, as in bench/study.py
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.reference_commit:
            args.reference = str(export_src(args.reference_commit, tmp / "reference"))
        _simulate(args.study, args.tasks, tmp / "v.npz")
        _run(this_src, tmp / "v.npz", tmp / "this.npz", jobs, 1.0)
        _run(args.reference, tmp / "v.npz", tmp / "ref.npz", jobs, 1.0)
        _run(args.reference, tmp / "v.npz", tmp / "ref_moved.npz", jobs, 1.0 + 1e-15)
        this, ref, moved = (np.load(tmp / f) for f in ("this.npz", "ref.npz", "ref_moved.npz"))
        data = np.load(tmp / "v.npz")
        labels = data["labels"][int(data["n_train"]):]
        # The floor's GEMM rate (neurodtco.study.floor), measured in this run: CPU seconds over the seconds
        # the fits' products take at it say how far each fit is from the speed of its arithmetic.
        rate = gemm_rate(int(data["n_train"]), data["voltages"].shape[-1], widest, jobs[0][2].get("dtype", "float64"))
        rows, pairs = {}, 0
        for name, h, _ in jobs:
            key = f"{name}-h{h}" if name == "mlp" else name
            p_this, p_ref, p_moved = this[f"{key}/pred"], ref[f"{key}/pred"], moved[f"{key}/pred"]
            rows[key] = {"agreement": float(np.mean(p_this == p_ref)),
                         "reference_self_agreement": float(np.mean(p_moved == p_ref)),
                         "accuracy": float(np.mean(p_this == labels)), "accuracy_reference": float(np.mean(p_ref == labels)),
                         # predictions are [tasks, chips, images]: the interval is over the chips
                         "accuracy_ci": list(bootstrap_ci(np.mean((p_this == labels).reshape(-1, len(labels)), axis=1))),
                         "loss": float(this[f"{key}/loss"].mean()), "loss_reference": float(ref[f"{key}/loss"].mean()),
                         "cpu_s": float(this[f"{key}/cpu"]), "cpu_reference_s": float(ref[f"{key}/cpu"]),
                         "speedup": float(ref[f"{key}/cpu"]) / float(this[f"{key}/cpu"]),
                         "floor_s": float(this[f"{key}/flops"]) / rate,
                         "floor_reference_s": float(ref[f"{key}/flops"]) / rate}
            pairs, n_chips = p_this.size, p_this.size // len(labels)
    total = {"agreement": float(np.mean([r["agreement"] for r in rows.values()])),
             "reference_self_agreement": float(np.mean([r["reference_self_agreement"] for r in rows.values()])),
             "cpu_s": sum(r["cpu_s"] for r in rows.values()),
             "cpu_reference_s": sum(r["cpu_reference_s"] for r in rows.values()),
             "floor_s": sum(r["floor_s"] for r in rows.values()), "gemm_flops_per_s": rate,
             "load_before": load_before[0], "load_after": os.getloadavg()[0]}
    print(f"{args.tasks} tasks of {args.study}, {pairs:,} (chip, test image) predictions per corrector; "
          f"load {'/'.join(f'{x:.1f}' for x in load_before)} -> {'/'.join(f'{x:.1f}' for x in os.getloadavg())}",
          file=sys.stderr)
    print(f"{'corrector':<10} {'agree':>7} {'ref vs ref+1e-15':>17} {'acc':>7} {'acc ref':>7} {'loss':>8} {'loss ref':>8} "
          f"{'CPU s':>7} {'ref CPU':>7} {'speed-up':>8} {'x floor':>8} {'ref x floor':>11}", file=sys.stderr)
    for key, r in rows.items():
        print(f"{key:<10} {r['agreement']:7.4f} {r['reference_self_agreement']:17.4f} {r['accuracy']:7.4f} "
              f"{r['accuracy_reference']:7.4f} {r['loss']:8.4f} {r['loss_reference']:8.4f} {r['cpu_s']:7.2f} "
              f"{r['cpu_reference_s']:7.2f} {r['speedup']:7.2f}x {r['cpu_s'] / r['floor_s']:8.1f} "
              f"{r['cpu_reference_s'] / r['floor_reference_s']:11.1f}", file=sys.stderr)
    print(f"floor: the fits' product flops at {rate / 1e9:.1f} GFLOP/s (GEMM of the fits' shape, this run)", file=sys.stderr)
    print(f"all: agreement {total['agreement']:.4f} (the reference with itself on moved voltages: "
          f"{total['reference_self_agreement']:.4f}); CPU {total['cpu_s']:.1f} s vs {total['cpu_reference_s']:.1f} s "
          f"= {total['cpu_reference_s'] / total['cpu_s']:.2f}x faster; {total['cpu_s'] / total['floor_s']:.1f}x the floor of "
          f"{total['floor_s']:.2f} s", file=sys.stderr)
    result = {"correctors": rows, **total}
    print(json.dumps(result))
    if args.write_docs:
        sys.path.insert(0, str(ROOT / "examples"))
        from _docblocks import publish

        command = f"python bench/fit_agreement.py --reference-commit {args.reference_commit} --study {args.study} " \
                  f"--tasks {args.tasks}" + (f" --hidden {' '.join(map(str, args.hidden))}" if args.hidden else "")
        publish("studies.md", "fit_agreement", markdown_table(result, len(labels), n_chips), command + " --write-docs")
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--fit-only":
        fit_all(Path(sys.argv[2]), Path(sys.argv[3]), [tuple(j) for j in json.loads(sys.argv[4])], float(sys.argv[5]))
    else:
        main()
