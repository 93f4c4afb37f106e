"""coordinator: take a service release from a version number to verified production.

The public surface is small: the CLI (`coordinator.cli:main`), the error hierarchy in
`coordinator.errors`, and the configuration model in `coordinator.config`.
"""

__version__ = "0.1.0"

# The name on the package index (`coordinator` there is an unrelated project); the
# command and the import package stay `coordinator`.
DISTRIBUTION = "release-coordinator"
