from pydantic import BaseModel

from perago import task


class Greeting(BaseModel):
    name: str


class Reply(BaseModel):
    text: str


@task(name="cli.greet", owner_email="team@example.com", description="Say hello")
def greet(params: Greeting) -> Reply:
    return Reply(text=f"hello {params.name}")
