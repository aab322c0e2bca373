"""Author-visible outcomes (values and error texts) of the authoring API, one case per function.

Runs unchanged against perago 0.6.1 and against this perago: the golden
`golden/cases.json` holds the oracle's outcomes (scripts/generate_taskdef_goldens.py),
and tests/authoring/test_oracle_cases.py checks ours against it. Only the public
`perago` API is used, plus one adapter for the runtime contract (0.6.1 exposes it
as `invoke_workspace_free_task`/`build_workspace_task_output`, we as `task.contract`).
"""

from __future__ import annotations

import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, RootModel

import perago
from perago import (
    ExecutionLimits,
    GuardrailViolation,
    MetricRecorder,
    MetricSpec,
    PublishBudget,
    RetryPolicy,
    TaskControls,
    TimeoutPolicy,
    WorkspaceInput,
    WorkspaceSpec,
    check_guardrails,
    forbid_glob,
    load_module_task,
    require_dir,
    require_file,
    require_glob,
    task,
)

CASES: dict[str, Callable[[], object]] = {}
_OBJECT_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def case(fn: Callable[[], object]) -> Callable[[], object]:
    CASES[fn.__name__] = fn
    return fn


def outcome(fn: Callable[[], object]) -> str:
    """`ok: <repr>` for a returned value, `<ExceptionType>: <text>` for a raised one (object ids masked)."""
    try:
        value = fn()
    except Exception as exc:  # the outcome is the point
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = f"ok: {value!r}"
    return _OBJECT_ADDRESS.sub(" at 0x?", text)


def run_all() -> dict[str, str]:
    return {name: outcome(fn) for name, fn in CASES.items()}


class P(BaseModel):
    a: int


class R(BaseModel):
    b: int


WS = WorkspaceSpec()
BUDGET = dict(
    observed_merge_p99_seconds=20,
    safety_margin_seconds=10,
    lakefs_merge_timeout_seconds=45,
    conductor_completion_timeout_seconds=15,
    worker_shutdown_grace_seconds=30,
    heartbeat_interval_seconds=10,
)


def decorate(fn: Callable[..., Any], **kwargs: Any) -> str:
    kwargs.setdefault("name", "t")
    kwargs.setdefault("owner_email", "o@example.net")
    task(**kwargs)(fn)
    definition = fn.__perago_task__
    models = f"{definition.params_model.__name__}|{definition.output_model.__name__}"
    return f"{definition.name}|{models}|{definition.has_workspace}"


# -- decorator: factory-time and metadata checks ----------------------------------


@case
def decorator_unsupported_fields() -> object:
    return task(name="t", owner_email="o", retries=3, alpha=1, Zeta=2)


@case
def decorator_without_parentheses() -> object:
    def fn(params: P) -> R: ...

    return task(fn)


@case
def decorator_positional_name() -> object:
    return task("t")


@case
def decorator_missing_name() -> object:
    return task(owner_email="o")


@case
def decorator_missing_owner() -> object:
    return task(name="t")


@case
def decorator_unknown_before_missing_checks() -> object:
    return task(name=" ", owner_email="", bogus=True)


@case
def name_not_a_string() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, name=42)


@case
def owner_not_a_string() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, owner_email=None)


@case
def name_blank() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, name=" \t\n")


@case
def name_with_slash() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, name="a/b")


@case
def name_with_backslash() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, name="a\\b")


@case
def name_odd_but_accepted() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, name=" spaced.name:ü ")


@case
def owner_blank() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, owner_email="  ")


@case
def owner_blank_after_name_checks() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, name="a/b", owner_email="")


@case
def workspace_as_dict() -> object:
    def fn(workspace: Path, params: P) -> R: ...

    return decorate(fn, workspace={"prefix": "/"})


@case
def metrics_as_dict() -> object:
    def fn(params: P, metrics: MetricRecorder) -> R: ...

    return decorate(fn, metrics={"attempts": True})


@case
def controls_as_dict() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, controls={"retry": {"count": 1}})


@case
def strict_params_int() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, strict_params=1)


@case
def strict_params_none() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, strict_params=None)


@case
def budget_without_workspace() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, controls=TaskControls(publish_budget=PublishBudget(**BUDGET)))


@case
def type_checks_before_function_checks() -> object:
    async def fn(*args: Any) -> R: ...

    return decorate(fn, workspace="nope")


