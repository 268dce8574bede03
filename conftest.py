"""Repository-level test configuration: the plugin's own tests drive pytest through pytester."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Not `pytest_plugins = ["pytester"]`: pytest refuses that in a conftest that is not at the
    # rootdir, which is what this file becomes when a user runs our specifications/ from elsewhere.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
