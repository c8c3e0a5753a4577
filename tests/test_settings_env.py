"""Settings from the environment: variables are text, parsed to each setting's type.

``serve`` hands its settings to the worker processes through the environment
(``to_env``), so a round trip must give the same settings back."""

from __future__ import annotations

import pytest

from sync_server.settings import Settings, SettingsError


def test_numbers_in_environment_variables_are_parsed() -> None:
    settings = Settings.from_env({"PATROL_SYNC_MAX_BODY_BYTES": "1024", "PATROL_SYNC_PUSH_TIMEOUT_S": "2.5"}, db_url="sqlite:///x.db")
    assert (settings.max_body_bytes, settings.push_timeout_s) == (1024, 2.5)


def test_settings_survive_the_trip_through_the_environment() -> None:
    settings = Settings(db_url="sqlite:///x.db", max_page=500, retry_after_s=3)
    assert Settings.from_env(settings.to_env()) == settings


def test_a_variable_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(SettingsError, match="PATROL_SYNC_MAX_BODY_BYTES"):
        Settings.from_env({"PATROL_SYNC_MAX_BODY_BYTES": "lots"}, db_url="sqlite:///x.db")
