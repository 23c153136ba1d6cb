"""The README is the newcomer's entry point: its commands and tables must match the code."""

import re
from pathlib import Path

from studio.config import StudioConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def bash_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    test_command = next(b for b in bash_blocks() if "pytest" in b)
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_has_the_two_setup_commands_first():
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", setup, re.S)
    assert len(commands) == 2
    assert "python app.py" in commands[0] and "pytest" in commands[1]


def test_configuration_table_is_current():
    assert StudioConfig.markdown_table() in README, "regenerate it: python -m studio config --markdown"
