"""The public namespace: exactly the names in __all__, each documented."""

from __future__ import annotations

import inspect

import exopk


def test_all_names_exist_and_are_documented():
    for name in exopk.__all__:
        obj = getattr(exopk, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            doc = inspect.getdoc(obj)
            assert doc and len(doc) > 20, f"exopk.{name} has no docstring"


def test_public_functions_document_their_parameters():
    for name in ("simulate", "simulate_batch", "load_parameters", "particles_from_protein", "plot_organ_curves"):
        doc = inspect.getdoc(getattr(exopk, name))
        for parameter in inspect.signature(getattr(exopk, name)).parameters:
            assert parameter in doc, f"exopk.{name}: parameter `{parameter}` is not documented"


def test_no_private_module_is_exported():
    assert all(not name.startswith("_") for name in exopk.__all__)
    assert sorted(exopk.__all__) == sorted(set(exopk.__all__))
