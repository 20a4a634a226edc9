""".streamlit/config.toml: a local-only server with XSRF and CORS protection, upload limits that match
what the app accepts, and a README that says there is no login and how to expose the app safely."""

import re
import tomllib
from pathlib import Path

import pytest
from streamlit import config as streamlit_config

from gan_core.data import uploads
from gan_core.generation import model_io

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


@pytest.fixture(scope="module")
def settings() -> dict:
    with open(ROOT / ".streamlit" / "config.toml", "rb") as handle:
        return tomllib.load(handle)


def test_every_setting_is_a_real_streamlit_option(settings):
    """A misspelt key (enableXSRFProtection) would be ignored by Streamlit, so each must be a known option."""
    known = set(streamlit_config._config_options_template)
    names = [f"{section}.{key}" for section, values in settings.items() for key in values]
    assert names and [name for name in names if name not in known] == []


def test_the_server_is_local_only_with_xsrf_and_cors_protection(settings):
    server = settings["server"]
    assert server["address"] == "localhost"
    assert server["enableXsrfProtection"] is True
    assert server["enableCORS"] is True
    assert server["enableAgentApi"] is False
    assert sorted(server["allowedHosts"]) == ["127.0.0.1", "::1", "localhost"]  # no wildcard: DNS rebinding is refused
    assert settings["browser"]["gatherUsageStats"] is False


def test_the_upload_limit_is_what_the_app_accepts(settings):
    assert settings["server"]["maxUploadSize"] == uploads.MAX_FILE_BYTES / MB


def test_no_upload_limit_in_the_app_is_beyond_the_servers(settings):
    """Streamlit refuses anything above maxUploadSize before the app sees it, so a larger in-app limit is a false promise."""
    server_bytes = settings["server"]["maxUploadSize"] * MB
    limits = {"model .keras": model_io.MAX_MODEL_BYTES, "run .zip": model_io.MAX_RUN_ZIP_BYTES}
    assert {name: limit / MB for name, limit in limits.items() if limit > server_bytes} == {}


def test_the_readme_says_there_is_no_login_and_how_to_expose_the_app_safely():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^### Exposing the dashboard\n(.*?)(?=^#)", text, flags=re.S | re.M)
    assert match, "README.md needs an 'Exposing the dashboard' section"
    section = " ".join(match.group(1).split())
    for needed in (
        "no login", "localhost", "ssh -L 8501:localhost:8501", "reverse proxy", "authentication", "HTTPS",
        "--server.address", "allowedHosts", "maxUploadSize",
    ):
        assert needed in section, f"the section does not mention {needed!r}"
