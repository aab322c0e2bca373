"""A field without a JSON schema: Pydantic's schema error is reported."""

from collections.abc import Callable

from pydantic import BaseModel

from perago import task


class HookParams(BaseModel):
    hook: Callable[[int], int] | None = None


class HookResult(BaseModel):
    ok: bool


@task(name="hooks.run", owner_email="hooks@example.net")
def run(params: HookParams) -> HookResult:
    return HookResult(ok=True)
