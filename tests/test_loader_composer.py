"""Issue 13: libyaml's own composer for job files, only where it builds what the checking composer builds.

``loader._fast_compose`` composes with libyaml (C) and then walks the result
with ``_Loader``'s accounting; whatever it returns must be exactly the nodes
``_Loader`` composes (tags, values, styles, marks, shared nodes), and for
every file ``_Loader`` refuses or fails on it must return None, so that the
problem is reported as before.
"""

from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_loader_fuzz import SEEDS, mutate, mutation
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from jobctl.jobs import loader

pytestmark = pytest.mark.skipif(loader._CBase is None, reason="PyYAML without libyaml: no fast composer")

EXAMPLES = int(os.environ.get("JOBCTL_FUZZ_EXAMPLES", "300"))


def reference(text: str) -> list[Node] | None:
    """What the checking composer builds, or None when it refuses or fails."""
    try:
        return loader._compose(text, loader._Loader)
    except yaml.YAMLError:
        return None


def shape(docs: list[Node]) -> list:
    """Everything the loader reads of a node tree, shared nodes as references to their first appearance."""
    seen: dict[int, int] = {}

    def mark(m: yaml.Mark | None) -> tuple | None:
        return None if m is None else (m.index, m.line, m.column)

    def walk(node: Node) -> object:
        if id(node) in seen:
            return ("alias", seen[id(node)])
        seen[id(node)] = len(seen)
        head = (type(node).__name__, node.tag, mark(node.start_mark), mark(node.end_mark))
        if isinstance(node, ScalarNode):
            return (*head, node.value, node.style)
        assert isinstance(node, (SequenceNode, MappingNode))
        if isinstance(node, SequenceNode):
            return (*head, node.flow_style, [walk(v) for v in node.value])
        return (*head, node.flow_style, [(walk(k), walk(v)) for k, v in node.value])

    return [walk(d) for d in docs]


def same(text: str) -> None:
    fast = loader._fast_compose(text)
    slow = reference(text)
    if slow is None:
        assert fast is None, text
    elif fast is not None:
        assert shape(fast) == shape(slow), text


CASES = [
    "",
    "---\n...\n",
    "name: a\nschedule: '@daily'\ncommand: x\n---\n---\nname: b\n",
    "a: &x [1, 2, {b: c}]\nb: *x\nc: *x\n",
    "a: &x 1\nb: &x 2\nc: *x\n",  # an anchor defined twice
    "a: *nope\n",  # undefined alias
    "a: &s [*s]\n",  # an alias inside its own anchor
    "? [a, b]\n: c\n? {d: e}\n",
    "a: !!str 5\nb: !custom x\nc: !!binary aGk=\nd: !!set {x}\ne: '!'\nf: ! x\n",
    "a: |\n  one\n  two\nb: >-\n  folded\n  text\nc: \"q\\tq\"\nd: 'it''s'\n",
    "<<: {a: 1}\nb: 2\n",
    "- - - - a\n",
    "[" * 21 + "]" * 21,  # one level deeper than MAX_DEPTH
    "[" * 20 + "]" * 20,
    "x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(f"y{i}: *a\n" for i in range(101)),  # > MAX_ALIASES
    "a: &a [" + ",".join(["x"] * 100) + "]\nb: &b [" + ",".join(["*a"] * 99) + "]\nc: [*b, *b]\n",  # a bomb
    "[" + ",".join(["x"] * 10_000) + "]",  # over MAX_VALUES
    "[" + ",".join(["x"] * 9_999) + "]",
    "a: b: c\n",  # a syntax error
    "key: [unclosed\n",
    "\ttabbed: x\n",
]


@pytest.mark.parametrize("text", CASES)
def test_the_fast_composer_builds_what_the_checking_one_builds(text: str) -> None:
    same(text)


def test_over_a_limit_the_checking_composer_reports_it() -> None:
    for text in (CASES[12], CASES[14], CASES[15], CASES[16], CASES[6]):
        assert loader._fast_compose(text) is None
        with pytest.raises(loader._Refused):
            loader._compose(text, loader._Loader)
    assert loader._fast_compose(CASES[13]) is not None and loader._fast_compose(CASES[17]) is not None


def test_ordinary_job_files_take_the_fast_composer() -> None:
    for seed in SEEDS:
        assert loader._fast_compose(seed) is not None, seed


def test_texts_it_cannot_bound_go_to_the_checking_composer() -> None:
    # too long, or more nesting indicators than its recursion is allowed: never handed to libyaml's composer
    assert loader._fast_compose("a: " + "x" * loader._FAST_CHARS + "\n") is None
    assert loader._fast_compose("[" * (loader._FAST_INDICATORS + 1)) is None


def test_problems_are_the_same_with_either_composer(tmp_path, monkeypatch) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    for i, text in enumerate(CASES + SEEDS):
        (jobs / f"f{i:02d}.yaml").write_text(text)
    fast = loader.load_dir(str(jobs))
    monkeypatch.setattr(loader, "_fast_compose", lambda text: None)
    slow = loader.load_dir(str(jobs))
    assert fast.problems == slow.problems and fast.warnings == slow.warnings and fast.jobs == slow.jobs
    assert fast.problems  # the cases hold errors: the comparison compared something


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seed=st.sampled_from(SEEDS), mutations=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_files_compose_the_same(seed: str, mutations: list[tuple]) -> None:
    text = mutate(seed, mutations).decode("utf-8", "replace")
    if loader.Reader.NON_PRINTABLE.search(text):
        return  # refused before any composer runs
    same(text)
