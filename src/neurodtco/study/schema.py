"""The study file: one declarative description of a sweep, validated by pydantic.

A study states what to build (dataset, network, circuit), how to simulate it (engine), what to
break (the defect grid and the generic ``imperfections`` list), what to fit (correctors) and the
seeds. Everything that changes a result lives here, so the study's hash identifies the results;
how the study is executed (local processes, a Dask cluster, how many workers) does not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model, field_validator,
                      model_validator)
import torch

from ..data import Dataset, load_digits, load_fashion_mnist, split_validation
from ..defects import KINDS, PATTERNS
from ..engines import engine_names
from ..imperfections import Imperfections, parse_imperfections
from ..mapping import MappingConfig
from ..network import NetworkConfig, make_config
from ..yamlfile import load_yaml
from .wafer_schema import WaferSpec

BASELINES = ("affine", "logistic", "lastlayer")
BUILTIN_STUDIES = ("demo", "quick", "fashion-cnn", "reviewed", "yield")


class _Strict(BaseModel):
    """Refuse unknown keys (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Strict):
    """Which images, and how they are split into training, validation and test parts.

    Training images fit the network and the correctors; validation images make every choice the
    report makes (which corrector, which circuit to show); test images only report.
    """

    name: Literal["digits", "fashion-mnist"] = "digits"
    seed: int = Field(0, description="Seed of the stratified splits (digits: train/test and the validation part; "
                      "fashion-mnist: the validation part carved from the 60,000 training images).")
    n_test: int = Field(180, ge=10, description="digits only: held-out test images (the rest train the correctors). "
                        "fashion-mnist always uses its official 10,000 test images.")
    n_validation: Optional[int] = Field(
        None, ge=10, description="Validation images held out of the training part, stratified and seeded, before "
        "the network trains (default: 180 for digits, 5,000 for fashion-mnist).")
    n_train: Optional[int] = Field(None, ge=10, description="Training images the correctors are fitted on (the "
                                   "first N of the training part; default all).")

    @property
    def validation_size(self) -> int:
        """Validation images held out of training (the dataset's default when not set)."""
        if self.n_validation is not None:
            return self.n_validation
        return 180 if self.name == "digits" else 5000

    def load(self) -> Dataset:
        """The dataset these settings describe, whole (the network trains on all of its training part)."""
        if self.name == "digits":
            data = split_validation(load_digits(seed=self.seed, n_test=self.n_test), self.validation_size, self.seed)
            # The name keys the network cache: a network trained before the validation part was held out
            # (on those images too) must not be taken for this one.
            return dataclasses.replace(data, name=f"digits-val{self.validation_size}")
        return load_fashion_mnist(n_validation=self.validation_size, seed=self.seed)

    def for_correctors(self, data: Dataset) -> Dataset:
        """The images every circuit is read on: the first ``n_train`` training images (all by default) and the test set."""
        if self.n_train is None or self.n_train >= len(data.y_train):
            return data
        return dataclasses.replace(data, x_train=data.x_train[:self.n_train], y_train=data.y_train[:self.n_train])


