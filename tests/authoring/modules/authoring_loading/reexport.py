"""Only re-exports a task declared elsewhere: it declares none itself."""

from authoring_tasks.check_license import check_license

__all__ = ["check_license"]
