"""README.md stays true to the code it documents."""

from pathlib import Path

from ember.pbg.config import describe_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_tables_match_the_schema():
    # regenerate with: python -c "from ember.pbg.config import describe_markdown as d; print(d())"
    assert describe_markdown() in README.read_text(encoding="utf-8")


def test_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]"' in ci and "python -m pytest -n 2 -q" in ci
    assert 'pip install -e ".[dev]" && python -m pytest -n 2 -q' in README.read_text()