# -- decorator: function shape ----------------------------------------------------


@case
def async_function() -> object:
    async def fn(params: P) -> R: ...

    return decorate(fn)


@case
def generator_function_accepted() -> object:
    def fn(params: P) -> R:
        yield R(b=1)

    return decorate(fn)


@case
def var_positional() -> object:
    def fn(*params: P) -> R: ...

    return decorate(fn)


@case
def var_keyword() -> object:
    def fn(params: P, **extra: Any) -> R: ...

    return decorate(fn)


@case
def keyword_only() -> object:
    def fn(*, params: P) -> R: ...

    return decorate(fn)


@case
def positional_only() -> object:
    def fn(params: P, /) -> R: ...

    return decorate(fn)


@case
def default_value() -> object:
    def fn(params: P = P(a=1)) -> R: ...

    return decorate(fn)


@case
def default_checked_before_hints() -> object:
    def fn(params: "Missing" = None) -> R: ...  # noqa: F821

    return decorate(fn)


@case
def unresolvable_hint() -> object:
    def fn(params: "Missing") -> R: ...  # noqa: F821

    return decorate(fn)


@case
def callable_instance() -> object:
    class Body:
        def __call__(self, params: P) -> R: ...

    return decorate(Body())


@case
def no_parameters() -> object:
    def fn() -> R: ...

    return decorate(fn)


@case
def four_parameters() -> object:
    def fn(workspace: Path, params: P, metrics: MetricRecorder, extra: int) -> R: ...

    return decorate(fn, workspace=WS, metrics=MetricSpec())


@case
def three_wrong_first_names() -> object:
    def fn(params: P, workspace: Path, metrics: MetricRecorder) -> R: ...

    return decorate(fn, workspace=WS, metrics=MetricSpec())


@case
def three_workspace_str() -> object:
    def fn(workspace: str, params: P, metrics: MetricRecorder) -> R: ...

    return decorate(fn, workspace=WS, metrics=MetricSpec())


@case
def three_no_workspace_spec() -> object:
    def fn(workspace: Path, params: P, metrics: MetricRecorder) -> R: ...

    return decorate(fn, metrics=MetricSpec())


@case
def three_third_name() -> object:
    def fn(workspace: Path, params: P, recorder: MetricRecorder) -> R: ...

    return decorate(fn, workspace=WS, metrics=MetricSpec())


@case
def three_metrics_hint_wrong() -> object:
    def fn(workspace: Path, params: P, metrics: object) -> R: ...

    return decorate(fn, workspace=WS, metrics=MetricSpec())


@case
def three_metrics_unannotated() -> object:
    def fn(workspace: Path, params: P, metrics) -> R: ...  # noqa: ANN001

    return decorate(fn, workspace=WS, metrics=MetricSpec())


@case
def three_no_metric_spec() -> object:
    def fn(workspace: Path, params: P, metrics: MetricRecorder) -> R: ...

    return decorate(fn, workspace=WS)


@case
def three_ok() -> object:
    def fn(workspace: Path, params: P, metrics: MetricRecorder) -> R: ...

    return decorate(fn, workspace=WS, metrics=MetricSpec())


@case
def params_metrics_with_workspace() -> object:
    def fn(params: P, metrics: MetricRecorder) -> R: ...

    return decorate(fn, workspace=WS, metrics=MetricSpec())


@case
def params_metrics_hint_wrong() -> object:
    def fn(params: P, metrics: int) -> R: ...

    return decorate(fn, metrics=MetricSpec())


@case
def params_metrics_no_spec() -> object:
    def fn(params: P, metrics: MetricRecorder) -> R: ...

    return decorate(fn)


@case
def params_metrics_ok() -> object:
    def fn(params: P, metrics: MetricRecorder) -> R: ...

    return decorate(fn, metrics=MetricSpec())


@case
def two_wrong_names() -> object:
    def fn(ws: Path, params: P) -> R: ...

    return decorate(fn, workspace=WS)


@case
def two_metrics_first() -> object:
    def fn(metrics: MetricRecorder, params: P) -> R: ...

    return decorate(fn, metrics=MetricSpec())


@case
def two_workspace_pure_path() -> object:
    def fn(workspace: PurePath, params: P) -> R: ...

    return decorate(fn, workspace=WS)


@case
def two_workspace_optional_path() -> object:
    def fn(workspace: Optional[Path], params: P) -> R: ...

    return decorate(fn, workspace=WS)


