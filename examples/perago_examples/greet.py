# examples/perago_examples/greet.py
from pydantic import BaseModel

from perago import task


class Greeting(BaseModel):
    name: str


class Reply(BaseModel):
    text: str


@task(name="examples.greet", owner_email="team@example.com")
def greet(params: Greeting) -> Reply:
    return Reply(text=f"hello {params.name}")
