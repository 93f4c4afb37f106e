"""Build hook: ship the Ansible content (ansible.cfg, playbooks/, roles/) inside the wheel.

The content stays at the top of the repository, where `ansible-playbook -i inventory/<env>
playbooks/<x>.yml` finds it; a wheel install has no checkout, so the build copies it to
`coordinator/_ansible/`, which `coordinator.config.default_ansible_dir` falls back to.
Editable installs keep using the checkout itself. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
ANSIBLE_CONTENT = ("ansible.cfg", "playbooks", "roles")
# Test scaffolding that a deploy never reads.
NOT_SHIPPED = shutil.ignore_patterns("molecule", "__pycache__", "*.pyc")


class BuildPyWithAnsibleContent(build_py):
    """`build_py` that also copies the Ansible content into the built package."""

    def run(self) -> None:
        if not getattr(self, "editable_mode", False):
            # A build in a checkout reuses build/lib: a module deleted from the source
            # would still be in it and go into the wheel. Start from an empty one.
            shutil.rmtree(Path(self.build_lib) / "coordinator", ignore_errors=True)
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "coordinator" / "_ansible"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in ANSIBLE_CONTENT:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=NOT_SHIPPED)
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithAnsibleContent})
