"""The public namespaces: exactly the names in each __all__, each documented (docs/architecture.md)."""

from __future__ import annotations

import inspect
import warnings

import pytest

import exopk

NAMESPACES = (exopk, exopk.model, exopk.observe, exopk.analysis, exopk.io, exopk.plots)


def public(name: str):
    """The object a public name stands for, from the first namespace that offers it."""
    for namespace in NAMESPACES:
        if name in namespace.__all__:
            return getattr(namespace, name)
    raise AssertionError(f"{name} is in no public namespace")


@pytest.mark.parametrize("namespace", NAMESPACES, ids=lambda m: m.__name__)
def test_all_names_exist_and_are_documented(namespace):
    for name in namespace.__all__:
        obj = getattr(namespace, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            doc = inspect.getdoc(obj)
            assert doc and len(doc) > 20, f"{namespace.__name__}.{name} has no docstring"


def test_public_functions_document_their_parameters():
    for name in ("simulate", "simulate_batch", "load_parameters", "particles_from_protein", "plot_organ_curves"):
        function = public(name)
        doc = inspect.getdoc(function)
        for parameter in inspect.signature(function).parameters:
            assert parameter in doc, f"{name}: parameter `{parameter}` is not documented"


@pytest.mark.parametrize("namespace", NAMESPACES, ids=lambda m: m.__name__)
def test_no_private_name_is_exported(namespace):
    assert all(not name.startswith("_") for name in namespace.__all__)
    assert sorted(namespace.__all__) == sorted(set(namespace.__all__))


def test_the_top_level_holds_the_core_only():
    """Regression test for #12: 88 flat names became the core plus subpackages."""
    assert len(exopk.__all__) < 45
    for moved in ("nca", "fit", "simulate_label", "export_sbml", "plot_organ_curves", "scale_dose"):
        assert moved not in exopk.__all__


def test_an_old_top_level_name_still_works_and_says_where_it_went():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nca = exopk.nca
    assert nca is exopk.analysis.nca
    assert "exopk.analysis.nca" in str(caught[0].message)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        exopk.no_such_name  # noqa: B018
