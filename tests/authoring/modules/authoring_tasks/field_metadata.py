"""Descriptions, examples, defaults (incl. dicts holding "title"/"properties" keys), a field called
`title`, json_schema_extra on fields and models, model docstrings and titles."""

from pydantic import BaseModel, ConfigDict, Field

from perago import task


class Part(BaseModel):
    """A part of a document; this docstring is model metadata and is stripped."""

    title: str = Field(description="Heading of the part", examples=["Intro"])
    properties: dict[str, str] = Field(default_factory=dict)


class DocumentParams(BaseModel):
    """Render a document."""

    title: str = Field(title="Custom Title", description="Document title")
    parts: list[Part] = Field(default=[], examples=[[{"title": "A", "properties": {}}]])
    layout: dict[str, object] = Field(
        default={"title": "kept?", "type": "object", "properties": {"title": {"title": "x"}}},
        description="Free-form layout hints",
    )
    page_size: str = Field(default="A4", pattern=r"^A[0-9]$", json_schema_extra={"x-unit": "iso216"})
    margin_mm: int = Field(default=20, ge=0, le=100, multiple_of=5)
    code: str = Field(min_length=2, max_length=8)
    lead: Part | None = Field(default=None, title="Lead part", description="Optional leading part")


class DocumentResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"x-model": "stripped"}, title="Result Title")

    pages: int = Field(examples=[1, 2], description="Number of pages")
    title: str


@task(name="docs.render", owner_email="docs@example.net", description="Render a document to pages.")
def render(params: DocumentParams) -> DocumentResult:
    return DocumentResult(pages=1, title=params.title)
