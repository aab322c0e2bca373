"""Modules that exercise load_module_task's selection rules."""
