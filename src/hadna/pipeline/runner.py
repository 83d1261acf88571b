"""Run a pipeline: each stage writes into the run directory and is skipped once its output is complete.

Layout of ``runs/<name>/``::

    pipeline.json            stage status, wall time and throughput (rewritten after every stage)
    config.yaml              the pipeline config as run
    tasks/<task>/            built tasks: train.csv, test.csv, task.yaml (written last)
    teacher/                 teacher-train output (final/ = the teacher)
    students/<name>/         pretrain outputs (final/ = the student)
    benchmark/               hadna benchmark outputs (results.md, per-run JSON)
    tsne/                    tsne.png, tsne_coordinates.csv, tsne.json
    report.md                everything above in one page

An interrupted run resumes where it stopped: finished stages are skipped, an unfinished training stage
continues from its newest checkpoint, an unfinished benchmark from its last finished seed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from ..config import from_dict, to_dict
from ..errors import ConfigError
from ..utils.io import atomic_write_json, atomic_write_text
from ..utils.logging import get_logger
from .config import PipelineConfig, recipe_dict

log = get_logger("pipeline")

MODEL_PREFIX_STUDENT = "student:"
MODEL_TEACHER = "teacher"


class Pipeline:
    def __init__(self, cfg: PipelineConfig):
        cfg.validate()
        self.cfg = cfg
        self.single = cfg.single_recipe
        self.recipes: dict[str, Any] = {}       # stage name -> loaded recipe config
        self.state: dict[str, Any] = {"name": cfg.name, "stages": {}}

    # -- paths ----------------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        if self.single:
            cfg = next(iter(self.recipes.values()))
            return Path(cfg.train.output_dir)
        return self.cfg.run_dir

    def teacher_dir(self) -> Path:
        if self.cfg.teacher is not None and self.cfg.teacher.path:
            return Path(self.cfg.teacher.path)
        return self.run_dir / "teacher" / "final" if not self.single else self.run_dir / "final"

    def student_dir(self, name: str) -> Path:
        return (self.run_dir if self.single else self.run_dir / "students" / name) / "final"

    def task_yaml(self, name: str) -> Path:
        return self.run_dir / "tasks" / name / "task.yaml"

    def resolve_model(self, spec: str) -> str:
        """``NAME=student:X`` / ``teacher`` -> a path; everything else is passed through."""
        name, _, body = spec.rpartition("=")
        if body.startswith(MODEL_PREFIX_STUDENT):
            student = body[len(MODEL_PREFIX_STUDENT):]
            if student not in self.cfg.students:
                raise ConfigError(f"model {spec!r}: no student named {student!r} (students: "
                                  f"{', '.join(self.cfg.students) or 'none'})")
            body = str(self.student_dir(student))
            name = name or student
        elif body == MODEL_TEACHER:
            if self.cfg.teacher is None:
                raise ConfigError(f"model {spec!r}: the pipeline has no teacher")
            body = str(self.teacher_dir())
            name = name or "teacher"
        return f"{name}={body}" if name else body

    def resolve_task(self, name: str) -> str:
        return str(self.task_yaml(name)) if name in self.cfg.tasks else name

    # -- preparation: load every recipe config now, so mistakes surface before hours of training ---------
    def prepare(self) -> None:
        from ..train.config import recipe_config_class

        cfg = self.cfg
        if cfg.teacher is not None and not cfg.teacher.path:
            data = recipe_dict(cfg.teacher, cfg.base_dir)
            data.setdefault("recipe", "teacher-train")
            if not self.single:
                data.setdefault("train", {})["output_dir"] = str(cfg.run_dir / "teacher")
            elif cfg.output_dir:
                data.setdefault("train", {})["output_dir"] = cfg.output_dir
            self.recipes["teacher"] = self._load(_where("teacher", cfg.teacher), recipe_config_class("teacher-train"),
                                                 data)
        for name, ref in cfg.students.items():
            data = recipe_dict(ref, cfg.base_dir)
            data.setdefault("recipe", "pretrain")
            if self.single and cfg.output_dir:
                data.setdefault("train", {})["output_dir"] = cfg.output_dir
            if not self.single:
                data.setdefault("train", {})["output_dir"] = str(cfg.run_dir / "students" / name)
                mode = data.get("objective", {}).get("mode", "had")
                if cfg.teacher is not None and mode in ("had", "distillation") \
                        and not data.get("teacher", {}).get("cache"):
                    data.setdefault("teacher", {})["path"] = str(self.teacher_dir())
            self.recipes[f"student:{name}"] = self._load(_where(f"students.{name}", ref), recipe_config_class("pretrain"),
                                                         data)
        self._check_inputs()

    @staticmethod
    def _load(where: str, cls: type, data: dict[str, Any]):
        try:
            return from_dict(cls, data)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def _check_inputs(self) -> None:
        """Missing genomes / teachers fail now, in one line, naming what to get (before any training)."""
        from ..train.launch import check_inputs

        for key, rc in self.recipes.items():
            if key.startswith("student:"):
                trained_here = self.cfg.teacher is not None and not self.cfg.teacher.path
                need_teacher = rc.objective.uses_teacher and not trained_here
                check_inputs(rc, need_teacher=need_teacher)
            else:
                check_inputs(rc, need_teacher=False)  # teacher-train: its genome must exist

    # -- stages ----------------------------------------------------------------------------------------
    def _stage(self, name: str, done: Callable[[], bool], fn: Callable[[], dict[str, Any] | None]) -> None:
        entry = self.state["stages"].setdefault(name, {})
        if done():
            entry.setdefault("status", "done")
            if entry.get("status") != "done (earlier run)" and "seconds" not in entry:
                entry["status"] = "done (earlier run)"
            log.info("stage %s: already complete, skipped", name)
            self._save_state()
            return
        log.info("stage %s: running", name)
        entry.update(status="running", started=time.strftime("%Y-%m-%d %H:%M:%S"))
        self._save_state()
        start = time.perf_counter()
        info = fn() or {}
        entry.update(status="done", seconds=round(time.perf_counter() - start, 1), **info)
        self._save_state()

    def _save_state(self) -> None:
        atomic_write_json(self.run_dir / "pipeline.json", self.state)

    def _load_state(self) -> None:
        import json

        path = self.run_dir / "pipeline.json"
        if path.is_file():
            try:
                self.state = json.loads(path.read_text())
                self.state.setdefault("stages", {})
            except ValueError:
                log.warning("ignoring unreadable %s", path)

    def run(self) -> Path:
        import torch

        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        self.prepare()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._load_state()
        atomic_write_text(self.run_dir / "config.yaml",
                          yaml.safe_dump(to_dict(self.cfg), sort_keys=False))
        total = time.perf_counter()
        for name, build in self.cfg.tasks.items():
            self._stage(f"task:{name}", lambda n=name: self.task_yaml(n).is_file(),
                        lambda n=name, b=build: self.build_task(n, b))
        if "teacher" in self.recipes:
            self._stage("teacher-train", lambda: (self.teacher_dir() / "training_summary.json").is_file(),
                        self.train_teacher)
        for name in self.cfg.students:
            self._stage(f"pretrain:{name}", lambda n=name: (self.student_dir(n) / "training_summary.json").is_file(),
                        lambda n=name: self.pretrain(n))
        if self.cfg.benchmark:
            self._stage("benchmark", lambda: _done_with(self.run_dir / "benchmark" / "DONE.json", self._bench_settings()),
                        self.benchmark)
        if self.cfg.tsne:
            self._stage("tsne", lambda: (self.run_dir / "tsne" / "tsne.json").is_file()
                        and _done_with(self.run_dir / "tsne" / "DONE.json", self._tsne_settings()), self.tsne)
        self.state["last_invocation_s"] = round(time.perf_counter() - total, 1)
        self._save_state()
        from .report import write_pipeline_report

        report = write_pipeline_report(self)
        log.info("report: %s", report)
        return report

    def build_task(self, name: str, build) -> dict[str, Any]:
        from ..data.repeat_task import build_repeat_task
        from ..train.launch import resolve_path

        out = self.task_yaml(name).parent
        summary = build_repeat_task(resolve_path(build.fasta), out, window=build.window,
                                    test_fraction=build.test_fraction,
                                    min_repeat_fraction=build.min_repeat_fraction,
                                    max_nonrepeat_fraction=build.max_nonrepeat_fraction,
                                    max_per_class=build.max_per_class, seed=build.seed)
        spec = {"name": name, "num_classes": 2, "class_names": ["non_repeat", "repeat"], "max_length": build.window,
                "metric": "accuracy", "path": ".", "files": {"train": "train.csv", "test": "test.csv"},
                "description": (f"repeat (>= {build.min_repeat_fraction:.0%} soft-masked) vs non-repeat "
                                f"(<= {build.max_nonrepeat_fraction:.0%}) {build.window}-bp windows of "
                                f"{Path(build.fasta).name}; split by position"), **build.spec}
        atomic_write_json(out / "summary.json", summary.to_dict())
        atomic_write_text(out / "task.yaml", yaml.safe_dump(spec, sort_keys=False))
        return {"summary": summary.to_dict()}

    def train_teacher(self) -> dict[str, Any]:
        from ..train.teacher_train import run_teacher_train

        result = run_teacher_train(self.recipes["teacher"], resume=True)
        return {"steps": result.step, "throughput_nt_per_s": _nt_per_s(result)}

    def pretrain(self, name: str) -> dict[str, Any]:
        from ..train.pretrain import run_pretrain

        result = run_pretrain(self.recipes[f"student:{name}"], resume=True)
        return {"steps": result.step, "throughput_nt_per_s": _nt_per_s(result)}

    def _bench_settings(self) -> dict[str, Any]:
        return _plain(self.cfg.benchmark or {})

    def _tsne_settings(self) -> dict[str, Any]:
        return _plain(to_dict(self.cfg.tsne)) if self.cfg.tsne else {}

    def benchmark_config(self):
        from ..eval.runner import BenchmarkConfig

        b = dict(self.cfg.benchmark or {})
        b["tasks"] = [self.resolve_task(t) for t in b.get("tasks", [])]
        b["models"] = [self.resolve_model(m) for m in b.get("models", [])]
        b["output_dir"] = str(self.run_dir / "benchmark")
        b.setdefault("data_dir", self.cfg.data_dir)
        b.setdefault("published", self.cfg.published)
        return from_dict(BenchmarkConfig, b, "benchmark")

    def benchmark(self) -> dict[str, Any]:
        from ..eval.runner import run_benchmark

        records, md = run_benchmark(self.benchmark_config())
        atomic_write_json(self.run_dir / "benchmark" / "DONE.json", {"results": str(md), "settings": self._bench_settings()})
        return {"runs": len(records), "results": str(md.relative_to(self.run_dir))}

    def tsne(self) -> dict[str, Any]:
        from ..eval.loaders import load_task
        from ..eval.models import parse_model_spec
        from ..utils.device import resolve_device
        from ..eval.runner import resolve_task
        from ..eval.tsne import tsne_of_models

        t = self.cfg.tsne
        specs = [parse_model_spec(self.resolve_model(m)) for m in t.models]
        data = load_task(resolve_task(self.resolve_task(t.task)), self.cfg.data_dir)
        summary = tsne_of_models(specs, data, self.run_dir / "tsne", split=t.split, max_samples=t.max_samples,
                                 seed=t.seed, batch_size=t.batch_size, device=resolve_device("auto"))
        atomic_write_json(self.run_dir / "tsne" / "DONE.json", {"settings": self._tsne_settings()})
        return {"silhouettes": {p["model"]: {"2d": p["silhouette_2d"], "raw": p["silhouette_raw"]}
                                for p in summary["panels"]}}


def _plain(settings: Any) -> Any:
    """Settings as JSON would store them, so that recorded and current ones compare equal."""
    return json.loads(json.dumps(settings, default=str))


def _done_with(marker: Path, settings: dict[str, Any]) -> bool:
    """A stage is complete when its marker exists and records the settings it ran with: after the config's
    benchmark or t-SNE section changes (a model added, say), the stage runs again, and the benchmark then
    only runs what is missing, since finished seeds are kept."""
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text()).get("settings")
    except (ValueError, AttributeError):
        return False
    if recorded != settings:
        log.info("%s: the stage's settings changed since it ran; running it again", marker.parent.name)
        return False
    return True


def _nt_per_s(result) -> float | None:
    m = getattr(result, "metrics", None) or {}
    return round(m["nt_per_s"], 1) if "nt_per_s" in m else None


def _where(stage: str, ref: Any) -> str:
    """A stage named for errors: with the recipe file and the overrides it applies, where it has them."""
    parts = ([str(ref.config)] if ref.config else []) + ([f"set {' '.join(ref.set)}"] if ref.set else [])
    return f"{stage} ({', '.join(parts)})" if parts else stage


def run_pipeline(cfg: PipelineConfig) -> Path:
    """Run (or resume) every stage and write the report; returns the report's path."""
    return Pipeline(cfg).run()
