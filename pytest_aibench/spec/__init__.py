"""Spec files: load, validate, rewrite FAI-PEP's legacy forms, expand into cases. Pure."""

from .load import load_cases, load_cases_from, merge_meta, spec_kind
from .model import FORMAT_FRAMEWORKS, Case, FileRef
from .placeholders import apply_string_map, fill, parse_string_map
from .reader import SPEC_SUFFIXES, read_spec_data

__all__ = [
    "FORMAT_FRAMEWORKS",
    "SPEC_SUFFIXES",
    "Case",
    "FileRef",
    "apply_string_map",
    "fill",
    "load_cases",
    "load_cases_from",
    "merge_meta",
    "parse_string_map",
    "read_spec_data",
    "spec_kind",
]
