"""Task modules used by the authoring tests; each module is one TaskDef golden (see tests/authoring/golden)."""