@case
def two_workspace_posix_path() -> object:
    def fn(workspace: PurePosixPath, params: P) -> R: ...

    return decorate(fn, workspace=WS)


@case
def two_no_workspace_spec() -> object:
    def fn(workspace: Path, params: P) -> R: ...

    return decorate(fn)


@case
def two_metric_spec_without_parameter() -> object:
    def fn(workspace: Path, params: P) -> R: ...

    return decorate(fn, workspace=WS, metrics=MetricSpec())


@case
def two_ok_string_annotations() -> object:
    def fn(workspace: "Path", params: "P") -> "R": ...

    return decorate(fn, workspace=WS)


@case
def one_wrong_name() -> object:
    def fn(payload: P) -> R: ...

    return decorate(fn)


@case
def one_with_workspace_spec() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, workspace=WS)


@case
def one_with_metric_spec() -> object:
    def fn(params: P) -> R: ...

    return decorate(fn, metrics=MetricSpec())


@case
def params_unannotated() -> object:
    def fn(params) -> R: ...  # noqa: ANN001

    return decorate(fn)


@case
def params_dict() -> object:
    def fn(params: dict) -> R: ...

    return decorate(fn)


@case
def params_model_instance_annotation() -> object:
    def fn(params: P(a=1)) -> R: ...  # type: ignore[valid-type]

    return decorate(fn)


@case
def return_missing() -> object:
    def fn(params: P): ...  # noqa: ANN202

    return decorate(fn)


@case
def return_optional_model() -> object:
    def fn(params: P) -> Optional[R]: ...

    return decorate(fn)


@case
def return_dict() -> object:
    def fn(params: P) -> dict: ...

    return decorate(fn)


class Items(RootModel[list[int]]):
    pass


@case
def root_models_pass_the_decorator() -> object:
    def fn(params: Items) -> Items: ...

    return decorate(fn)


@case
def decorator_returns_function_unchanged() -> object:
    def fn(params: P) -> R:
        return R(b=params.a)

    returned = task(name="t", owner_email="o")(fn)
    return (returned is fn, fn(P(a=3)).b, fn.__perago_task__.controls.retry.count)


@case
def description_and_defaults() -> object:
    def fn(params: P) -> R: ...

    task(name="t", owner_email="o", description="")(fn)
    d = fn.__perago_task__
    return (d.description, d.strict_params, d.workspace, d.metrics, d.controls.response_timeout_seconds)


# -- module loading ------------------------------------------------------------------


@case
def load_target_with_slash() -> object:
    return load_module_task("authoring_tasks/check_license")


@case
def load_target_py_suffix() -> object:
    return load_module_task("authoring_tasks.check_license.py")


@case
def load_target_object_path() -> object:
    return load_module_task("authoring_tasks.check_license:check_license")


@case
def load_target_empty() -> object:
    return load_module_task("")


@case
def load_target_bad_segment() -> object:
    return load_module_task("authoring_tasks..check_license")


@case
def load_target_digit_segment() -> object:
    return load_module_task("authoring_tasks.1x")


@case
def load_target_missing_module() -> object:
    return load_module_task("authoring_tasks.does_not_exist")


@case
def load_no_task() -> object:
    return load_module_task("authoring_loading.no_task")


@case
def load_two_tasks() -> object:
    return load_module_task("authoring_loading.two_tasks")


@case
def load_reexport_only() -> object:
    return load_module_task("authoring_loading.reexport")


@case
def load_reexport_plus_own() -> object:
    return load_module_task("authoring_loading.reexport_plus_own").name


@case
def load_same_definition_twice() -> object:
    return load_module_task("authoring_tasks.check_license") is load_module_task("authoring_tasks.check_license")


@case
def load_import_error_propagates() -> object:
    return load_module_task("authoring_loading.bad_prefix")


# -- guardrail helpers ---------------------------------------------------------------


def _guardrail(helper: Callable[..., Any], *args: Any, **kwargs: Any) -> object:
    g = helper(*args, **kwargs)
    return (g.kind, g.path, g.min_count, g.max_count, g.label())


