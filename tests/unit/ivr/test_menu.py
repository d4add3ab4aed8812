"""Menu files: the default menu loads, mistakes are reported naming the node, and every
prompt the menus, flows and number speech use is in the prompt catalog."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ivr import speech
from ivr.flows import FLOW_PROMPTS, FLOWS, all_prompts
from ivr.menu import MenuError, load, load_for_center, parse

ROOT = Path(__file__).parents[3]
MENUS = ROOT / "ivr" / "menus"
CATALOG = ROOT / "prompts" / "catalog"


def _minimal(**node_overrides) -> dict:
    main = {"prompts": ["ivr/main-menu"], "keys": {"1": "bye"}}
    main.update(node_overrides)
    return {"nodes": {"main": main, "bye": {"kind": "action", "flow": "goodbye"}}}


def test_default_menu_loads():
    """The shipped menu is valid and modelled on the domain: 1 deposits, 2 loans, 3 policy, 0 agent."""
    menu = load(MENUS / "default.toml", FLOWS)
    main = menu.nodes["main"]
    assert set(main.keys) == {"1", "2", "3", "0"}
    assert menu.nodes[main.keys["3"]].kind == "notice"
    assert menu.nodes[main.keys["3"]].barge_in is False
    assert menu.nodes[main.keys["0"]].flow == "transfer"
    assert menu.nodes["language"].keys == {"1": "zh", "2": "en"}


def test_center_file_falls_back_to_default(tmp_path):
    """A center without its own file gets default.toml; with one, its own."""
    (tmp_path / "default.toml").write_text((MENUS / "default.toml").read_text("utf-8"), "utf-8")
    assert load_for_center(tmp_path, "demo", FLOWS).source.endswith("default.toml")
    (tmp_path / "demo.toml").write_text((MENUS / "default.toml").read_text("utf-8"), "utf-8")
    assert load_for_center(tmp_path, "demo", FLOWS).source.endswith("demo.toml")


@pytest.mark.parametrize("data,message", [
    (_minimal(keys={"1": "nowhere"}), "node 'main': key '1' leads to unknown node 'nowhere'"),
    (_minimal(keys={"*": "bye"}), "node 'main': key '*' is the repeat/back/main key"),
    (_minimal(kind="dance"), "node 'main': kind must be one of"),
    (_minimal(colour="red"), "node 'main': unknown field 'colour'"),
    (_minimal(prompts=["Main Menu!"]), "node 'main': prompts: 'Main Menu!' is not a prompt id"),
    (_minimal(first_digit_timeout=0), "node 'main': first_digit_timeout must be between"),
    (_minimal(hours="9-17"), "node 'main': hours must look like 09:00-17:00"),
    (_minimal(days=[0]), "node 'main': days must be ISO weekdays"),
    (_minimal(on_failures="ghost"), "node 'main': on_failures names unknown node 'ghost'"),
    (_minimal(barge_in=False), "node 'main': barge_in applies to notices"),
    ({"nodes": {"main": {"prompts": ["ivr/x"], "keys": {"1": "n"}},
                "n": {"kind": "notice", "prompts": ["ivr/y"], "next": "main", "barge_in": "no"}}},
     "node 'n': barge_in has the wrong type"),
    ({"nodes": {"main": {"kind": "action", "flow": "dance"}}}, "node 'main': flow 'dance'"),
    ({"nodes": {"main": {"prompts": ["ivr/x"], "keys": {"1": "a"}},
                "a": {"kind": "language", "lang": "zh", "next": "b"},
                "b": {"kind": "language", "lang": "en", "next": "a"}}},
     "next loops without a menu"),
    ({"menu": {"start": "nope"}, **_minimal()}, "[menu]: start names unknown node 'nope'"),
    ({"inputs": {"pin": {}}, **_minimal()}, "unknown input 'pin'"),
    ({"inputs": {"id": {"prompts": []}}, **_minimal()}, "input 'id': prompts may not be empty"),
])
def test_mistakes_name_the_node(data, message):
    """Each kind of mistake is refused at load with a message naming file and node."""
    with pytest.raises(MenuError) as e:
        parse(data, "x.toml", set(FLOWS))
    assert message in str(e.value)
    assert str(e.value).startswith("x.toml: ")


def test_bad_toml_is_reported(tmp_path):
    """A file that is not TOML is one clear MenuError."""
    bad = tmp_path / "default.toml"
    bad.write_text("[nodes\n", "utf-8")
    with pytest.raises(MenuError, match="not valid TOML"):
        load(bad, FLOWS)


def _catalog() -> dict:
    out: dict = {}
    for name in ("ivr.toml", "numbers.toml"):
        out.update(tomllib.loads((CATALOG / name).read_text("utf-8")))
    return out


def test_flow_prompts_list_is_complete():
    """FLOW_PROMPTS names exactly the prompt ids written in the flows and the engine."""
    found: set[str] = set()
    for path in [*(ROOT / "ivr" / "flows").glob("*.py"), ROOT / "ivr" / "engine.py"]:
        text = path.read_text("utf-8")
        if path.name == "__init__.py":
            text = text.split("FLOW_PROMPTS = ")[0]
        found.update(re.findall(r'"((?:ivr|unit|num)/[a-z0-9-]+)"', text))
    assert found == set(FLOW_PROMPTS)


def test_every_prompt_is_in_the_catalog():
    """Menus, flows and number speech only use prompts the catalog has, in zh and en."""
    catalog = _catalog()
    used = all_prompts(load(MENUS / "default.toml", FLOWS))
    assert set(speech.fragments()) <= used
    missing = sorted(used - set(catalog))
    assert not missing
    for pid in used:
        assert catalog[pid]["zh"] and catalog[pid]["en"] and catalog[pid]["used"]


def test_number_catalog_matches_the_speech_rules():
    """numbers.toml says exactly what ivr.speech.fragments() says each fragment is."""
    catalog = tomllib.loads((CATALOG / "numbers.toml").read_text("utf-8"))
    assert {k: {"zh": v["zh"], "en": v["en"]} for k, v in catalog.items()} == speech.fragments()
