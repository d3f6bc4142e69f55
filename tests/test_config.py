"""Configuration: defaults, the TOML file, and every way a file can be wrong."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from assistant.config import Config, ConfigError, default_config_path, load_config

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Config and state directories inside tmp_path, never the user's own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def write_toml(directory: Path, text: str, name: str = "config.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_without_a_file_the_defaults_apply(xdg: Path) -> None:
    assert not default_config_path().exists()
    assert default_config_path() == xdg / "config" / "senior-assistant" / "config.toml"
    config = load_config()
    assert config == Config()
    assert config.wake.phrase == "hey helper"
    assert config.endpoint.end_silence_ms == 1500
    assert config.endpoint.quick_end_ms == 300
    assert config.speech.rate_wpm == 140


def test_the_default_file_overrides_nested_keys_and_keeps_the_rest(xdg: Path) -> None:
    default_config_path().parent.mkdir(parents=True)
    write_toml(
        default_config_path().parent,
        'language = "en"\n'
        "[wake]\n"
        'phrase = "hello helper"\n'
        "push_to_talk = false\n"
        "[endpoint]\n"
        "end_silence_ms = 1200\n"
        "[speech]\n"
        "volume = 0.5\n",
    )
    config = load_config()
    assert config.wake.phrase == "hello helper"
    assert config.wake.push_to_talk is False
    assert config.wake.threshold == Config().wake.threshold  # untouched key of a touched table
    assert config.endpoint.end_silence_ms == 1200
    assert config.endpoint.vad_aggressiveness == 2
    assert config.speech.volume == 0.5
    assert config.audio == Config().audio  # untouched table


def test_an_explicit_path_is_used_instead_of_the_default(xdg: Path) -> None:
    path = write_toml(xdg, '[recognizer]\nengine = "vosk"\n', name="other.toml")
    assert load_config(path).recognizer.engine == "vosk"
    assert load_config(str(path)).recognizer.engine == "vosk"


def test_an_explicit_path_that_does_not_exist_is_an_error_naming_it(xdg: Path) -> None:
    missing = xdg / "nowhere" / "config.toml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_config(missing)


def test_a_directory_as_config_path_is_an_error(xdg: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(str(xdg))):
        load_config(xdg)


def test_invalid_toml_is_an_error_naming_the_file(xdg: Path) -> None:
    path = write_toml(xdg, "[wake\nphrase = 'hey helper'\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_a_file_that_is_not_utf8_is_an_error(xdg: Path) -> None:
    path = xdg / "latin1.toml"
    path.write_bytes('[wake]\nphrase = "hé"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("phrse = 1\n", "phrse"),
        ("[wake]\nphrse = 'hey helper'\n", "wake.phrse"),
        ("[endpoint]\nend_silence = 900\n", "endpoint.end_silence"),
        ("[wakeword]\nphrase = 'hey helper'\n", "wakeword"),
    ],
)
def test_an_unknown_key_is_an_error_naming_its_dotted_path(xdg: Path, text: str, key: str) -> None:
    path = write_toml(xdg, text)
    with pytest.raises(ConfigError, match=rf"unknown key\(s\) {re.escape(key)}\b"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[audio]\nframe_ms = "30"\n', "audio.frame_ms"),  # string for an int
        ("[audio]\nframe_ms = true\n", "audio.frame_ms"),  # bool for an int
        ("[endpoint]\nmax_utterance_s = true\n", "endpoint.max_utterance_s"),  # bool for a float
        ('[speech]\nvolume = "loud"\n', "speech.volume"),
        ("[wake]\npush_to_talk = 1\n", "wake.push_to_talk"),  # int for a bool
        ("[wake]\nphrase = 3\n", "wake.phrase"),
        ("[audio]\ninput_device = 1.5\n", "audio.input_device"),
        ("[audio]\ninput_device = false\n", "audio.input_device"),
        ("[wake]\nphrase = { text = 'hey' }\n", "wake.phrase"),  # a table for a string
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_naming_the_key(
    xdg: Path, text: str, key: str
) -> None:
    path = write_toml(xdg, text)
    with pytest.raises(ConfigError, match=rf"{re.escape(key)} has the wrong type"):
        load_config(path)


def test_a_value_where_a_table_belongs_is_an_error(xdg: Path) -> None:
    path = write_toml(xdg, 'wake = "hey helper"\n')
    with pytest.raises(ConfigError, match=r"\[wake\] must be a table"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[endpoint]\nvad_aggressiveness = 5\n", "endpoint.vad_aggressiveness"),
        ("[endpoint]\nvad_aggressiveness = -1\n", "endpoint.vad_aggressiveness"),
        ("[audio]\nframe_ms = 25\n", "audio.frame_ms"),
        ("[audio]\nsample_rate = 44100\n", "audio.sample_rate"),
        ("[speech]\nvolume = 1.5\n", "speech.volume"),
        ("[speech]\nvolume = -0.1\n", "speech.volume"),
        ("[speech]\nrate_wpm = 20\n", "speech.rate_wpm"),
        ('[recognizer]\nengine = "whisper"\n', "recognizer.engine"),
        ('[wake]\nphrase = ""\n', "wake.phrase"),
        ('[wake]\nphrase = "   "\n', "wake.phrase"),
        ("[endpoint]\nend_silence_ms = 10\n", "endpoint.end_silence_ms"),
        ("[endpoint]\nquick_end_ms = 2000\n", "endpoint.quick_end_ms"),  # above end_silence
        ("[endpoint]\nquick_end_ms = 0\n", "endpoint.quick_end_ms"),
        ("[endpoint]\nmax_utterance_s = 0\n", "endpoint timeouts"),
        ("[endpoint]\nno_speech_timeout_s = -3\n", "endpoint timeouts"),
    ],
)
def test_an_out_of_range_value_is_an_error_naming_the_key(
    xdg: Path, text: str, problem: str
) -> None:
    path = write_toml(xdg, text)
    with pytest.raises(ConfigError, match=re.escape(problem)) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_several_problems_are_reported_together(xdg: Path) -> None:
    path = write_toml(xdg, "[audio]\nframe_ms = 25\n[speech]\nvolume = 2.0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "audio.frame_ms" in str(info.value)
    assert "speech.volume" in str(info.value)


def test_ints_are_accepted_for_float_keys(xdg: Path) -> None:
    path = write_toml(xdg, "[endpoint]\nmax_utterance_s = 10\n[speech]\nvolume = 1\n")
    config = load_config(path)
    assert config.endpoint.max_utterance_s == 10.0
    assert isinstance(config.endpoint.max_utterance_s, float)
    assert isinstance(config.speech.volume, float)


def test_device_choices_take_a_name_or_an_index(xdg: Path) -> None:
    path = write_toml(xdg, '[audio]\ninput_device = "USB mic"\noutput_device = 3\n')
    config = load_config(path)
    assert config.audio.input_device == "USB mic"
    assert config.audio.output_device == 3


def test_state_dir_follows_xdg_state_home(xdg: Path) -> None:
    assert Config().state_dir() == xdg / "state" / "senior-assistant"


def test_state_dir_without_xdg_state_home_is_under_home(
    xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME")
    expected = xdg / "home" / ".local" / "state" / "senior-assistant"
    assert Config().state_dir() == expected


def test_paths_state_dir_wins_over_xdg_and_expands_the_home_directory(xdg: Path) -> None:
    path = write_toml(xdg, '[paths]\nstate_dir = "~/care-state"\n')
    assert load_config(path).state_dir() == xdg / "home" / "care-state"


# --- every key documented in the README ---------------------------------------------------


def config_keys(cls: type = Config, prefix: str = "") -> list[tuple[str, str]]:
    """(table, key) for every leaf of the config; table is "" at the top level."""
    keys: list[tuple[str, str]] = []
    defaults = cls()
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(config_keys(type(value), prefix + f.name + "."))
        else:
            keys.append((prefix.rstrip("."), f.name))
    return keys


def readme_configuration_section() -> str:
    if not README.exists():
        pytest.fail(f"{README} does not exist: it must document every config key")
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("## Configuration")]
    if not starts:
        pytest.fail(f"{README} has no '## Configuration' section documenting the config keys")
    section = []
    for line in lines[starts[0] + 1 :]:
        if re.match(r"##\s", line):  # the next section of the same level
            break
        section.append(line)
    return "\n".join(section)


def documented(section: str, table: str, key: str) -> bool:
    dotted = f"{table}.{key}" if table else key
    if re.search(rf"(?<![\w.]){re.escape(dotted)}(?![\w])", section):
        return True
    # Or inside a TOML example: the key assigned under its [table] header.
    current = ""
    for line in section.splitlines():
        header = re.match(r"\s*\[([\w.]+)\]\s*(#.*)?$", line)
        if header:
            current = header.group(1)
        elif current == table and re.match(rf"\s*#?\s*{re.escape(key)}\s*=", line):
            return True
    return False


def test_config_keys_are_found_by_the_readme_check() -> None:
    keys = config_keys()
    assert ("wake", "phrase") in keys
    assert ("", "language") in keys
    assert ("endpoint", "end_silence_ms") in keys
    assert ("paths", "state_dir") in keys
    assert len(keys) == len(set(keys))
    example = '[wake]\n# phrase = "hey helper"\n`endpoint.end_silence_ms`: the pause\n'
    assert documented(example, "wake", "phrase")
    assert documented(example, "endpoint", "end_silence_ms")
    assert not documented(example, "wake", "threshold")
    assert not documented(example, "endpoint", "end_silence")


def test_every_config_key_is_documented_in_the_readme() -> None:
    section = readme_configuration_section()
    missing = [
        f"{table}.{key}" if table else key
        for table, key in config_keys()
        if not documented(section, table, key)
    ]
    assert not missing, f"README.md's Configuration section does not document: {missing}"
