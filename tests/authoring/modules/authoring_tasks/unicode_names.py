"""Non-ASCII task name, description, property names and descriptions (escaped as \\uXXXX)."""

from pydantic import BaseModel, Field

from perago import task


class Größe(BaseModel):
    """Maße eines Objekts."""

    breite_cm: float = Field(description="Breite in Zentimetern — gemessen")
    höhe: float = Field(default=1.5, description="高さ")


class Messung(BaseModel):
    größe: Größe
    etikett: str = Field(default="ünbekannt", examples=["café", "😀"])


class Ergebnis(BaseModel):
    volumen: float = Field(alias="volumen_m³", description="Rauminhalt")


@task(name="maße.prüfen 😀", owner_email="größe@example.net", description="Prüft Maße — schnell ✓")
def pruefen(params: Messung) -> Ergebnis:
    return Ergebnis.model_validate({"volumen_m³": params.größe.breite_cm})
