"""Task modules the runtime tests start as real workers (one task per module)."""