GUARD_PATHS: dict[str, object] = {
    "plain": "raw/input.csv",
    "spaces_kept": " a ",
    "tilde": "~/x",
    "digit_colon": "1:/x",
    "glob_chars": "raw/**/[ab]?*.wav",
    "empty": "",
    "dot": ".",
    "dot_prefix": "./a",
    "dot_middle": "a/./b",
    "double_slash": "a//b",
    "trailing_slash": "raw/",
    "parent": "a/../b",
    "backslash": "a\\b",
    "absolute": "/a",
    "drive": "C:/x",
    "drive_like": "a:b/c",
    "posix_dot": PurePosixPath("."),
    "posix_abs": PurePosixPath("/a"),
    "path_trailing": Path("raw/"),
    "path_parent": Path("a/../b"),
    "windows_sep": PureWindowsPath("a\\b"),
    "windows_drive": PureWindowsPath("C:/x"),
    "windows_rooted": PureWindowsPath("\\x"),
    "windows_relative_drive": PureWindowsPath("C:x"),
    "path_drive_like": Path("C:/x"),
}

for _label, _value in GUARD_PATHS.items():
    for _helper in (require_file, forbid_glob):

        def _path_case(helper: Callable[..., Any] = _helper, value: object = _value) -> object:
            return _guardrail(helper, value)

        CASES[f"guard_{_helper.__name__}_{_label}"] = _path_case


@case
def guard_require_dir() -> object:
    return _guardrail(require_dir, "stems")


@case
def guard_require_glob_default() -> object:
    return _guardrail(require_glob, "*.wav")


@case
def guard_require_glob_none_min() -> object:
    return _guardrail(require_glob, "*.wav", min_count=None, max_count=3)


@case
def guard_require_glob_zero_zero() -> object:
    return _guardrail(require_glob, "*.wav", min_count=0, max_count=0)


@case
def guard_require_glob_negative_min() -> object:
    return _guardrail(require_glob, "*.wav", min_count=-1)


@case
def guard_require_glob_negative_max() -> object:
    return _guardrail(require_glob, "*.wav", max_count=-1)


@case
def guard_require_glob_min_above_max() -> object:
    return _guardrail(require_glob, "*.wav", min_count=3, max_count=2)


@case
def guard_require_glob_bad_path_first() -> object:
    return _guardrail(require_glob, "/abs", min_count=3, max_count=2)


@case
def guard_require_file_bounds_keyword() -> object:
    return require_file("a", min_count=1)  # type: ignore[call-arg]


@case
def guard_forbid_glob_bounds_keyword() -> object:
    return forbid_glob("a", max_count=1)  # type: ignore[call-arg]


@case
def spec_raw_dict_guardrail() -> object:
    spec = WorkspaceSpec(pre=[{"kind": "require_glob", "path": "/x//y"}])
    return spec.pre


@case
def spec_raw_dict_good() -> object:
    spec = WorkspaceSpec(post=[{"kind": "require_glob", "path": "x/*", "max_count": "4"}])
    return _guardrail(lambda: spec.post[0])


@case
def spec_raw_dict_bounds_on_file() -> object:
    return WorkspaceSpec(pre=[{"kind": "require_file", "path": "x", "min_count": 1}])


@case
def spec_raw_dict_bad_kind() -> object:
    return WorkspaceSpec(pre=[{"kind": "require_link", "path": "x"}])


@case
def spec_raw_dict_min_above_max() -> object:
    return WorkspaceSpec(post=[{"kind": "require_glob", "path": "x", "min_count": 2, "max_count": 1}])


@case
def spec_raw_dict_extra_key() -> object:
    spec = WorkspaceSpec(pre=[{"kind": "forbid_glob", "path": "x", "note": "ignored?"}])
    return _guardrail(lambda: spec.pre[0])


@case
def spec_unknown_field() -> object:
    return WorkspaceSpec(prefix="/", readonly=True)


@case
def spec_is_frozen() -> object:
    spec = WorkspaceSpec()
    spec.read_only = True  # type: ignore[misc]
    return spec.read_only


@case
def spec_defaults() -> object:
    spec = WorkspaceSpec()
    return (spec.prefix, spec.pre, spec.post, spec.read_only)


PREFIXES = {
    "root": "/",
    "root_spaced": "  /  ",
    "leading": "/audio/render",
    "double_leading": "//a",
    "spaced": "  a/b ",
    "trailing": "audio/render/",
    "double_inner": "//a//b",
    "dot": "a/./b",
    "parent_first": "../raw",
    "parent_last": "a/..",
    "empty": "",
    "blank": "   ",
    "slashes_only": "///",
    "backslash": "a\\b",
    "backslash_spaced": " \\ ",
    "drive": "C:/x",
    "dot_only": ".",
    "inner_space": "a /b",
    "slash_then_space": "/ a",
    "space_then_slash": " /a",
}

