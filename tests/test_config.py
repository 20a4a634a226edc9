"""RunConfig: validation messages for every field, JSON round trips, overrides and presets."""

import json

import pytest

from gan_core.config import (
    RunConfig,
    config_fields,
    field_info,
    field_names,
    load_config,
    load_preset,
    parse_assignment,
    preset_names,
)
from gan_core.errors import ConfigError


def test_defaults_are_valid_and_round_trip_through_json():
    config = RunConfig()
    assert RunConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("name", ["tutorial-dcgan", "dcgan", "mlp-gan", "cgan", "wgan-gp"])
def test_every_required_preset_ships_and_round_trips(name):
    assert name in preset_names()
    config = load_preset(name)
    assert RunConfig.from_json(config.to_json()) == config
    assert load_config(name) == config


def test_eval_every_is_off_by_default_and_validated():
    assert RunConfig().eval_every == 0 and all(load_preset(name).eval_every == 0 for name in preset_names())
    info = field_info("eval_every")
    assert (info["group"], info["min"], info["max"]) == ("schedule", 0, 1_000_000)
    assert RunConfig.from_dict({"steps": 10}).eval_every == 0  # configs saved before the field existed still load
    with pytest.raises(ConfigError, match="eval_every must be an integer between 0 and 1e\\+06; got -1"):
        RunConfig(eval_every=-1)


def test_tutorial_preset_is_faithful_to_the_tensorflow_tutorial():
    config = load_preset("tutorial-dcgan")
    assert (config.family, config.loss, config.batch_size, config.latent_dim) == ("dcgan", "bce", 256, 100)
    assert config.g_lr == config.d_lr == 1e-4
    assert config.width == 1.0 and config.batch_norm and config.dropout == 0.3


def test_presets_differ_where_they_should():
    assert load_preset("cgan").conditional
    assert load_preset("mlp-gan").family == "mlp"
    wgan = load_preset("wgan-gp")
    assert wgan.loss == "wgan-gp" and wgan.d_steps == 5 and wgan.gp_weight > 0


# Every numeric field: one value below its range and one above, each named in the message.
NUMERIC = [f for f in config_fields() if f.type in ("int", "float")]


@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.name)
def test_numeric_field_out_of_range_names_field_value_and_range(field):
    low = field.metadata["min"] - (1 if field.type == "int" else field.metadata["min"] * 0.5 + 0.5)
    high = field.metadata["max"] + 1
    for bad in (low, high):
        with pytest.raises(ConfigError) as info:
            RunConfig(**{field.name: bad})
        message = str(info.value)
        assert field.name in message and repr(bad) in message
        assert f"{field.metadata['min']:g}" in message and f"{field.metadata['max']:g}" in message


@pytest.mark.parametrize("field", NUMERIC, ids=lambda f: f.name)
def test_numeric_field_of_wrong_type_is_refused(field):
    for bad in ("3", None, True):
        with pytest.raises(ConfigError, match=field.name):
            RunConfig(**{field.name: bad})


def test_int_field_refuses_floats_and_float_field_refuses_nan():
    with pytest.raises(ConfigError, match=r"batch_size must be an integer between 1 and 4096; got 64\.5"):
        RunConfig(batch_size=64.5)
    with pytest.raises(ConfigError, match="g_lr must be a number"):
        RunConfig(g_lr=float("nan"))


@pytest.mark.parametrize("name", ["family", "loss", "precision", "xla"])
def test_choice_fields_list_their_choices(name):
    with pytest.raises(ConfigError) as info:
        RunConfig(**{name: "nonsense"})
    message = str(info.value)
    assert name in message and "'nonsense'" in message
    for choice in field_info(name)["choices"]:
        assert choice in message


@pytest.mark.parametrize("name", ["conditional", "batch_norm", "spectral_norm"])
def test_bool_fields_refuse_strings_and_numbers(name):
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError, match=f"{name} must be true or false"):
            RunConfig(**{name: bad})


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="Set epochs or steps above 0"):
        RunConfig(epochs=0, steps=0)
    with pytest.raises(ConfigError, match="gp_weight must be above 0 with loss wgan-gp"):
        RunConfig(loss="wgan-gp", gp_weight=0.0)
    with pytest.raises(ConfigError, match="dataset must not be empty"):
        RunConfig(dataset="  ")
    with pytest.raises(ConfigError, match="name must be at most 60 characters"):
        RunConfig(name="x" * 61)
    with pytest.raises(ConfigError, match="dataset must be a string"):
        RunConfig(dataset=5)


def test_unknown_json_key_is_refused_with_a_suggestion():
    with pytest.raises(ConfigError, match="Unknown configuration key 'batchsize'. Did you mean 'batch_size'"):
        RunConfig.from_dict({"batchsize": 32})


def test_broken_json_and_non_objects_are_one_sentence():
    with pytest.raises(ConfigError, match="not valid JSON.*line 1"):
        RunConfig.from_json("{not json")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        RunConfig.from_json("[1, 2]")


def test_config_files(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3, "loss": "hinge"}))
    config = load_config(str(path))
    assert config.epochs == 3 and config.loss == "hinge"
    with pytest.raises(ConfigError, match=r"is neither a preset nor a configuration file; presets: cgan, cyclegan, dcgan, dcgan-colour, lapgan, mlp-gan, progan, restore, srgan, "):
        load_config(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match=r"^'dcgna' is neither a preset nor a configuration file; presets: .*wgan-gp\.$"):
        load_config("dcgna")
    with pytest.raises(ConfigError, match="Unknown preset"):
        load_preset("nope")


def test_overrides_are_typed_by_field():
    config = RunConfig().with_overrides(["epochs=3", "g_lr=1e-3", "conditional=true", "dataset=mnist", "width=1"])
    assert config.epochs == 3 and isinstance(config.epochs, int)
    assert config.g_lr == 1e-3 and config.conditional is True and config.dataset == "mnist"
    assert isinstance(config.width, float)


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs", "Overrides look like key=value"),
        ("epochs=two", "epochs must be a number; got 'two'"),
        ("epochs=1.5", "epochs must be an integer; got '1.5'"),
        ("conditional=maybe", "conditional must be true or false; got 'maybe'"),
        ("nope=1", "Unknown configuration key 'nope'"),
    ],
)
def test_bad_overrides(text, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig().with_overrides([text])


def test_replace_validates():
    with pytest.raises(ConfigError, match="epochs must be an integer"):
        RunConfig().replace(epochs=-1)


def test_every_field_has_help_and_group():
    for name in field_names():
        info = field_info(name)
        assert info["help"] and info["group"]


def test_parse_assignment_keeps_strings_with_equals_signs():
    assert parse_assignment("dataset=/data/a=b.npz") == ("dataset", "/data/a=b.npz")
