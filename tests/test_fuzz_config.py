"""Property-based tests of the configuration parser: any input gives a valid, round-tripping RunConfig or one ConfigError sentence."""

import json
import math
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gan_core import families
from gan_core.config import DEFAULT_FAMILY, RunConfig, field_info, field_names
from gan_core.dashboard.runs_table import run_row
from gan_core.errors import ConfigError, RunError
from gan_core.store.runs import RunStore

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True)

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(field_names()) | st.text(max_size=16)


def valid_value(name: str, family: str = DEFAULT_FAMILY) -> st.SearchStrategy:
    """Values the field of this family's configs accepts on its own, read from its metadata."""
    info = field_info(name, family)
    if "choices" in info:
        return st.sampled_from(info["choices"])
    if info["type"] == "bool":
        return st.booleans()
    if info["type"] == "int":
        return st.integers(info["min"], info["max"])
    if info["type"] == "float":
        return st.floats(info["min"], info["max"], allow_nan=False) | st.integers(math.ceil(info["min"]), int(info["max"]))
    if name == "name":
        return st.text(max_size=info["max_len"])
    if "pattern" in info:
        return st.from_regex(info["pattern"], fullmatch=True)
    return st.text(min_size=1, max_size=30).filter(str.strip)


def invalid_value(name: str, family: str = DEFAULT_FAMILY) -> st.SearchStrategy:
    """Values the field refuses: out of range, of the wrong type, not a choice, too long."""
    info = field_info(name, family)
    wrong_type = st.none() | st.lists(JSON_SCALARS, max_size=2) | st.dictionaries(st.text(max_size=3), JSON_SCALARS, max_size=2)
    if "choices" in info:
        return wrong_type | st.booleans() | st.integers() | st.text().filter(lambda t: t not in info["choices"])
    if info["type"] == "bool":
        return wrong_type | st.integers() | st.floats() | st.text()
    if info["type"] == "str":
        bad_text = st.text(min_size=61, max_size=80) if name == "name" else st.text(" \t\n\r", max_size=5)
        if "pattern" in info:  # blank text is refused unless the pattern takes it (diffaugment's "" turns it off)
            bad_text = (bad_text | st.text()).filter(lambda t: not re.fullmatch(info["pattern"], t))
        return wrong_type | st.booleans() | st.integers() | st.floats() | bad_text
    below, above = info["min"], info["max"]
    numbers = (
        st.integers(max_value=math.ceil(below) - 1)
        | st.integers(min_value=int(above) + 1)
        | st.floats(max_value=below, exclude_max=True)
        | st.floats(min_value=above, exclude_min=True)
        | st.sampled_from([math.nan, math.inf, -math.inf])
    )
    if info["type"] == "int":
        numbers = numbers | st.floats(below, above).filter(lambda v: not float(v).is_integer())
    return wrong_type | st.booleans() | st.text() | numbers


@st.composite
def valid_configs(draw) -> dict:
    """A dict of some fields of one family (named when it is not the default), each valid, that passes the cross-field rules too."""
    family = draw(st.sampled_from(families.names()))
    names = [name for name in field_names(family) if name != "family"]
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    data = {name: draw(valid_value(name, family)) for name in chosen}
    if family != DEFAULT_FAMILY:
        data["family"] = family
    merged = {**RunConfig(family=family).to_dict(), **data}
    assume(merged["steps"] or merged["epochs"])
    assume(merged.get("loss") != "wgan-gp" or merged["gp_weight"])
    return data


def assert_one_sentence(message: str) -> None:
    """A user-facing message: non-empty, one line, short, ending like a sentence."""
    assert message.strip(), "empty message"
    assert len(message.splitlines()) == 1, f"message spans lines: {message!r}"
    assert len(message) < 1000, f"message too long ({len(message)} chars)"
    assert message.endswith((".", "?")), message


def outcome(make) -> RunConfig | None:
    """Call make(): a valid config must round-trip exactly through JSON; a refusal must be one ConfigError sentence."""
    try:
        config = make()
    except ConfigError as exc:
        assert_one_sentence(str(exc))
        return None
    assert isinstance(config, RunConfig)
    text = config.to_json()
    again = RunConfig.from_json(text)
    assert again == config and again.to_json() == text
    assert [type(v) for v in again.to_dict().values()] == [type(v) for v in config.to_dict().values()]
    return config


@FUZZ
@given(JSON_VALUES)
def test_any_json_value_is_a_config_or_one_sentence(value):
    outcome(lambda: RunConfig.from_dict(value))
    outcome(lambda: RunConfig.from_json(json.dumps(value)))


@FUZZ
@given(st.dictionaries(KEYS, JSON_VALUES | st.integers() | st.floats() | st.text(), max_size=6))
def test_any_json_object_is_a_config_or_one_sentence(data):
    config = outcome(lambda: RunConfig.from_dict(data))
    if config is not None:
        assert all(getattr(config, key) == value for key, value in data.items())


@FUZZ
@given(valid_configs())
def test_every_valid_combination_loads_and_round_trips(data):
    config = outcome(lambda: RunConfig.from_dict(data))
    assert config is not None
    assert RunConfig.from_json(json.dumps(data)) == config