for _label, _value in PREFIXES.items():

    def _prefix_case(value: str = _value) -> object:
        return WorkspaceSpec(prefix=value).prefix

    CASES[f"prefix_{_label}"] = _prefix_case


@case
def prefix_not_a_string() -> object:
    return WorkspaceSpec(prefix=1)


# -- runtime guardrail checks --------------------------------------------------------


def _check(phase: str, guardrails: list[Any]) -> object:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "raw").mkdir()
        (root / "raw" / "a.wav").write_bytes(b"x")
        (root / "raw" / "b.wav").write_bytes(b"x")
        (root / "raw" / "sub").mkdir()
        (root / "raw" / "sub" / "c.wav").write_bytes(b"x")
        (root / ".hidden.json").write_text("{}")
        (root / "link.wav").symlink_to(root / "raw" / "a.wav")
        try:
            check_guardrails(root, guardrails, phase)
        except GuardrailViolation as exc:
            return f"violation: {exc}"
        return "held"


GUARD_CHECKS: dict[str, tuple[str, list[Any]]] = {
    "file_ok": ("pre", [require_file("raw/a.wav")]),
    "file_symlink_ok": ("pre", [require_file("link.wav")]),
    "file_missing": ("pre", [require_file("raw/x.wav")]),
    "file_is_dir": ("post", [require_file("raw")]),
    "dir_ok": ("post", [require_dir("raw/sub")]),
    "dir_missing": ("post", [require_dir("stems")]),
    "dir_is_file": ("pre", [require_dir("raw/a.wav")]),
    "glob_ok": ("pre", [require_glob("raw/*.wav", max_count=2)]),
    "glob_below_min": ("pre", [require_glob("raw/*.flac")]),
    "glob_above_max": ("post", [require_glob("raw/**/*.wav", max_count=2)]),
    "glob_counts_dirs": ("post", [require_glob("raw/*", min_count=4)]),
    "glob_hidden_counted": ("pre", [forbid_glob("*.json")]),
    "glob_zero_zero": ("pre", [require_glob("raw/*.wav", min_count=0, max_count=0)]),
    "forbid_ok": ("post", [forbid_glob("**/*.partial")]),
    "forbid_matches": ("post", [forbid_glob("raw/**")]),
    "first_failure_wins": ("pre", [require_file("nope"), require_dir("nope")]),
    "order_after_pass": ("post", [require_file("raw/a.wav"), forbid_glob("raw/*.wav")]),
    "custom_phase": ("during", [require_dir("nope")]),
    "empty_list": ("pre", []),
}

for _label, (_phase, _guards) in GUARD_CHECKS.items():

    def _check_case(phase: str = _phase, guards: list[Any] = _guards) -> object:
        return _check(phase, guards)

    CASES[f"check_{_label}"] = _check_case


# -- controls ------------------------------------------------------------------------


@case
def controls_defaults() -> object:
    c = TaskControls()
    return (c.retry.model_dump(), c.timeout.model_dump(), c.limits.model_dump(), c.publish_budget)


@case
def controls_coercion() -> object:
    c = TaskControls(retry={"count": "3", "delay_seconds": 3.0, "jitter_ms": True})
    return (c.retry.count, c.retry.delay_seconds, c.retry.jitter_ms)


@case
def controls_fractional() -> object:
    return RetryPolicy(count=3.5)


@case
def controls_retry_count_above_max() -> object:
    return RetryPolicy(count=11)


@case
def controls_retry_count_max() -> object:
    return RetryPolicy(count=10).count


@case
def controls_retry_logic_case() -> object:
    return RetryPolicy(logic="fixed")


@case
def controls_timeout_policy_wrong() -> object:
    return TimeoutPolicy(policy="NEVER")


@case
def controls_timeout_negative() -> object:
    return TimeoutPolicy(response_seconds=-1)


@case
def controls_timeout_no_cross_checks() -> object:
    return TimeoutPolicy(seconds=10, response_seconds=600).response_seconds


@case
def controls_unknown_field() -> object:
    return TaskControls(retries=1)


@case
def controls_nested_unknown_field() -> object:
    return TaskControls(retry={"counts": 1})


