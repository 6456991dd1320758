"""`${...}` arithmetic on block parameters: a tiny evaluator on Python's `ast`, never `eval`.

Allowed: integers, decimals, true/false, parameter names, `+ - * / // %`, comparisons, `and or not`,
`a if cond else b`, parentheses and the functions in FUNCTIONS. Anything else (attributes, strings,
subscripts, other calls, `**`) is refused before evaluation.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

MAX_LENGTH = 500
MAX_MAGNITUDE = 10**15  # a layer size beyond this is a typo, and big integers are slow to multiply
MAX_ROUND_DIGITS = 20
IN_CHANNELS = "in_channels"
REPEAT_INDEX = "repeat_index"
WHOLE = re.compile(r"\$(\w+)|\$\{([^{}]*)\}")
TEMPLATE = WHOLE  # the same forms inside a longer string become text


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round to a multiple of `divisor`, never below 90% of `value` (MobileNet, EfficientNet)."""
    if divisor <= 0:
        raise ValueError("the divisor of make_divisible must be positive")
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def bounded_round(value: float, digits: int | None = None) -> float:
    """round(), with its digits bounded: round(x, -10**8) builds a 10**(10**8) integer (minutes of CPU)."""
    if digits is None:
        return round(value)
    if not isinstance(digits, int) or isinstance(digits, bool) or abs(digits) > MAX_ROUND_DIGITS:
        raise ValueError(f"round's digits must be an integer from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}")
    return round(value, digits)


FUNCTIONS: dict[str, Callable] = {"min": min, "max": max, "round": bounded_round, "int": int, "ceil": math.ceil,
                                  "make_divisible": make_divisible}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}


class ExprError(ValueError):
    """A problem in one expression; the caller adds where it was written."""


def parse(text: str) -> ast.Expression:
    """The checked syntax tree of an expression, or ExprError saying what is not allowed."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"the expression is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExprError("the expression `${}` is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = getattr(exc, "msg", None) or "too deeply nested"
        raise ExprError(f"`${{{text}}}` is not a valid expression ({reason})") from None
    for node in ast.walk(tree):
        _check_node(node, text)
    return tree


def _check_node(node: ast.AST, text: str) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (bool, int, float)):
            return
        raise ExprError(f"`${{{text}}}` contains {node.value!r}; expressions hold numbers and parameter names only")
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS or node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExprError(f"`${{{text}}}` calls {ast.unparse(node.func)}(...); only "
                            f"{', '.join(FUNCTIONS)} can be called, with plain arguments")
        return
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Name, ast.Load,
               ast.And, ast.Or, *_BINARY, *_COMPARE, *_UNARY)
    if not isinstance(node, allowed):
        raise ExprError(f"`${{{text}}}` uses {_describe(node)}, which expressions do not allow "
                        "(only numbers, parameter names, + - * / // %, comparisons, and/or/not, "
                        f"if-else and {', '.join(FUNCTIONS)})")


def _describe(node: ast.AST) -> str:
    names = {ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Pow: "`**`",
             ast.Lambda: "a lambda", ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a mapping",
             ast.JoinedStr: "an f-string", ast.NamedExpr: "`:=`"}
    return names.get(type(node), f"`{type(node).__name__}`")


def names(tree: ast.Expression) -> list[str]:
    """The parameter names an expression reads (function names excluded), in order of appearance."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    found = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called]
    return list(dict.fromkeys(found))


def evaluate(tree: ast.Expression, env: dict[str, Any], text: str) -> Any:
    try:
        value = _eval(tree.body, env)
    except ZeroDivisionError:
        raise ExprError(f"`${{{text}}}` divides by zero") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise ExprError(f"`${{{text}}}` cannot be computed: {exc}") from None
    return value


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):  # every value is bounded where it enters, and every result
        return _bounded(node.value)
    if isinstance(node, ast.Name):
        return _bounded(_number(env[node.id], node.id))
    if isinstance(node, ast.BinOp):
        return _bounded(_BINARY[type(node.op)](_eval(node.left, env), _eval(node.right, env)))
    if isinstance(node, ast.UnaryOp):
        return _bounded(_UNARY[type(node.op)](_eval(node.operand, env)))
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, env) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body, env) if _eval(node.test, env) else _eval(node.orelse, env)
    function = FUNCTIONS[node.func.id]
    return _bounded(function(*(_eval(a, env) for a in node.args)))


def _number(value: Any, name: str) -> Any:
    if isinstance(value, (bool, int, float)):
        return value
    raise TypeError(f"`{name}` is {value!r}, not a number")


def _bounded(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        try:
            shown = f"{float(value):.3g}"
        except OverflowError:  # an integer literal beyond any float
            shown = f"a {len(str(abs(value)))}-digit number"
        raise ValueError(f"the result {shown} is too large")
    return value


@dataclass(frozen=True)
class Deferred:
    """A value that reads `in_channels`, known only while building: `text` is rendered again with the
    parameters of the block instance `block` and the channel count of that instance's input."""

    text: str
    params: dict
    block: str
    where: Any  # cnnzoo.config.spec.Where of the value, for errors found while building

    def resolve(self, channels: dict[str, int]) -> Any:
        env = {name: resolve(self.params[name], channels) for name in references(self.text) if name in self.params}
        env[IN_CHANNELS] = channels[self.block]
        try:
            return render(self.text, env)
        except ExprError as exc:
            raise self.where.error(f"{exc}.") from None


def resolve(value: Any, channels: dict[str, int]) -> Any:
    """`value` with every Deferred inside (lists, mappings) computed."""
    if isinstance(value, Deferred):
        return value.resolve(channels)
    if isinstance(value, dict):
        return {key: resolve(item, channels) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, channels) for item in value]
    return value


def is_deferred(value: Any) -> bool:
    if isinstance(value, dict):
        return any(is_deferred(v) for v in value.values())
    if isinstance(value, list):
        return any(is_deferred(v) for v in value)
    return isinstance(value, Deferred)


def references(text: str) -> list[str]:
    """Every name that the `$name` and `${...}` parts of a string read."""
    found: list[str] = []
    for match in TEMPLATE.finditer(text):
        found += [match.group(1)] if match.group(1) else names(parse(match.group(2)))
    return list(dict.fromkeys(found))


def render(text: str, env: dict[str, Any]) -> Any:
    """A whole `$name` / `${expr}` keeps its value's type; inside a longer string it becomes text."""
    whole = WHOLE.fullmatch(text)
    if whole:
        return _part(whole, env)
    return TEMPLATE.sub(lambda m: str(_part(m, env)), text)


def _part(match: re.Match, env: dict[str, Any]) -> Any:
    name = (match.group(1) or match.group(2)).strip()
    if name.isidentifier() and name in env:
        return env[name]  # any value, text included: `name: conv_${act}`
    return evaluate(parse(name), env, name)