@FUZZ
@given(st.data())
def test_every_invalid_field_value_is_refused_naming_the_field(data):
    family = data.draw(st.sampled_from(families.names()))
    name = data.draw(st.sampled_from([name for name in field_names(family) if name != "family"]))
    bad = data.draw(invalid_value(name, family))
    with pytest.raises(ConfigError) as refused:
        RunConfig.from_dict({"family": family, name: bad})
    assert_one_sentence(str(refused.value))
    assert str(refused.value).startswith(name)


@FUZZ
@given(st.text().filter(lambda key: key not in field_names()), JSON_SCALARS)
def test_unknown_keys_are_refused_on_one_line(key, value):
    with pytest.raises(ConfigError, match="^Unknown configuration key") as refused:
        RunConfig.from_dict({"epochs": 2, key: value})
    assert_one_sentence(str(refused.value))


JSONISH = st.text(alphabet=st.sampled_from(list('{}[]":,.-+eE0123456789 \n\\ntrufalsNIiy') + ["\u2028", "\x00"]), max_size=60)


@FUZZ
@given(st.text() | JSONISH)
def test_any_text_is_a_config_or_one_sentence(text):
    outcome(lambda: RunConfig.from_json(text))


@FUZZ
@given(valid_configs(), st.integers(0, 10_000), st.sampled_from(["delete", "insert", "replace"]), st.characters())
def test_hand_edited_json_is_a_config_or_one_sentence(data, position, edit, char):
    text = json.dumps(data, indent=2)
    position %= len(text) + 1
    if edit == "delete":
        text = text[:position] + text[position + 1 :]
    elif edit == "insert":
        text = text[:position] + char + text[position:]
    else:
        text = text[:position] + char + text[position + 1 :]
    outcome(lambda: RunConfig.from_json(text))


OVERRIDE = st.builds(lambda key, value: f"{key}={value}", KEYS, st.text(max_size=12) | st.integers() | st.floats() | st.booleans())


@FUZZ
@given(st.lists(OVERRIDE | st.text(max_size=20), max_size=4))
def test_any_override_list_is_a_config_or_one_sentence(assignments):
    outcome(lambda: RunConfig().with_overrides(assignments))


@FUZZ
@given(valid_configs())
def test_every_valid_config_can_be_typed_as_overrides(data):
    config = RunConfig.from_dict(data)
    typed = config.with_overrides([f"{key}={value}" for key, value in config.to_dict().items()])
    free_text = {key: value.strip() for key, value in config.to_dict().items() if isinstance(value, str)}  # typed values lose their outer spaces
    assert typed == config.replace(**free_text)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,  # deeper than the JSON decoder's recursion limit
        '{"epochs": ' + "9" * 5000 + "}",  # more digits than Python converts to int
        '{"width": 1' + "0" * 400 + "}",  # an int too large for a float comparison
        '{"width": 1e999}',  # parsed as infinity
        '{"name": NaN}',
        '{"a\\nb": 1}',  # an unknown key with a line break
        '{"loss": "' + "x" * 10_000 + '"}',  # a huge bad value is cut in the message
    ],
    ids=["deep-nesting", "5000-digits", "int-beyond-float", "infinity", "nan", "key-with-newline", "huge-string"],
)
def test_json_edge_cases_are_one_short_sentence(text):
    with pytest.raises(ConfigError) as refused:
        RunConfig.from_json(text)
    assert_one_sentence(str(refused.value))
    assert len(str(refused.value)) < 500


def test_huge_python_values_are_refused_without_printing_them():
    with pytest.raises(ConfigError, match=r"^epochs must be an integer between 0 and 100000; got a value too large to show\.$"):
        RunConfig.from_dict({"epochs": 10**5000})
    with pytest.raises(ConfigError, match=r"^dropout must be a number between 0 and 0\.9; got 1000000000000.*\.\.\.\.$"):
        RunConfig.from_dict({"dropout": 10**400})


CONFIG_FILES = (
    st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | JSON_VALUES.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(KEYS, JSON_VALUES, max_size=4).map(lambda value: json.dumps(value).encode())
)


@settings(FUZZ, max_examples=60)
@given(CONFIG_FILES)
def test_a_hand_edited_config_json_shows_as_broken_and_the_other_runs_still_load(tmp_path_factory, content):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    good = store.create(RunConfig(name="good", epochs=3))
    edited = store.create(RunConfig(name="edited"))
    edited.config_path.write_bytes(content)
    before = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()}

    assert {run.id for run in store.list()} == {good.id, edited.id}
    assert good.config() == RunConfig(name="good", epochs=3)
    assert run_row(good)["status"] == "queued"
    row = run_row(edited)
    try:
        config = edited.config()
    except RunError as exc:
        assert_one_sentence(str(exc))
        assert str(exc).startswith(f"Run '{edited.id}' has a broken config.json: ")
        assert row["status"] == "broken" and row["message"] == str(exc)
    else:
        assert row["status"] == "queued" and row["name"] == config.name
    assert {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()} == before
