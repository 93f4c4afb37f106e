"""Tests of the Ansible content: lint, molecule scenarios and playbook runs."""
