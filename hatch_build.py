"""Build hook: the built web app (web/dist) goes into the wheel as ``diquis/_web``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class WebAppHook(BuildHookInterface):  # type: ignore[misc]
    """Adds web/dist to a regular wheel when it is built (``make wheel`` builds it first)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Force-include the built web app, if any (editable installs use ./web/dist)."""
        dist = Path(self.root) / "web" / "dist"
        if self.target_name == "wheel" and version != "editable" and (dist / "index.html").is_file():
            build_data["force_include"][str(dist)] = "diquis/_web"