@case
def controls_response_timeout_ignores_budget() -> object:
    c = TaskControls(timeout={"response_seconds": 7}, publish_budget=PublishBudget(**BUDGET))
    return (c.response_timeout_seconds, c.publish_budget.response_timeout_seconds)


@case
def limits_pair_frequency_only() -> object:
    return ExecutionLimits(rate_limit_frequency_in_seconds=1)


@case
def limits_pair_count_only_zero() -> object:
    return ExecutionLimits(rate_limit_per_frequency=0)


@case
def limits_pair_ok() -> object:
    return ExecutionLimits(rate_limit_frequency_in_seconds=0, rate_limit_per_frequency=0).model_dump()


@case
def limits_negative() -> object:
    return ExecutionLimits(concurrent_exec_limit=-1)


@case
def budget_missing_fields() -> object:
    return PublishBudget(observed_merge_p99_seconds=1)


@case
def budget_not_covering() -> object:
    return PublishBudget(**{**BUDGET, "lakefs_merge_timeout_seconds": 29})


@case
def budget_exactly_covering() -> object:
    return PublishBudget(**{**BUDGET, "lakefs_merge_timeout_seconds": 30}).response_timeout_seconds


@case
def budget_zero_timeout() -> object:
    return PublishBudget(**{**BUDGET, "heartbeat_interval_seconds": 0})


@case
def budget_frozen() -> object:
    b = PublishBudget(**BUDGET)
    b.safety_margin_seconds = 1  # type: ignore[misc]
    return b.safety_margin_seconds


@case
def budget_extra() -> object:
    return PublishBudget(**BUDGET, margin=1)


@case
def metric_spec_defaults() -> object:
    return MetricSpec().model_dump()


@case
def metric_spec_unknown() -> object:
    return MetricSpec(latency=True)


# -- workspace references --------------------------------------------------------------

REF = {"repository": "mix-7781", "branch": "main", "refType": "commit", "ref": "a41f09c2d7"}


@case
def ref_ok() -> object:
    return WorkspaceInput.model_validate(REF).model_dump()


@case
def ref_published_output() -> object:
    out = WorkspaceInput.model_validate(REF).published_output("c0d5e6b190")
    return (type(out).__name__, out.model_dump())


@case
def ref_published_output_blank() -> object:
    return WorkspaceInput.model_validate(REF).published_output(" ")


@case
def ref_snake_case_key() -> object:
    raw = {key: value for key, value in REF.items() if key != "refType"}
    return WorkspaceInput.model_validate({**raw, "ref_type": "commit"})


@case
def ref_branch_type() -> object:
    return WorkspaceInput.model_validate({**REF, "refType": "branch"})


@case
def ref_empty() -> object:
    return WorkspaceInput.model_validate({**REF, "repository": ""})


@case
def ref_blank() -> object:
    return WorkspaceInput.model_validate({**REF, "branch": "  "})


@case
def ref_not_object() -> object:
    return WorkspaceInput.model_validate("mix-7781@main")


# -- runtime contract ------------------------------------------------------------------


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: int


class LaxParams(BaseModel):
    n: int
    inner: Inner
    items: list[Inner] = []


class Result(BaseModel):
    count: int
    label: str | None = None


class AliasResult(BaseModel):
    total_count: int = Field(alias="totalCount")


class Other(BaseModel):
    count: int


_ACTIVE_RESULT: dict[str, object] = {}


def _free_task(strict: bool, output: type[BaseModel] = Result) -> Any:
    def body(params: LaxParams) -> Result:
        _ACTIVE_RESULT["params"] = params.model_dump()
        return _ACTIVE_RESULT["value"]  # type: ignore[return-value]

    body.__annotations__["return"] = output
    task(name="contract.free", owner_email="o", strict_params=strict)(body)
    return body.__perago_task__


def _workspace_task() -> Any:
    def body(workspace: Path, params: LaxParams) -> Result:
        return Result(count=params.n)

    task(name="contract.ws", owner_email="o", workspace=WorkspaceSpec())(body)
    return body.__perago_task__


