"""The search space of `cnnzoo sweep`: `--grid KEY=[values]` and `--sample KEY=dist(args)`, expanded
into a fixed, named list of trials (the same list every time, so a sweep can be resumed)."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

from cnnzoo.config.source import format_path, parse_override
from cnnzoo.errors import CnnzooError

DISTRIBUTIONS = ("uniform", "loguniform", "choice")
MAX_TRIALS = 100_000
_CALL = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$", re.S)


class SweepError(CnnzooError):
    """A --grid/--sample option or a sweep folder the user has to fix."""


@dataclass(frozen=True)
class Param:
    """One searched config key: a list of values (grid, or choice) or a uniform/loguniform range."""

    key: str
    kind: str  # "grid", "choice", "uniform" or "loguniform"
    values: tuple

    def draw(self, rng: random.Random) -> Any:
        if self.kind in ("grid", "choice"):
            return rng.choice(self.values)
        low, high = self.values
        if self.kind == "uniform":
            return round(rng.uniform(low, high), 6)
        return float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.4g}")

    def to_json(self) -> dict:
        return {"key": self.key, "kind": self.kind, "values": list(self.values)}


@dataclass(frozen=True)
class Trial:
    name: str
    assignment: dict[str, Any]  # dotted config key -> value

    @property
    def overrides(self) -> list[str]:
        """`--set` texts; JSON is YAML, so strings stay strings and lists stay lists."""
        return [f"{key}={json.dumps(value)}" for key, value in self.assignment.items()]


def parse_grid(text: str) -> Param:
    """``train.learning_rate=[0.01, 0.001]``: every value is tried (cartesian with the other --grid keys)."""
    key, value = _split(text, "--grid")
    if not isinstance(value, list) or not value:
        raise SweepError(f"--grid {text!r}: the value must be a non-empty list, e.g. "
                         f"--grid 'train.learning_rate=[0.01,0.001]'.")
    return Param(key, "grid", tuple(value))


def parse_sample(text: str) -> Param:
    """``train.learning_rate=loguniform(1e-4, 1e-1)``, ``uniform(a, b)`` or ``choice(a, b, ...)``."""
    key_text, _, call = text.partition("=")
    match = _CALL.match(call)
    if not match or match.group(1) not in DISTRIBUTIONS:
        raise SweepError(f"--sample {text!r}: expected KEY=DIST(ARGS) with DIST one of {', '.join(DISTRIBUTIONS)}, "
                         f"e.g. --sample 'train.learning_rate=loguniform(1e-4,1e-1)'.")
    kind = match.group(1)
    key, args = _split(f"{key_text}=[{match.group(2)}]", "--sample")
    if kind == "choice":
        if not args:
            raise SweepError(f"--sample {text!r}: choice() needs at least one value.")
        return Param(key, kind, tuple(args))
    numbers = len(args) == 2 and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if not numbers or not args[0] < args[1] or (kind == "loguniform" and args[0] <= 0):
        raise SweepError(f"--sample {text!r}: {kind}(low, high) needs two numbers with low < high"
                         f"{' and low > 0' if kind == 'loguniform' else ''}.")
    return Param(key, kind, (float(args[0]), float(args[1])))


def _split(text: str, option: str) -> tuple[str, Any]:
    try:
        path, value = parse_override(text)
    except CnnzooError as exc:
        raise SweepError(f"{option} {text!r}: {exc}") from None
    return format_path(path), value


def make_trials(params: list[Param], random_trials: int | None, seed: int) -> list[Trial]:
    """The cartesian product of the grid, or ``random_trials`` draws from a generator seeded by ``seed``."""
    if not params:
        raise SweepError("nothing to search: give at least one --grid KEY=[values] or --sample KEY=dist(...).")
    keys = [p.key for p in params]
    if len(set(keys)) != len(keys):
        raise SweepError(f"a key is searched twice: {', '.join(sorted({k for k in keys if keys.count(k) > 1}))}.")
    if random_trials is None:
        ranged = [p for p in params if p.kind not in ("grid", "choice")]
        if ranged:
            raise SweepError(f"--sample {ranged[0].key}={ranged[0].kind}(...) needs --random N: a range has no grid.")
    count = random_trials if random_trials is not None else math.prod(len(p.values) for p in params)
    if count > MAX_TRIALS:  # counted before any trial is built: a product of long lists is astronomically large
        raise SweepError(f"the search has {count:,} trials, more than the {MAX_TRIALS:,} one sweep may hold; "
                         f"give fewer values, or draw a sample with --random N (at most {MAX_TRIALS:,}).")
    if random_trials is None:
        assignments = [dict(zip(keys, combo)) for combo in itertools.product(*(p.values for p in params))]
    else:
        rng = random.Random(seed)
        assignments = [{p.key: p.draw(rng) for p in params} for _ in range(random_trials)]
    return [Trial(trial_name(i + 1, a), a) for i, a in enumerate(assignments)]


def trial_name(index: int, assignment: dict[str, Any]) -> str:
    """``t003-learning_rate0.001-units500``: the index, then each key's last name and its value."""
    parts = [f"t{index:03d}"]
    for key, value in assignment.items():
        short = [p for p in re.split(r"[.\[\]]", key) if p and not p.isdigit()][-1]
        parts.append(f"{short}{_value_text(value)}")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(parts))[:120]


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "x".join(_value_text(v) for v in value)
    return str(value)
