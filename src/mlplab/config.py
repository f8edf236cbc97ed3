"""Typed configuration for a run: data, model and training, validated once at the boundary.

Every way into mlplab (the CLI, a TOML file, the Python API, the scikit-learn estimators) builds a
:class:`Config` and calls :meth:`Config.validate` before any work starts, so a bad value is reported
once, naming the setting and what is allowed, and nothing is half-written.

Validation is declarative: each field carries a rule in its metadata (``rule=...``), read by one loop.
This module imports no torch, so ``mlplab --help`` stays fast.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ACTIVATION_NAMES", "Config", "ConfigError", "DataConfig", "MlplabError", "ModelConfig", "TrainingConfig",
           "load_config"]


class MlplabError(Exception):
    """A problem the user can fix (bad value, missing file, corrupt checkpoint). The CLI prints it as
    one line and exits with status 2."""


class ConfigError(MlplabError, ValueError):
    """A configuration value is not allowed. ``key`` is its dotted name, e.g. ``training.learning_rate``."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{key} {problem}")


# --- rules: each returns None when the value is fine, else what is wrong ("must be > 0") -------------

Rule = Callable[[Any], "str | None"]


def shown(value: Any) -> str:
    """``repr`` for messages, with NumPy scalars shown as the plain numbers they hold (``1``, not
    ``np.int64(1)``) and containers shown item by item."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item() if getattr(value, "ndim", 0) == 0 else value.tolist()
    if isinstance(value, (list, tuple)):
        inner = ", ".join(shown(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    return repr(value)


def exact(value: float) -> str:
    """A bound or value as written: whole numbers in full (``4294967295``, not ``4.29497e+09``)."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**63):
        return str(int(value))
    return repr(float(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False, integer: bool = False, optional: bool = False) -> Rule:
    """A number in [low, high] (ends opened by ``low_open``/``high_open``); ``optional`` allows None."""
    kind = "a whole number" if integer else "a number"
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {exact(low)}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {exact(high)}")
    wanted = f"must be {kind}" + (f" {' and '.join(bounds)}" if bounds else "")

    def check(value: Any) -> str | None:
        if value is None:
            return None if optional else f"{wanted}, got nothing"
        if not _is_number(value) or (integer and not float(value).is_integer()):
            return f"{wanted}, got {shown(value)}"
        if not math.isfinite(value):
            return f"{wanted}, got {value}"
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        return f"{wanted}, got {exact(value)}" if too_low or too_high else None

    return check


def one_of(*choices: Any, optional: bool = False) -> Rule:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if value not in choices:
            return f"must be one of {', '.join(map(str, choices))}; got {shown(value)}"
        return None

    check.choices = choices  # type: ignore[attr-defined]  # read by `mlplab train --help`
    return check


def sizes() -> Rule:
    """A non-empty list of positive whole numbers (hidden layer sizes); an empty list means no hidden layer."""

    def check(value: Any) -> str | None:
        if not isinstance(value, (list, tuple)):
            return f"must be a list of layer sizes, got {shown(value)}"
        for size in value:
            if not _is_number(size) or not float(size).is_integer() or size < 1:
                return f"must be whole numbers >= 1 (one per hidden layer), got {shown(size)}"
        return None

    return check


def text(optional: bool = True) -> Rule:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        return None if isinstance(value, str) and value else f"must be a non-empty string, got {shown(value)}"

    return check


def names() -> Rule:
    def check(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
            return f"must be a non-empty list of column names, got {shown(value)}"
        return None

    return check


# An input feature is a raw column or a term built from one or two: ``x1``, ``x1^2``, ``x1*x2``,
# ``sin(x1)`` (TensorFlow Playground's toggles, for any numeric columns).
_NAME = r"\s*([^()*^]+?)\s*"
INPUT_FEATURE_FORMS = {"square": re.compile(rf"^{_NAME}\^\s*2\s*$"), "product": re.compile(rf"^{_NAME}\*{_NAME}$"),
                       "sin": re.compile(rf"^\s*sin\({_NAME}\)\s*$"), "column": re.compile(rf"^{_NAME}$")}


def parse_input_feature(term: str) -> tuple[str, tuple[str, ...]] | None:
    """``"x1*x2"`` -> ``("product", ("x1", "x2"))``; None when the term has none of the four forms."""
    for kind, pattern in INPUT_FEATURE_FORMS.items():
        match = pattern.match(term) if isinstance(term, str) else None
        if match:
            return kind, match.groups()
    return None


def canonical_input_feature(term: str) -> str:
    """One spelling per term (spaces dropped around operators): ``"x1 * x2"`` -> ``"x1*x2"``."""
    kind, names = parse_input_feature(term)
    return {"square": "{}^2", "product": "{}*{}", "sin": "sin({})", "column": "{}"}[kind].format(*names)


def input_features() -> Rule:
    def check(value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or not value:
            return f"must be a non-empty list of input features (e.g. x1, x2, x1^2, x1*x2, sin(x1)), got {value!r}"
        for term in value:
            if parse_input_feature(term) is None:
                return (f"must be columns or terms of the forms NAME, NAME^2, NAME*NAME or sin(NAME) "
                        f"(e.g. x1, x1^2, x1*x2, sin(x1)); got {term!r}")
        spelled = [canonical_input_feature(term) for term in value]
        repeated = sorted({term for term in spelled if spelled.count(term) > 1})
        return f"lists {', '.join(repeated)} more than once" if repeated else None

    return check


def flag() -> Rule:
    return lambda value: None if isinstance(value, bool) else f"must be true or false, got {shown(value)}"


def _field(default: Any, rule: Rule, doc: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"rule": rule, "doc": doc})
    return field(default=default, metadata={"rule": rule, "doc": doc})


# --- the three sections ----------------------------------------------------------------------------

DATASETS = ("xor-blobs", "blobs", "moons", "circles", "spiral", "xor", "gaussian-quantiles", "linear")
DATASETS_WITH_CLASSES = ("blobs", "spiral", "gaussian-quantiles")  # the generators --classes applies to
TASKS = ("auto", "binary", "multiclass", "regression")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "step", "cosine", "plateau")
INITS = ("default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal")
# The hidden activations, by name. Listed here (not read from model.ACTIVATIONS) so validating a config
# needs no torch; model.ACTIVATIONS and backprop.ACTIVATION_FUNCTIONS have exactly these keys (a test pins it).
ACTIVATION_NAMES = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh", "sigmoid", "softplus", "identity")


@dataclass
class DataConfig:
    dataset: str = _field("xor-blobs", one_of(*DATASETS), "built-in data set (ignored when path is set)")
    path: str | None = _field(None, text(), "CSV, Parquet or .npz file with your own data")
    target: str | None = _field(None, text(), "target column of the data file")
    features: list[str] | None = _field(None, names(), "feature columns (default: all but the target)")
    test_path: str | None = _field(None, text(), "separate test file (default: split off test_fraction)")
    n_train: int = _field(80, number(1, integer=True), "generated training points")
    n_test: int = _field(20, number(1, integer=True), "generated test points")
    noise: float | None = _field(None, number(0, optional=True), "generator noise (default: the data set's)")
    n_classes: int | None = _field(None, number(2, integer=True, optional=True),
                                   "classes of blobs/gaussian-quantiles, arms of spiral")
    test_fraction: float = _field(0.2, number(0, 1, low_open=True, high_open=True),
                                  "share of a data file held out for testing")
    val_fraction: float = _field(0.0, number(0, 1, high_open=True), "share of training data for validation")
    input_features: list[str] | None = _field(
        None, input_features(), "the network's inputs, computed from the feature columns: NAME, NAME^2, NAME*NAME, "
                                "sin(NAME), e.g. x1, x2, x1^2, x1*x2, sin(x1) (default: the feature columns)")
    scale: str = _field("none", one_of("none", "standard", "minmax"), "feature scaling, fitted on train only")
    scale_target: bool = _field(False, flag(), "regression: standardise the target for training (predictions "
                                               "come back in its units)")
    unknown_categories: str = _field("error", one_of("error", "ignore"),
                                     "a category unseen in training at predict: error, or all-zero one-hot")
    impute: str = _field("median", one_of("median", "mean", "none"),
                         "missing feature values: the training median/mean (text: a '(missing)' category), "
                         "or none to refuse them")
    categorical: list[str] | None = _field(None, names(), "columns read as text (one-hot) even if numbers")
    numeric: list[str] | None = _field(None, names(), "columns that must be numbers (a stray word is an error)")
    drop: list[str] | None = _field(None, names(), "columns left out of the features (IDs, free text)")
    encoding: str = _field("utf-8", text(optional=False), "text encoding of CSV files, e.g. latin-1")


@dataclass
class ModelConfig:
    hidden_sizes: list[int] = _field([5], sizes(), "units per hidden layer")
    activation: str = _field("relu", one_of(*ACTIVATION_NAMES), "hidden activation")
    dropout: float = _field(0.0, number(0, 1, high_open=True), "dropout after each hidden activation")
    init: str = _field("default", one_of(*INITS), "weight initialisation (default: PyTorch's)")
    task: str = _field("auto", one_of(*TASKS), "binary, multiclass or regression (auto: from the target)")
    dtype: str = _field("float32", one_of("float32", "float64"), "precision of weights and arithmetic")


@dataclass
class TrainingConfig:
    optimizer: str = _field("sgd", one_of(*OPTIMIZERS), "optimiser")
    learning_rate: float = _field(0.03, number(0, low_open=True), "learning rate")
    momentum: float = _field(0.0, number(0, 1, high_open=True), "SGD/RMSprop momentum")
    nesterov: bool = _field(False, flag(), "Nesterov momentum (SGD)")
    weight_decay: float = _field(0.0, number(0), "L2 penalty (decoupled for adamw)")
    l1: float = _field(0.0, number(0), "L1 penalty on weights")
    epochs: int = _field(2000, number(1, integer=True), "passes over the training data")
    batch_size: int | None = _field(None, number(1, integer=True, optional=True),
                                    "mini-batch size (default: full batch)")
    schedule: str = _field("none", one_of(*SCHEDULES), "learning-rate schedule")
    step_size: int = _field(100, number(1, integer=True), "epochs between decays (step schedule)")
    gamma: float = _field(0.1, number(0, 1, low_open=True, high_open=True), "decay factor (step, plateau)")
    clip_grad: float | None = _field(None, number(0, low_open=True, optional=True), "max gradient norm")
    early_stopping: bool = _field(False, flag(), "stop when validation loss stops improving")
    patience: int = _field(20, number(1, integer=True), "epochs without improvement before stopping")
    log_every: int = _field(100, number(1, integer=True), "print the loss every N epochs")
    checkpoint_every: int = _field(0, number(0, integer=True), "save a resumable checkpoint every N epochs")
    snapshot_every: int = _field(0, number(0, integer=True), "record weights every N epochs (animations)")
    device: str = _field("cpu", one_of("auto", "cpu", "cuda", "mps"), "where to train")
    fast_path: bool = _field(True, flag(), "train tiny networks (SGD, Adam, AdamW) with the hand-derived NumPy step")
    threads: int = _field(0, number(0, integer=True), "CPU threads (0: chosen by the work of a step)")


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig}

