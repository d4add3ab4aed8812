"""Every prompt the IVR's menus and flows may play: the list ``prompts check`` needs audio for.

It lives here, not in prompts/, because the IVR plays the library and not the other way
round; the composition root hands it to the prompt tools.
"""
from __future__ import annotations

from pathlib import Path

from ivr import flows, menu


def referenced_prompts(config) -> set[str]:
    """Prompt ids of every menu file in ``[ivr] menus_dir`` and of the flows they start."""
    ids: set[str] = set()
    for path in sorted(Path(config.ivr.menus_dir).glob("*.toml")):
        ids |= flows.all_prompts(menu.load(path, flows.FLOWS))
    return ids