def _dataclass_fields_model(name: str, cls: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Pydantic field definitions mirroring a frozen dataclass, so the two never drift apart."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else ...
        fields[f.name] = (hints[f.name], default)
    return fields


_NetworkBase = create_model(  # type: ignore[call-overload]
    "_NetworkBase", __base__=_Strict, **_dataclass_fields_model("network", NetworkConfig))


class NetworkSpec(_NetworkBase):  # type: ignore[misc, valid-type]
    """The network to map: the fields of ``NetworkConfig`` (trained and cached), or a ``model`` file."""

    model: Optional[str] = Field(None, description="A file from `neurodtco train`, relative to the study file.")
    seeds: Optional[list[int]] = Field(
        None, min_length=1, description="Several training seeds, each its own network with the whole grid "
        "(results keyed by network_seed); replaces seed. Intervals of aggregates then bootstrap over them.")
    arch: Optional[str] = Field(None, description="An architecture instead of widths (cnn, resnet-mini, "
                                "mlp:784-256-128-10), trained with its own recipe and cached; epochs and seed apply "
                                "when given.")

    @property
    def network_seeds(self) -> list[int]:
        """The training seeds of the study's networks (``seeds``, else the one ``seed``)."""
        return list(self.seeds) if self.seeds is not None else [self.seed]

    def arch_config(self, dataset: Dataset, seed: Optional[int] = None) -> Any:
        """The training recipe ``arch`` names for ``dataset`` (epochs only when the study sets them)."""
        epochs = self.epochs if "epochs" in self.model_fields_set else None
        return make_config(self.arch, dataset, epochs=epochs, seed=self.seed if seed is None else seed)

    @model_validator(mode="after")
    def _check(self) -> "NetworkSpec":
        if self.seeds is not None:
            if len(set(self.seeds)) != len(self.seeds):
                raise ValueError(f"seeds {self.seeds} lists a seed twice")
            if self.model is not None:
                raise ValueError("seeds trains one network per seed; a model file is one trained network: "
                                 "drop seeds, or drop model and give widths or arch")
        self.to_config()
        return self

    def to_config(self, seed: Optional[int] = None) -> NetworkConfig:
        """The ``NetworkConfig`` these settings describe (with another training ``seed`` when given)."""
        values = self.model_dump(exclude={"model", "arch", "seeds"})
        if seed is not None:
            values["seed"] = seed
        return NetworkConfig(**{**values, "widths": tuple(values["widths"])})


_CircuitBase = create_model(  # type: ignore[call-overload]
    "_CircuitBase", __base__=_Strict, **_dataclass_fields_model("circuit", MappingConfig))


class CircuitSpec(_CircuitBase):  # type: ignore[misc, valid-type]
    """Circuit and device parameters: exactly the fields of ``MappingConfig`` (SI units)."""

    @model_validator(mode="after")
    def _check(self) -> "CircuitSpec":
        self.to_config()  # MappingConfig's own checks name the bad value and the accepted range
        return self

    def to_config(self) -> MappingConfig:
        """The ``MappingConfig`` these settings describe."""
        return MappingConfig(**self.model_dump())


class DefectGrid(_Strict):
    """The defect grid: every pattern x kind x array x severity x instance is one defective circuit."""

    patterns: list[str] = Field(default_factory=lambda: ["random"], min_length=1)
    kinds: list[Literal[KINDS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["on", "off"], min_length=1)
    arrays: Union[Literal["all"], list[int]] = Field(
        "all", description="Layer indices (from 0) hit one at a time, or 'all' for each layer of the network.")
    severities: list[float] = Field(
        default_factory=lambda: [0.001, 0.01, 0.1], min_length=1,
        description="Target defect densities (fraction of the array's cells); the default spans the physical "
        "range, 0.1 % to 10 % (docs/defects.md: measured stuck-cell rates).")
    instances: int = Field(1, ge=1, description="Independently seeded circuits per grid point.")
    random_position: bool = Field(
        True, description="Move instances after the first (defects.instances: a seeded random centre for "
        "circular, ring, ...; the next phase for checkerboard), so that instances differ; instance 0 stays "
        "at the pattern's default position.")
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Extra parameters per pattern or kind name, passed to the Defect.")
    include_healthy: bool = Field(True, description="Also run the undamaged circuit (the reference).")

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        known = tuple(PATTERNS)
        for p in value:
            if p not in known:
                raise ValueError(f"unknown pattern {p!r}; choose from {', '.join(known)}")
        if len(set(value)) != len(value):
            raise ValueError(f"patterns {value} lists a pattern twice")
        return value

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"kinds {value} lists a kind twice")
        return value

    @field_validator("severities")
    @classmethod
    def _severities(cls, value: list[float]) -> list[float]:
        for s in value:
            if not (isinstance(s, (int, float)) and 0.0 < s <= 1.0):
                raise ValueError(f"severity {s!r} is not accepted: expected a defect density in (0, 1]")
        if len(set(value)) != len(value):
            raise ValueError(f"severities {value} lists a value twice")
        return sorted(value)

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        known = set(PATTERNS) | set(KINDS)
        for key in value:
            if key not in known:
                raise ValueError(f"params key {key!r} is neither a pattern nor a kind; choose from {', '.join(sorted(known))}")
        return value


class CorrectorSpec(_Strict):
    """Correctors fitted on every circuit: corrective MLPs (10 -> h -> 10, batched) and baselines."""

    hidden: list[int] = Field(default_factory=lambda: [8], description="Hidden sizes h of the corrective MLPs.")
    baselines: list[Literal["affine", "logistic", "lastlayer"]] = Field(
        default_factory=list, description="affine (20 parameters), logistic (110), lastlayer (the last array retrained).")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="Extra keyword arguments for BatchedMLPCorrector (e.g. epochs).")

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "device" in value:
            raise ValueError(f"correctors.options: device={value['device']!r} belongs at the top level of the study "
                             f"(device: {value['device']}), where it covers every corrector fit")
        return value

    @field_validator("hidden")
    @classmethod
    def _hidden(cls, value: list[int]) -> list[int]:
        for h in value:
            if h < 1:
                raise ValueError(f"hidden size {h} is not accepted: expected integers >= 1, e.g. [1, 2, 4, 8]")
        if len(set(value)) != len(value):
            raise ValueError(f"hidden sizes {value} list a size twice")
        return value