# The defaults for a user's own data file (data.path set), chosen by benchmarks/defaults.py over nine
# data sets against MLPClassifier/MLPRegressor (the README's table; the 0.2 validation split and weight
# decay 1e-3 were picked on other splits, seeds 100-104 and 200-209, than the table's 0-4). The
# dataclass defaults are the tutorial's, right for its 80 points of 2-D blobs and nothing else: on real
# tables plain SGD at lr 0.03 on unscaled features collapses to the majority class. Any setting given
# (flag, TOML, dict) wins.
FILE_DATA_DEFAULTS: dict[str, Any] = {
    "data.scale": "standard",
    "data.scale_target": True,
    "data.val_fraction": 0.2,  # 0.1 left 11-33 rows on iris/diabetes: early stopping chased their noise
    "model.hidden_sizes": [128, 64],
    "training.optimizer": "adam",
    "training.learning_rate": 0.001,
    "training.weight_decay": 0.001,
    "training.batch_size": 64,
    "training.epochs": 300,
    "training.early_stopping": True,
    "training.patience": 20,
}


@dataclass
class Config:
    """Everything a run needs. ``Config()`` is the tutorial: xor-blobs, 2-5-1 ReLU/sigmoid, SGD lr 0.03,
    2000 full-batch epochs.

    Examples
    --------
    >>> from mlplab import Config
    >>> config = Config.from_dict({"seed": 1, "model": {"hidden_sizes": [8, 8]}})
    >>> config.model.hidden_sizes, config.training.learning_rate
    ([8, 8], 0.03)
    """

    seed: int = _field(0, number(0, 2**32 - 1, integer=True), "seeds data generation, splits and weights")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def validate(self) -> Config:
        """Check every field against its rule; raise :class:`ConfigError` naming the first bad one."""
        for prefix, section in (("", self), ("data.", self.data), ("model.", self.model),
                                ("training.", self.training)):
            for spec in dataclasses.fields(section):
                rule = spec.metadata.get("rule")
                problem = rule(getattr(section, spec.name)) if rule else None
                if problem:
                    raise ConfigError(prefix + spec.name, problem)
        if self.training.nesterov and (self.training.optimizer != "sgd" or self.training.momentum <= 0):
            raise ConfigError("training.nesterov", "needs optimizer sgd with momentum > 0")
        if self.data.path is not None and self.data.target is None and not self.data.path.endswith(".npz"):
            raise ConfigError("data.target", "must name the target column of the data file")
        if self.training.early_stopping and self.data.val_fraction == 0:
            raise ConfigError("training.early_stopping", "needs a validation split; set data.val_fraction, "
                                                         "e.g. 0.2")
        if self.training.schedule == "plateau" and self.data.val_fraction == 0:
            raise ConfigError("training.schedule", "plateau watches validation loss; set data.val_fraction")
        self._check_combinations()
        return self

    def _check_combinations(self) -> None:
        """Settings that would do nothing together are refused: a user who set them expected an effect."""
        data = self.data
        if data.path is None:
            for key in ("target", "features", "test_path"):
                if getattr(data, key) is not None:
                    raise ConfigError(f"data.{key}", "applies only to a data file; set data.path (--data FILE)")
            if data.n_classes is not None and data.dataset not in DATASETS_WITH_CLASSES:
                raise ConfigError("data.n_classes", f"does not apply to {data.dataset}, whose classes are fixed; "
                                                    f"it applies to {', '.join(DATASETS_WITH_CLASSES)}")
            return
        if data.dataset != DataConfig.dataset:
            raise ConfigError("data.dataset", "and data.path (--data) both name the data; give one of them")
        for key in ("n_classes", "noise"):
            if getattr(data, key) is not None:
                raise ConfigError(f"data.{key}", "applies only to the built-in data sets, not to a data file")
        if data.features is not None and data.target in data.features:
            raise ConfigError("data.features", f"includes the target {data.target!r}: the network would be given "
                                                "the answer (a label leak); leave it out of the features")
        if data.features is not None and len(set(data.features)) != len(data.features):
            twice = sorted({name for name in data.features if data.features.count(name) > 1})
            raise ConfigError("data.features", f"names {', '.join(map(repr, twice))} more than once")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/TOML-able), None values included."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Build from nested plain data, as read from TOML/JSON. Unknown keys are errors; missing keys
        keep their defaults. Whole-number floats such as ``2000.0`` are taken as integers where one is
        wanted. The result is not validated yet: call :meth:`validate`."""
        if not isinstance(values, dict):
            raise ConfigError("config", f"must be a table (dict) of settings, got {type(values).__name__}")
        config = cls()
        given = set()
        for key, value in values.items():
            if not isinstance(key, str):
                raise ConfigError(shown(key), "is not a setting name (names are text)")
            if key in _SECTIONS:
                if not isinstance(value, dict):
                    raise ConfigError(key, f"must be a table of settings, got {value!r}")
                for name, item in value.items():
                    config.set(f"{key}.{name}", item)
                    given.add(f"{key}.{name}")
            else:
                config.set(key, value)
                given.add(key)
        if config.data.path is not None:
            config.apply_file_defaults(given)
        return config

    def apply_file_defaults(self, given: set[str] = frozenset()) -> Config:
        """Set :data:`FILE_DATA_DEFAULTS` for every key not in ``given``: the recipe for a data file.
        :meth:`from_dict` calls it when ``data.path`` is set; call it yourself on a ``Config()`` built
        field by field. Returns self."""
        for key, value in FILE_DATA_DEFAULTS.items():
            if key not in given:
                self.set(key, list(value) if isinstance(value, list) else value)
        if "training.early_stopping" not in given and self.data.val_fraction == 0:
            self.training.early_stopping = False  # --val-fraction 0 asks for no validation split
        return self

    def set(self, key: str, value: Any) -> None:
        """Set one dotted key (``training.learning_rate``); unknown keys raise ConfigError listing the known."""
        section_name, _, name = key.rpartition(".")
        section = getattr(self, section_name) if section_name in _SECTIONS else self
        if section_name and section_name not in _SECTIONS:
            raise ConfigError(key, f"is not a setting; sections are {', '.join(_SECTIONS)}")
        if section is self:
            if name != "seed":
                raise ConfigError(key, f"is not a setting; the top level holds seed and the tables "
                                       f"{', '.join(f'[{table}]' for table in _SECTIONS)}")
        elif name not in {spec.name for spec in dataclasses.fields(section)}:
            known = sorted(spec.name for spec in dataclasses.fields(section))
            raise ConfigError(key, f"is not a setting; known: {', '.join(known)}")
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, float) and value.is_integer() and isinstance(getattr(section, name), int) \
                and not isinstance(getattr(section, name), bool):
            value = int(value)
        setattr(section, name, value)


# --- TOML ------------------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


# Settings that matter only in some configurations. A run's config.toml leaves the others out, so it
# says what the run used and nothing it ignored (reading it back gives them their defaults, unused).
APPLIES: dict[str, Callable[[Config], bool]] = {
    "data.dataset": lambda c: c.data.path is None,
    "data.n_train": lambda c: c.data.path is None,
    "data.n_test": lambda c: c.data.path is None,
    "data.test_fraction": lambda c: c.data.path is not None and c.data.test_path is None,
    "data.unknown_categories": lambda c: c.data.path is not None,
    "training.momentum": lambda c: c.training.optimizer in ("sgd", "rmsprop"),
    "training.nesterov": lambda c: c.training.optimizer == "sgd",
    "training.step_size": lambda c: c.training.schedule == "step",
    "training.gamma": lambda c: c.training.schedule in ("step", "plateau"),
    "training.patience": lambda c: c.training.early_stopping,
}
PATH_KEYS = ("path", "test_path")  # data files, resolved against the config file that names them


def applies(config: Config, key: str) -> bool:
    """Whether setting ``key`` (dotted) has any effect in ``config``; None means unset."""
    rule = APPLIES.get(key)
    return rule is None or bool(rule(config))


def to_toml(config: Config, only_applicable: bool = True) -> str:
    """The config as TOML that :func:`load_config` reads back. Unset (None) settings are left out, and
    with ``only_applicable`` those without effect here (``momentum`` for Adam, generator settings for a
    data file)."""
    values = config.to_dict()
    lines = [f"seed = {values.pop('seed')}"]
    for section, settings in values.items():
        lines += ["", f"[{section}]"]
        lines += [f"{name} = {_toml_value(value)}" for name, value in settings.items()
                  if value is not None and (not only_applicable or applies(config, f"{section}.{name}"))]
    return "\n".join(lines) + "\n"


def with_absolute_paths(config: Config, base: str | Path | None = None) -> Config:
    """A copy of ``config`` whose data file paths are absolute: relative ones are taken from ``base``
    (a config file's folder), else from the current folder. A run records them so, so that its
    config.toml repeats it from any folder."""
    copied = copy.deepcopy(config)
    for name in PATH_KEYS:
        value = getattr(copied.data, name)
        if isinstance(value, str) and value:
            path = Path(value).expanduser()
            setattr(copied.data, name, str((Path(base or ".") / path).resolve() if not path.is_absolute() else path))
    return copied


def load_config(path: str) -> Config:
    """Read a TOML config file (unknown keys are errors). Not validated yet."""
    return Config.from_dict(read_config_values(path))


def read_config_values(path: str) -> dict[str, Any]:
    """A TOML config file's contents as plain nested data, its data file paths made absolute (relative
    ones are taken from the config file's folder)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    from .saferead import read_bytes

    data = read_bytes(path, "config file", 16 << 20)  # a regular file of sane size: not /dev/zero
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MlplabError(f"config file {path!r} is not UTF-8 text (byte {error.start} is 0x{data[error.start]:02x}); "
                          "TOML files are UTF-8: save it with that encoding") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MlplabError(f"config file {path!r} is not valid TOML: {error}") from None
    # Data files named in a config file are found next to it, wherever mlplab is started from.
    data = values.get("data") if isinstance(values, dict) else None
    if isinstance(data, dict):
        for name in PATH_KEYS:
            value = data.get(name)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                data[name] = str((Path(path).parent / Path(value).expanduser()).resolve())
    return values
