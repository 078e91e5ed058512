"""The bundled prompts: rendered by espeak-ng and sox into 8 kHz mono 16-bit WAVs that hold
speech, cached by their text, with each campaign's seller and number in its safe-harbor one."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from campaigns.db import make_engine, session_factory
from campaigns.models import Campaign
from dialer import prompts
from dialer.cli import main
from dialer.connect import campaign_connect_settings

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox"
)


@pytest.fixture(scope="module")
def prompt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


def campaign(**fields: object) -> Campaign:
    values: dict[str, object] = {
        "name": "Spring sale",
        "kind": "telemarketing",
        "seller_name": "Acme Insurance",
        "callback_number": "+12125550100",
        "safe_harbor_message": "",
    }
    values.update(fields)
    return Campaign(**values)


def speech_figures(path: Path) -> tuple[float, float, float]:
    """(seconds, share of 20 ms frames above -40 dBFS, loudest frame in dBFS) of an 8 kHz mono
    16-bit WAV; fails on any other format, which is not what pjsua2 plays as is."""
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160).astype(np.float64)
    levels = 10 * np.log10(np.mean(frames * frames, axis=1) / 32768.0**2 + 1e-12)
    return len(samples) / 8000, float(np.mean(levels > -40)), float(levels.max())


@pytest.mark.parametrize("name", sorted(prompts.PROMPT_TEXTS))
def test_each_bundled_prompt_is_telephone_wav_with_speech(name: str, prompt_dir: Path) -> None:
    path = prompts.prompt_path(name, prompt_dir)
    assert path.parent == prompt_dir and path.name.startswith(name)
    seconds, voiced, loudest = speech_figures(path)
    words = len(prompts.PROMPT_TEXTS[name].split())
    assert 0.2 * words <= seconds <= 0.8 * words + 1.0  # spoken at 150 words a minute
    assert voiced >= 0.5, f"{path} is mostly silence"
    assert loudest > -15


def test_a_prompt_is_rendered_once_and_again_only_when_its_text_changes(tmp_path: Path) -> None:
    first = prompts.build(prompts.Prompt("goodbye", "Goodbye."), tmp_path)
    rendered_at = first.stat().st_mtime_ns
    assert prompts.build(prompts.Prompt("goodbye", "Goodbye."), tmp_path) == first
    assert first.stat().st_mtime_ns == rendered_at
    changed = prompts.build(prompts.Prompt("goodbye", "Good bye now."), tmp_path)
    assert changed != first and changed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, changed.name])


def test_the_default_safe_harbor_message_names_the_seller_and_the_number() -> None:
    text = prompts.safe_harbor_text("Acme Insurance", "+1 (212) 555-0100")
    assert "telemarketing purposes" in text
    assert "Acme Insurance" in text
    assert "2 1 2, 5 5 5, 0 1 0 0" in text
    assert prompts.speakable_number("+442071838750") == "4 4 2, 0 7 1, 8 3 8, 7 5 0"
    # 47 CFR 64.1200(a)(7)(i)(B): the key-press opt-out's instructions, in every message.
    assert text.endswith("To be added to our do-not-call list now, press 9.")
    own = prompts.safe_harbor_text("Acme", "+12125550100", "{seller} called. Call {callback}.")
    assert own.endswith("press 9.")
    told = prompts.safe_harbor_text("Acme", "+12125550100", "{seller}: Press 9 to opt out.")
    assert told == "Acme: Press 9 to opt out."


def test_a_campaign_without_a_message_of_its_own_gets_the_bundled_one(prompt_dir: Path) -> None:
    acme = prompts.campaign_safe_harbor(campaign(), prompt_dir)
    other = prompts.campaign_safe_harbor(campaign(seller_name="Bolt Energy"), prompt_dir)
    assert acme != other  # the seller is in the audio, so in the text's hash
    seconds, voiced, _ = speech_figures(acme)
    assert 5 <= seconds <= 20 and voiced >= 0.5
    # No call-back number: the caller ID, which must take do-not-call requests too.
    assert (
        prompts.campaign_safe_harbor(
            campaign(callback_number=None, caller_id="+12125550100"), prompt_dir
        )
        == acme
    )
    own = campaign(safe_harbor_message="{seller} called you. Call {callback} to opt out.")
    assert prompts.campaign_safe_harbor(own, prompt_dir) != acme
    settings = campaign_connect_settings(campaign(), prompt_dir)
    assert settings.safe_harbor_prompt == str(acme)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"seller_name": ""}, "seller_name is empty"),
        ({"callback_number": None, "caller_id": None}, "callback_number and caller_id"),
        ({"safe_harbor_message": "Call {number}"}, "unknown placeholder 'number'"),
    ],
)
def test_a_safe_harbor_message_missing_what_the_rule_asks_is_refused(
    fields: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        prompts.campaign_safe_harbor(campaign(**fields), tmp_path)


def test_each_campaign_kind_gets_its_menus(prompt_dir: Path) -> None:
    survey = prompts.campaign_prompts(campaign(kind="survey"), prompt_dir)
    assert set(survey) == {"survey_scale", "not_understood", "goodbye", "safe_harbor"}
    appointment = prompts.campaign_prompts(campaign(kind="appointment"), prompt_dir)
    assert "appointment_menu" in appointment
    assert set(prompts.KIND_PROMPTS) == {"telemarketing", "collections", "survey", "appointment"}


def test_dialer_prompts_build_renders_the_bundled_and_a_campaigns_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    created = runner.invoke(main, ["campaign", "create", "Reminders", "--kind", "appointment"])
    assert created.exit_code == 0, created.output
    directory = tmp_path / "prompts"
    result = runner.invoke(main, ["prompts", "build", "--dir", str(directory)])
    assert result.exit_code == 0, result.output
    assert len(list(directory.glob("*.wav"))) == len(prompts.PROMPT_TEXTS)
    command = ["prompts", "build", "--dir", str(directory), "--campaign", "Reminders"]
    missing_number = runner.invoke(main, command)
    assert missing_number.exit_code == 1
    assert "callback_number and caller_id are both empty" in missing_number.output
    engine = make_engine(url)
    with session_factory(engine)() as session:
        reminders = session.scalar(select(Campaign).where(Campaign.name == "Reminders"))
        assert reminders is not None
        reminders.seller_name, reminders.callback_number = "Dr Smith's Clinic", "+12125550123"
        session.commit()
    engine.dispose()
    result = runner.invoke(main, command)
    assert result.exit_code == 0, result.output
    assert "Reminders: safe_harbor: " in result.output
    assert "Reminders: appointment_menu: " in result.output
    assert len(list(directory.glob("*.wav"))) == len(prompts.PROMPT_TEXTS) + 1