class CrossDefectSpec(_Strict):
    """The cross-defect matrix: a corrector trained on a chip with pattern A, tested on one with B."""

    enabled: bool = False
    hidden: int = Field(8, ge=1, description="Hidden size of the corrector used for the matrix.")
    mixture: bool = Field(True, description="Also train on the pooled chips of every pattern (the 'mixture' row).")
    severities: Optional[list[float]] = Field(
        None, description="Densities of the grid to cross (default: all); low densities leave little to correct.")


class SeedSpec(_Strict):
    """Base seeds; every circuit and corrector derives its own seed from these and its grid position."""

    defects: int = 0
    correctors: int = 0
    imperfections: int = 0


class TaskSpec(_Strict):
    """How the grid is cut into tasks (a task batches its circuits' corrector fits)."""

    max_circuits: int = Field(12, ge=1, le=4096,
                              description="At most this many circuits per task (one pattern, kind and array).")


class OutputSpec(_Strict):
    """What the store keeps beside the tables."""

    save_voltages: bool = Field(True, description="Keep every circuit's output voltages (float32) for the "
                                "cross-defect matrix and the report's voltage histograms.")


class Study(_Strict):
    """A whole study file."""

    name: str = Field("study", min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    dataset: DatasetSpec = DatasetSpec()
    network: NetworkSpec = Field(default_factory=lambda: NetworkSpec())
    circuit: CircuitSpec = Field(default_factory=lambda: CircuitSpec())
    engine: str = "nodal"
    engine_options: dict[str, Any] = Field(default_factory=dict)
    device: str = Field("cpu", description="Torch device of the corrector fits: 'cpu', or e.g. 'cuda' on a GPU worker.")
    defects: Optional[DefectGrid] = Field(
        DefectGrid(), description="The defect grid; null for a study of wafers alone (then a wafer section is needed).")
    wafer: Optional[WaferSpec] = Field(None, description="Wafers of dies drawn from a defect field, judged for yield "
                                       "(docs/yield.md); beside the grid, or instead of it with defects: null.")
    imperfections: list[dict[str, Any]] = Field(
        default_factory=list, description="Generic imperfection specs for neurodtco.imperfections.apply_imperfections.")
    # The typed items of ``imperfections``; the field keeps the plain dicts, so the canonical form and hash do not move.
    _imperfection_items: Imperfections = PrivateAttr(default_factory=Imperfections)
    correctors: CorrectorSpec = CorrectorSpec()
    cross_defect: CrossDefectSpec = CrossDefectSpec()
    seeds: SeedSpec = SeedSpec()
    tasks: TaskSpec = TaskSpec()
    outputs: OutputSpec = OutputSpec()

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        if value not in engine_names():
            raise ValueError(f"unknown engine {value!r}; choose one of {', '.join(engine_names())}")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        try:
            torch.device(value)
        except (TypeError, RuntimeError) as exc:
            raise ValueError(f"device {value!r} is not a torch device name: expected e.g. 'cpu', 'cuda' or 'cuda:1' "
                             f"({exc})") from None
        return value

    @field_validator("imperfections")
    @classmethod
    def _imperfections(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        parse_imperfections(value)  # its ValueError names the item, the bad key and what is accepted
        return value

    @model_validator(mode="after")
    def _typed_imperfections(self) -> "Study":
        self._imperfection_items = parse_imperfections(self.imperfections)
        return self

    @property
    def imperfection_items(self) -> Imperfections:
        """The ``imperfections`` list as typed items (``read_noise`` is the model to simulate with)."""
        return self._imperfection_items

    @model_validator(mode="after")
    def _cross_checks(self) -> "Study":
        n_layers = len(self.network.widths) - 1
        if self.wafer is not None and self.imperfections:
            raise ValueError("wafer: the dies are drawn on the programmed circuit; imperfections are not applied to "
                             "them: drop the imperfections list, or study them in a separate study")
        if self.wafer is not None and self.network.seeds is not None:
            raise ValueError("wafer: the dies are drawn for one network; network.seeds lists several: give seed")
        if self.defects is None:
            if self.wafer is None:
                raise ValueError("defects: null leaves nothing to study: give a defects grid, a wafer section, or both")
            if self.cross_defect.enabled:
                raise ValueError("cross_defect.enabled crosses the patterns of the defects grid: give one, or disable it")
            return self
        if self.defects.arrays != "all":
            for a in self.defects.arrays:
                if not 0 <= a < n_layers:
                    raise ValueError(f"defects.arrays: layer {a} does not exist; the network has arrays 0..{n_layers - 1}")
            if len(set(self.defects.arrays)) != len(self.defects.arrays):
                raise ValueError(f"defects.arrays {self.defects.arrays} lists an array twice")
        if self.cross_defect.enabled:
            if not self.outputs.save_voltages:
                raise ValueError("cross_defect.enabled needs outputs.save_voltages: true (the matrix reads the stored voltages)")
            if len(self.defects.patterns) < 2:
                raise ValueError("cross_defect.enabled needs at least 2 defects.patterns to cross")
            for sev in self.cross_defect.severities or []:
                if sev not in self.defects.severities:
                    raise ValueError(f"cross_defect.severities: {sev} is not one of defects.severities "
                                     f"{self.defects.severities}")
        return self

    @property
    def arrays(self) -> list[int]:
        """The layer indices the grid hits (none without a grid)."""
        if self.defects is None:
            return []
        if self.defects.arrays == "all":
            return list(range(len(self.network.widths) - 1))
        return list(self.defects.arrays)

    @property
    def n_circuits(self) -> int:
        """Defective circuits in the grid (the healthy reference not counted)."""
        d = self.defects
        if d is None:
            return 0
        return (len(d.patterns) * len(d.kinds) * len(self.arrays) * len(d.severities) * d.instances
                * len(self.network.network_seeds))

    def canonical(self) -> dict[str, Any]:
        """The fully resolved study (every default filled in) as plain JSON data."""
        data = self.model_dump(mode="json")
        if data["device"] == "cpu":
            del data["device"]  # stores written before the key existed keep their hash
        if data["wafer"] is None:
            del data["wafer"]  # likewise for studies without wafers
        return json.loads(json.dumps(data, sort_keys=True))

    def hash(self) -> str:
        """SHA-256 of the resolved study: equal hashes mean equal results."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


class StudyFileError(ValueError):
    """A study file that cannot be read or does not validate (the message lists every problem)."""


def _accepted_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> Optional[list[str]]:
    """The keys accepted at ``loc`` (for an unknown key), by walking the model's fields."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        # An optional section (``Optional[WaferSpec]``) accepts the keys of the model inside it.
        inner = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = inner[0] if len(inner) == 1 else annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return None


#: pydantic error types of a field that expects a boolean (a boolean there is no quoting mistake)
_BOOL_ERRORS = ("bool_type", "bool_parsing")


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: the dotted key, what is wrong, and what is accepted."""
    lines = []
    for e in exc.errors():
        loc = tuple(p for p in e["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            accepted = _accepted_keys(Study, loc[:-1])
            msg = f"unknown key {str(loc[-1])!r}" + (f"; accepted keys: {', '.join(accepted)}" if accepted else "")
        elif e["type"] == "missing":
            msg = "is required"
        elif "input" in e and e["type"] not in ("value_error", "assertion_error") and not isinstance(e["input"], dict):
            msg = f"{e['input']!r}: {msg}"
            if isinstance(e["input"], bool) and e["type"] not in _BOOL_ERRORS:
                msg += ("; a boolean where text is expected: put the value in quotes (YAML reads a bare "
                        "true/false, and many YAML readers also on/off/yes/no, as a boolean)")
        lines.append(f"  {key}: {msg}")
    return f"{source} is not a valid study file:\n" + "\n".join(lines)


def read_study_yaml(text: str) -> Any:
    """Parse study YAML: like ``yaml.safe_load``, except that on/off/yes/no stay strings."""
    return load_yaml(text)


def _what_a_study_needs() -> str:
    return (f"a study file is a mapping of settings (name, dataset, network, circuit, engine, defects, correctors, "
            f"...); start from a built-in study ({', '.join(BUILTIN_STUDIES)}: `neurodtco run demo --out DIR`, files "
            f"in {builtin_study_path('demo').parent}) or see docs/studies.md")


def _read_mapping(path: Path) -> dict[str, Any]:
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml", ".json"):
            data = read_study_yaml(text)
        else:
            raise StudyFileError(f"{str(path)!r}: unknown study file type {suffix!r}; use .yaml, .yml, .toml or .json")
    except StudyFileError:
        raise
    except Exception as exc:  # yaml and tomllib raise their own error types
        raise StudyFileError(f"{str(path)!r} cannot be parsed: {exc}") from exc
    # An empty file would otherwise run the default study, which is never what its author meant.
    if data is None or data == {}:
        raise StudyFileError(f"{str(path)!r} is empty: {_what_a_study_needs()}")
    if not isinstance(data, dict):
        raise StudyFileError(f"{str(path)!r} holds a {type(data).__name__} at its top level, not a mapping of keys: "
                             f"{_what_a_study_needs()}")
    return data


def builtin_study_path(name: str) -> Path:
    """Path of a study shipped with the package (``demo``, ``quick``)."""
    if name not in BUILTIN_STUDIES:
        raise ValueError(f"unknown built-in study {name!r}; choose one of {', '.join(BUILTIN_STUDIES)}")
    return Path(__file__).resolve().parents[1] / "studies" / f"{name}.yaml"


def parse_study(data: dict[str, Any], source: str = "study", base_dir: Optional[Path] = None) -> Study:
    """Validate a study given as a mapping; relative model paths resolve against ``base_dir``."""
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        raise StudyFileError(format_validation_error(exc, source)) from None
    if study.network.model is not None and base_dir is not None:
        model = Path(study.network.model)
        if not model.is_absolute():
            model = (base_dir / model).resolve()
        study = study.model_copy(update={"network": study.network.model_copy(update={"model": str(model)})})
    return study


def load_study(path: Union[str, Path]) -> Study:
    """Read and validate a study file (YAML, TOML or JSON), or a built-in study by name."""
    if isinstance(path, str) and path in BUILTIN_STUDIES and not Path(path).exists():
        path = builtin_study_path(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study file {str(path)!r} does not exist (built-in studies: {', '.join(BUILTIN_STUDIES)})")
    return parse_study(_read_mapping(path), source=str(path), base_dir=path.parent)