def _run_free(definition: Any, input_data: object, returned: object = None) -> object:
    """Input split + params validation + body + result validation, as an attempt would do it."""
    _ACTIVE_RESULT.clear()
    _ACTIVE_RESULT["value"] = returned
    if hasattr(definition, "contract"):
        contract = definition.contract
        _, raw_params = contract.split_input(input_data)
        params = contract.validate_params(raw_params)
        output = contract.output(contract.validate_result(definition.fn(params)))
    else:
        output = perago.invoke_workspace_free_task(definition, input_data)
    return (_ACTIVE_RESULT.get("params"), output)


def _ws_output(definition: Any, input_workspace: object, ref: str, returned: object) -> object:
    if hasattr(definition, "contract"):
        contract = definition.contract
        workspace = contract.validate_workspace(input_workspace)
        result = contract.validate_result(returned)
        return contract.output(result, workspace.published_output(ref))
    return perago.build_workspace_task_output(definition, input_workspace, ref, returned)


def _ws_input_split(definition: Any, input_data: object) -> object:
    if hasattr(definition, "contract"):
        raw_workspace, raw_params = definition.contract.split_input(input_data)
        return definition.contract.validate_workspace(raw_workspace).ref
    return perago.invoke_workspace_task_body(definition, input_data, Path("/nonexistent"))


GOOD = {"n": "2", "inner": {"x": 1}}


@case
def contract_params_lax_coercion() -> object:
    return _run_free(_free_task(False), {"params": GOOD}, Result(count=1))


@case
def contract_extra_top_level_keys_ignored() -> object:
    return _run_free(_free_task(False), {"params": GOOD, "workspace": "stray", "x": 1}, {"count": 1})


@case
def contract_missing_params() -> object:
    return _run_free(_free_task(False), {"workspace": {}}, {"count": 1})


@case
def contract_params_null() -> object:
    return _run_free(_free_task(False), {"params": None}, {"count": 1})


@case
def contract_params_invalid() -> object:
    return _run_free(_free_task(False), {"params": {"n": "x", "inner": {}}}, {"count": 1})


@case
def contract_extras_dropped_everywhere() -> object:
    params = {"n": 1, "zz": 1, "inner": {"x": 1, "y": 2}, "items": [{"x": 2, "q": 1}]}
    return _run_free(_free_task(False), {"params": params}, {"count": 1})


@case
def contract_strict_extra_top() -> object:
    return _run_free(_free_task(True), {"params": {**GOOD, "zz": 1}}, {"count": 1})


@case
def contract_strict_extra_nested() -> object:
    params = {"n": 1, "inner": {"x": 1}, "items": [{"x": 2, "q": 1}]}
    return _run_free(_free_task(True), {"params": params}, {"count": 1})


@case
def contract_result_mapping() -> object:
    return _run_free(_free_task(False), {"params": GOOD}, {"count": "4"})


@case
def contract_result_extra_forbidden() -> object:
    return _run_free(_free_task(False), {"params": GOOD}, {"count": 4, "extra": True})


@case
def contract_result_other_model_class() -> object:
    return _run_free(_free_task(False), {"params": GOOD}, Other(count=5))


@case
def contract_result_invalid_instance() -> object:
    with warnings.catch_warnings():
        # Dumping the unvalidated instance makes Pydantic warn about the serialized value.
        warnings.simplefilter("ignore")
        return _run_free(_free_task(False), {"params": GOOD}, Result.model_construct(count="many"))


@case
def contract_result_none() -> object:
    return _run_free(_free_task(False), {"params": GOOD}, None)


@case
def contract_result_alias_instance() -> object:
    return _run_free(_free_task(False, AliasResult), {"params": GOOD}, AliasResult(totalCount=3))


@case
def contract_result_alias_mapping() -> object:
    return _run_free(_free_task(False, AliasResult), {"params": GOOD}, {"totalCount": 3})


@case
def contract_workspace_output() -> object:
    return _ws_output(_workspace_task(), REF, "c0d5e6b190", Result(count=2, label="é"))


@case
def contract_workspace_output_bad_result() -> object:
    return _ws_output(_workspace_task(), REF, "c0d5e6b190", {"count": 2, "other": 1})


@case
def contract_workspace_input_missing_workspace() -> object:
    return _ws_input_split(_workspace_task(), {"params": GOOD})


@case
def contract_workspace_input_missing_params() -> object:
    return _ws_input_split(_workspace_task(), {"workspace": REF})


@case
def contract_workspace_input_bad_ref() -> object:
    return _ws_input_split(_workspace_task(), {"workspace": {**REF, "ref": ""}, "params": GOOD})
