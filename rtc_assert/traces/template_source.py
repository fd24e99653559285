"""What a chat template's source tests: the literals and keywords detection tries.

The template is parsed (never run) with jinja2; nothing here knows a model family. It yields:

- `string_literals`: every string the template can write, to find markers in renderings;
- `content_delimiters`: string literals the template splits message content on, or looks
  for in it (``content.split('</think>')``, ``'</think>' in content``): the candidates for
  reasoning written inline in an assistant message's content;
- `searched_literals`: the literals looked for in a string (``'<|think|>' in
  messages[0].content``): the candidates for a flag the user writes into the system turn;
- `switch_candidates`: variables the caller may pass (jinja2's undeclared variables, less
  the standard chat-template inputs) with the values the template compares them with, as
  candidate thinking switches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

STANDARD_INPUTS = frozenset(
    {
        "messages",
        "add_generation_prompt",
        "tools",
        "documents",
        "bos_token",
        "eos_token",
        "pad_token",
        "unk_token",
        "raise_exception",
        "strftime_now",
        "date_string",
        "continue_final_message",
        "custom_tools",
        "tools_in_user_message",
        "builtin_tools",
        "add_vision_id",
        "xml_tools",
        "python_tools",
    }
)
"""Variables that every caller (transformers, vLLM) fills in or that carry data, not a switch."""

_CONTENT_METHODS = frozenset({"split", "rsplit", "partition", "rpartition", "startswith"})


class _GenerationTag(Extension):
    """transformers' ``{% generation %}...{% endgeneration %}`` marker, parsed as its body."""

    tags = {"generation"}  # noqa: RUF012 (jinja2 declares it a set attribute)

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


@dataclass(frozen=True)
class SwitchCandidate:
    """A variable the template reads that may switch thinking, with values to try."""

    name: str
    values: tuple[Any, ...]


@lru_cache(maxsize=32)
def _parse(source: str) -> nodes.Template | None:
    """The template's syntax tree, parsed once per source: only read, never changed."""
    return _fresh_parse(source)


def _fresh_parse(source: str) -> nodes.Template | None:
    env = ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols", _GenerationTag])
    try:
        return env.parse(source)
    except TemplateSyntaxError:
        return None


def string_literals(source: str) -> tuple[str, ...]:
    """Every string literal in the template, in source order, once each."""
    ast = _parse(source)
    if ast is None:
        return ()
    found = (node.value for node in ast.find_all(nodes.Const) if isinstance(node.value, str))
    return tuple(dict.fromkeys(found))


def content_delimiters(source: str) -> tuple[str, ...]:
    """String literals the template splits strings on or searches strings for, in order."""
    ast = _parse(source)
    if ast is None:
        return ()
    found: list[str] = []
    for call in ast.find_all(nodes.Call):
        method = call.node
        if isinstance(method, nodes.Getattr) and method.attr in _CONTENT_METHODS:
            found.extend(
                arg.value for arg in call.args if isinstance(arg, nodes.Const) and _is_text(arg)
            )
    found.extend(_searched(ast))
    return tuple(dict.fromkeys(text for text in found if text.strip()))


def searched_literals(source: str) -> tuple[str, ...]:
    """String literals the template looks for in a string (``'X' in s``), in order."""
    ast = _parse(source)
    return () if ast is None else tuple(dict.fromkeys(t for t in _searched(ast) if t.strip()))


def _searched(ast: nodes.Template) -> Iterator[str]:
    for compare in ast.find_all(nodes.Compare):
        searched = any(op.op in ("in", "notin") for op in compare.ops)
        if searched and isinstance(compare.expr, nodes.Const) and _is_text(compare.expr):
            yield compare.expr.value


def _is_text(node: nodes.Const) -> bool:
    return isinstance(node.value, str)


def switch_candidates(source: str) -> tuple[SwitchCandidate, ...]:
    """Undeclared variables other than the standard inputs, each with values to try.

    Values: the constants the template compares the variable (or a variable ``set`` from it)
    with (``==``, ``!=``, ``in`` a list) or gives it as a ``default(...)``, in source order;
    True and False when none.
    """
    ast = _parse(source)
    if ast is None:
        return ()
    # find_undeclared_variables folds constant lists into one Const: it gets its own parse.
    names = sorted(meta.find_undeclared_variables(_fresh_parse(source) or ast) - STANDARD_INPUTS)
    compared: dict[str, list[Any]] = {name: [] for name in names}
    aliases = {
        assign.target.name: source_name
        for assign in ast.find_all(nodes.Assign)
        if isinstance(assign.target, nodes.Name) and (source_name := _name(assign.node))
    }  # {% set effort = reasoning_effort | default('none') %}
    for compared_name, value in _compared_constants(ast):
        name = aliases.get(compared_name, compared_name)
        if name in compared and value not in compared[name] and not isinstance(value, bool):
            compared[name].append(value)
    return tuple(SwitchCandidate(name, tuple(compared[name]) or (True, False)) for name in names)


def _compared_constants(ast: nodes.Template) -> Iterator[tuple[str, Any]]:
    for compare in ast.find_all(nodes.Compare):
        operands = [compare.expr, *(op.expr for op in compare.ops)]
        names = [_name(node) for node in operands]
        for node in operands:
            for constant in _constants(node):
                yield from ((name, constant) for name in names if name)
    for flt in ast.find_all(nodes.Filter):
        if flt.name in ("default", "d") and (name := _name(flt.node)):
            for arg in flt.args:
                yield from ((name, constant) for constant in _constants(arg))


def _name(node: nodes.Node | None) -> str | None:
    if isinstance(node, nodes.Filter):  # reasoning_effort | lower == 'none'
        return _name(node.node)
    return node.name if isinstance(node, nodes.Name) else None


def _constants(node: nodes.Node) -> list[Any]:
    if isinstance(node, nodes.Const) and isinstance(node.value, str | int | float | bool):
        return [node.value]
    if isinstance(node, nodes.List | nodes.Tuple):
        return [item for element in node.items for item in _constants(element)]
    return []
