from __future__ import annotations

from pathlib import Path

import pytest

from tests.speech import SpeechMaker


@pytest.fixture(scope="session", autouse=True)
def own_state_dir(tmp_path_factory: pytest.TempPathFactory):
    """The assistant's state (outbox, reminders) and config in a folder of the test run's
    own, also for the child processes, never the user's."""
    base = tmp_path_factory.mktemp("xdg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(base / "state"))
        patch.setenv("XDG_CONFIG_HOME", str(base / "config"))
        yield base


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechMaker:
    return SpeechMaker(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def sphinx_recognizer():
    from assistant.speech.sphinx import PocketsphinxRecognizer

    return PocketsphinxRecognizer()


@pytest.fixture(scope="session")
def engine():
    from intents import IntentEngine

    return IntentEngine.for_language("en")


@pytest.fixture(scope="session")
def command_recognizer(engine):
    """pocketsphinx constrained to the assistant's phrases, as `run` builds it."""
    from assistant.speech.sphinx import PocketsphinxRecognizer

    recognizer = PocketsphinxRecognizer()
    recognizer.set_grammar(engine.grammar())
    return recognizer


POCKETSPHINX_TESTDATA = Path("/usr/share/pocketsphinx/test/data")


@pytest.fixture
def broker(tmp_path: Path):
    """A real Mosquitto of this test's own, on a free port (tests/broker.py)."""
    from tests.broker import Mosquitto

    with Mosquitto(tmp_path / "broker") as running:
        yield running
