"""Placeholder while writing; replaced below."""
