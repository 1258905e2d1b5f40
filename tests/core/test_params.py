"""Param.check and resolve_params: coercion, bools, choices, bounds, optional/required, unknown keys."""

from __future__ import annotations

import pytest

from harness.params import REQUIRED, Param, ParamProblems, resolve_params


# --------------------------------------------------------------------------- Param.check: types


def test_int_param_accepts_int_and_keeps_it_an_int():
    value, problem = Param("n", int, default=1).check(7)
    assert problem is None
    assert value == 7 and type(value) is int


def test_int_param_rejects_float_even_if_integral():
    value, problem = Param("n", int, default=1).check(3.0)
    assert problem == "expected int, got float 3.0"
    assert value == 3.0


def test_float_param_coerces_int_to_float():
    value, problem = Param("lr", float, default=1e-3).check(2)
    assert problem is None
    assert value == 2.0 and type(value) is float


def test_float_param_keeps_float():
    value, problem = Param("lr", float, default=1e-3).check(0.25)
    assert (value, problem) == (0.25, None)


@pytest.mark.parametrize("flag", [True, False])
def test_bool_is_not_an_int(flag):
    value, problem = Param("n", int, default=1).check(flag)
    assert problem == f"expected int, got bool {flag!r}"
    assert value is flag


@pytest.mark.parametrize("flag", [True, False])
def test_bool_is_not_a_float(flag):
    value, problem = Param("x", float, default=1.0).check(flag)
    assert problem == f"expected float, got bool {flag!r}"
    assert value is flag  # not coerced to 1.0 / 0.0


def test_bool_param_rejects_int_one():
    _, problem = Param("on", bool, default=False).check(1)
    assert problem == "expected bool, got int 1"


def test_bool_param_accepts_bool():
    assert Param("on", bool, default=False).check(True) == (True, None)


def test_str_param_rejects_number():
    _, problem = Param("name", str, default="a").check(5)
    assert problem == "expected str, got int 5"


def test_union_type_int_or_str():
    p = Param("n", (int, str), default="auto")
    assert p.type_name() == "int or str"
    assert p.check(4) == (4, None)
    assert p.check("auto") == ("auto", None)
    _, problem = p.check(1.5)
    assert problem == "expected int or str, got float 1.5"


def test_list_and_mapping_type_names():
    assert Param("xs", list).type_name() == "list"
    assert Param("m", dict).type_name() == "mapping"
    _, problem = Param("xs", list).check("a")
    assert problem == "expected list, got str 'a'"


# --------------------------------------------------------------------------- choices


def test_choice_accepted():
    p = Param("optimizer", str, default="adam", choices=("adam", "adamw"))
    assert p.check("adamw") == ("adamw", None)


def test_choice_rejected_with_did_you_mean():
    p = Param("optimizer", str, default="adam", choices=("adam", "adamw"))
    _, problem = p.check("adan")
    assert problem == "'adan' is not allowed (did you mean \"adam\"?)"


def test_choice_rejected_without_close_match_lists_choices():
    p = Param("optimizer", str, default="adam", choices=("adam", "adamw"))
    _, problem = p.check("sgd")
    assert problem == "'sgd' is not allowed (choose from: adam, adamw)"


def test_choice_type_checked_before_choices():
    p = Param("optimizer", str, default="adam", choices=("adam", "adamw"))
    _, problem = p.check(3)
    assert problem == "expected str, got int 3"


# --------------------------------------------------------------------------- bounds


def test_min_inclusive():
    p = Param("n", int, default=1, min=1)
    assert p.check(1) == (1, None)
    _, problem = p.check(0)
    assert problem == "0 must be at least 1"


def test_max_inclusive():
    p = Param("p", float, default=0.9, min=0.0, max=1.0)
    assert p.check(1.0) == (1.0, None)
    _, problem = p.check(1.5)
    assert problem == "1.5 must be at most 1.0"


