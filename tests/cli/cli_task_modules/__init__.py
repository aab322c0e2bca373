"""Task modules the CLI tests point `perago check` / `perago extract` at, one case each."""
