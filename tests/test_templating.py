"""Where the templates are found: inside the installed package first, else beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbops import templating

ROOT = Path(__file__).resolve().parent.parent


def test_templates_are_found_installed_first_then_beside_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert templating.template_dirs() == [ROOT / "templates"]
    installed = tmp_path / "nbops" / "templates"
    installed.mkdir(parents=True)
    monkeypatch.setattr(templating, "CANDIDATES", (installed, ROOT / "templates"))
    assert templating.template_dirs() == [installed, ROOT / "templates"]
    assert templating.templates_dir() == installed
    monkeypatch.setattr(templating, "CANDIDATES", (tmp_path / "missing",))
    with pytest.raises(FileNotFoundError, match="nbops's templates are missing"):
        templating.template_dirs()


def test_code_templates_keep_text_and_html_templates_escape_it() -> None:
    code = templating.new_environment().from_string("{{ x }}\n")
    page = templating.new_environment(html=True).from_string("{{ x }}")
    assert code.render(x="a < b") == "a < b\n"
    assert page.render(x="a < b") == "a &lt; b"
    with pytest.raises(Exception, match="'y' is undefined"):
        templating.new_environment().from_string("{{ y }}").render()