def test_exclusive_min_rejects_the_bound_and_below():
    p = Param("p", float, default=0.9, min=0.0, max=1.0, exclusive_min=True)
    assert p.check(0.001) == (0.001, None)
    _, problem = p.check(0.0)
    assert problem == "0.0 must be above 0.0"
    _, problem = p.check(-1)
    # the int is coerced to float before the bound check, so the message shows the coerced value
    assert problem == "-1.0 must be above 0.0"


def test_int_coerced_to_float_then_range_checked():
    p = Param("p", float, default=0.9, max=1.0)
    value, problem = p.check(1)
    assert (value, type(value), problem) == (1.0, float, None)
    _, problem = p.check(2)
    assert problem == "2.0 must be at most 1.0"


# --------------------------------------------------------------------------- None default / REQUIRED


def test_none_default_makes_param_optional_and_nullable():
    p = Param("revision", str, default=None)
    assert not p.required
    assert p.check(None) == (None, None)
    assert p.check("main") == ("main", None)
    resolved, problems = resolve_params([p], {})
    assert resolved == {"revision": None}
    assert problems.items == []


def test_none_is_rejected_when_default_is_not_none():
    _, problem = Param("n", int, default=3).check(None)
    assert problem == "expected int, got NoneType None"


def test_none_is_rejected_for_required_param():
    _, problem = Param("id", str).check(None)
    assert problem == "expected str, got NoneType None"


def test_required_marker_and_describe():
    p = Param("id", str, help="hub id")
    assert p.default is REQUIRED and p.required
    assert repr(REQUIRED) == "REQUIRED"
    assert p.describe() == {"type": "str", "help": "hub id", "default": None, "required": True}
    q = Param("p", float, default=0.9, min=0.0, max=1.0, choices=(0.5, 0.9))
    assert q.describe() == {
        "type": "float", "help": "", "default": 0.9, "required": False,
        "choices": [0.5, 0.9], "min": 0.0, "max": 1.0,
    }  # fmt: skip


# --------------------------------------------------------------------------- resolve_params

SCHEMA = (
    Param("id", str),
    Param("temperature", float, default=0.7, min=0.0, exclusive_min=True),
    Param("top_k", int, default=50, min=0),
    Param("revision", str, default=None),
)


def test_resolve_fills_defaults_and_coerces():
    resolved, problems = resolve_params(SCHEMA, {"id": "m", "temperature": 1})
    assert problems.items == []
    assert resolved == {"id": "m", "temperature": 1.0, "top_k": 50, "revision": None}
    assert type(resolved["temperature"]) is float


def test_resolve_required_missing():
    resolved, problems = resolve_params(SCHEMA, {})
    assert problems.items == [("id", "required parameter 'id' is missing")]
    assert "id" not in resolved
    assert resolved == {"temperature": 0.7, "top_k": 50, "revision": None}


def test_resolve_unknown_param_with_suggestion():
    resolved, problems = resolve_params(SCHEMA, {"id": "m", "temprature": 0.5})
    assert problems.items == [("temprature", "unknown parameter 'temprature' (did you mean \"temperature\"?)")]
    assert "temprature" not in resolved
    assert resolved["temperature"] == 0.7


def test_resolve_unknown_param_without_close_match_lists_names():
    _, problems = resolve_params(SCHEMA, {"id": "m", "zzz": 1})
    assert problems.items == [("zzz", "unknown parameter 'zzz' (choose from: id, revision, temperature, top_k)")]


def test_resolve_reports_every_problem_in_order():
    _, problems = resolve_params(SCHEMA, {"top_k": "fifty", "temperature": 0, "colour": "red"})
    assert problems.items == [
        ("top_k", "expected int, got str 'fifty'"),
        ("temperature", "0.0 must be above 0.0"),
        ("colour", "unknown parameter 'colour' (choose from: id, revision, temperature, top_k)"),
        ("id", "required parameter 'id' is missing"),
    ]


def test_problems_container():
    problems = ParamProblems()
    assert problems.items == []
    problems.add("a", "bad")
    assert problems.items == [("a", "bad")]


def test_empty_schema_rejects_everything():
    resolved, problems = resolve_params((), {"x": 1})
    assert resolved == {}
    assert problems.items == [("x", "unknown parameter 'x'")]
